"""SGD as a discrete-time stochastic process in low dimension (issue 14).

* :mod:`.problems` -- finite-sum least-squares problems: per-sample gradients, the diffusion
  matrix Sigma_D, mini-batches with and without replacement.
* :mod:`.weak` -- exact first and second moments of SGD and of its SDE approximation
  (thesis Theorem 6.5): the weak error at a sequence of learning rates and its observed order.
* :mod:`.master` -- the discrete master equation (review (37)) as a transfer operator on a grid
  (1-D, 2-D), its stationary distribution, the identity (38), the Fokker-Planck steady state.
* :mod:`.fdr` -- the fluctuation-dissipation relation (42) and the Sigma_B / Sigma_D relation (43)
  on long SGD runs and on the transfer operator.
* :mod:`.levy` -- symmetric alpha-stable noise (Chambers-Mallows-Stuck) and the escape times
  of Levy-driven SGD particles (review (36)) against the Brownian (Kramers) case.

The network-sized counterpart (Sigma_D of the network PDE model) is
:mod:`pdenet.network.sgd_noise`.
"""
