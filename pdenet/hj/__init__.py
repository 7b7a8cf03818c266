"""Hamilton-Jacobi equations, local entropy and controlled SGD (PRODUCT.md 1.3, thesis ch. 4).

* :mod:`pdenet.hj.kernels` — numba kernels: one-sided (first-order, WENO5) derivatives,
  second differences, Godunov / local Lax-Friedrichs numerical Hamiltonians.
* :mod:`pdenet.hj.scheme` — :class:`HJScheme`, the semi-discrete operator, CFL step, IMEX solve.
* :mod:`pdenet.hj.exact` — quadratic closed form, Cole-Hopf and Hopf-Lax quadratures.
* :mod:`pdenet.hj.particles` — SGD, Entropy-SGD, HJ, HEAT, Elastic-SGD particle algorithms.
"""
