"""Risk-aware training objective (review §5, eqs. 48–50): the exponential utility of the
per-sample losses,

    J_k(theta) = (1/k) log( (1/S) sum_s exp(k Phi_s(f_s(T))) ),      k != 0,

risk averse for k > 0 (large losses weigh more), risk seeking for k < 0; k -> 0 gives the
mean (1/S) sum_s Phi_s, and for small k the mean-variance expansion (review eq. 49)

    J_k = E[Phi] + (k/2) Var[Phi] + O(k^2)     (Var the population variance over the samples).

Its gradient is the per-sample gradient weighted by the softmax of k Phi:

    dJ_k/dtheta = sum_s w_s dPhi_s/dtheta,    w_s = exp(k Phi_s) / sum_r exp(k Phi_r),

so the exact discrete adjoint of the network carries over: :class:`RiskHead` wraps the
network's output layer and hands the adjoint the weighted terminal co-states (and adds the
weighted output-layer gradients).  Installing it on a :class:`~pdenet.network.pde.NetworkPDE`
(``net.head = RiskHead(net.head, k)``) makes every driver of :mod:`solvers.optim` minimise J_k.
The per-sample losses are the original head's, one row at a time (``samples = 1``); the
weighted gradient uses the head's own ``samples`` argument (the 1/S of its average) set to
1/w_s, so no loss formula is duplicated here.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

__all__ = ["RiskHead", "risk_measure", "per_sample_losses"]


def per_sample_losses(head, fT, target) -> np.ndarray:
    """Phi_s for every row of ``fT`` (the head's loss of that sample alone)."""
    target = np.asarray(target)
    return np.array([head.loss(fT[s:s + 1], target[s:s + 1], samples=1)[0] for s in range(fT.shape[0])])


def risk_measure(phi: np.ndarray, k: float) -> float:
    """(1/k) log mean exp(k phi), stable (logsumexp); the mean for k = 0."""
    phi = np.asarray(phi, dtype=float)
    if k == 0.0:
        return float(phi.mean())
    return float((logsumexp(k * phi) - np.log(phi.size)) / k)


class RiskHead:
    """The output layer of a network with the loss replaced by the risk measure J_k of the
    per-sample losses (module docstring).  Everything but :meth:`loss` is the wrapped head's."""

    def __init__(self, head, k: float):
        self.base, self.k = head, float(k)

    def __getattr__(self, name):
        return getattr(self.base, name)

    def loss(self, fT, target, grad=None, samples=None):
        if samples is not None and samples != fT.shape[0]:
            raise ValueError("the risk-aware objective couples all samples; it cannot be split over ranks")
        target = np.asarray(target)
        phi = per_sample_losses(self.base, fT, target)
        J = risk_measure(phi, self.k)
        w = softmax(self.k * phi)
        dfT = np.zeros_like(fT)
        for s in np.nonzero(w > 0.0)[0]:
            _, dfT[s:s + 1], _ = self.base.loss(fT[s:s + 1], target[s:s + 1], grad, samples=1.0 / w[s])
        _, _, metrics = self.base.loss(fT, target)
        metrics = dict(metrics)
        metrics["mean_loss"] = float(phi.mean())
        metrics["loss_std"] = float(phi.std())
        return J, np.ascontiguousarray(dfT), metrics
