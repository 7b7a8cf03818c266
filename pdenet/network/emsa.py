"""E-MSA as Li, Chen, Tai & E (JMLR 2018) set it up, on the network PDE: the output layer inside the
controlled system, mini-batches (the sampled PMP), the inner maximisation's tolerance and cap from
the case file.

:class:`LayeredPMP` extends :class:`~pdenet.network.pmp.NetworkPMP` (the hidden layers: the
augmented Hamiltonian of every control interval, maximised by L-BFGS-B from theta^k, warm started,
``inner_maxiter``/``inner_tol``) with

**The output layer as a control** (``"W"`` in ``[train] controls``). The head O = h W f(T) + mu
is the last layer x_{T+1} = g(x_T, theta_out) of Li et al.; its co-state is p_s = -dPhi/dO_s per
sample and its augmented Hamiltonian, averaged over the samples, is

    H~_out(W, mu) = 1/S sum_s [ p_s.(h W f_s + mu) - rho/2 |h W f_s + mu - O_s^k|^2
                                 - rho/2 h |(W - W^k)^T p_s|^2 ]

(the two penalties: the state equation O = g(f, theta) and the co-state equation h W^T p = D_f H
along the trajectory of theta^k, as for the hidden layers). It is a concave quadratic in (W, mu):
with D = W - W^k, d = mu - mu^k, stationarity gives d = m_p/rho - h D m_f and the Sylvester equation

    rho C_pp D + rho h D Cov_f = Cov_pf,

C_pp = mean p p^T, Cov_f, Cov_pf the sample covariances of f(T) and (p, f(T)), solved exactly by
the eigen-decompositions of the two symmetric matrices (the minimum-norm solution where
alpha_i + beta_j vanishes: for softmax, sum_m p_m = 0 makes C_pp singular along the constant
logit shift, which changes no prediction). It needs rho > 0 (emsa): the plain Hamiltonian is
linear in (W, mu).

**Mini-batches** (``batch_size`` > 0): every ``sweep`` draws the next batch of a seeded
permutation (a new one per epoch) and the maximisation uses that batch's trajectory: the sampled
PMP of Li et al. The history's ``loss`` is then the batch loss.

**rho's units.** Every term of H~ is a quadrature (sample mean of int_Y dy, dt over the interval),
so for a small change of the controls maximising H~ is a gradient step in L^2 of size ~ 1/rho
(preconditioned by sigma'^2 and the co-state term): rho does not depend on the mesh, and 1/rho
plays the role of a learning rate in L^2 units (docs/network-training.md).
"""
from __future__ import annotations

import numpy as np

from .heads import Head
from .pmp import NetworkPMP

__all__ = ["LayeredPMP", "head_step"]


def head_step(h, fT, P, rho, tol=1e-12):
    """(D, d): the maximiser of H~_out minus (W^k, mu^k) (module docstring). ``fT`` (S, N) the
    final states, ``P`` (S, M) the output co-states p_s = -dPhi/dO_s."""
    S = fT.shape[0]
    m_f, m_p = fT.mean(axis=0), P.mean(axis=0)
    Fc, Pc = fT - m_f, P - m_p
    cov_f = Fc.T @ Fc / S
    cov_pf = Pc.T @ Fc / S
    c_pp = P.T @ P / S
    alpha, U = np.linalg.eigh(rho * c_pp)
    beta, V = np.linalg.eigh(rho * h * cov_f)
    denom = alpha[:, None] + beta[None, :]
    scale = max(float(np.max(np.abs(denom))), 1e-300)
    Qt = U.T @ cov_pf @ V
    Dt = np.where(denom > tol * scale, Qt / np.where(denom > tol * scale, denom, 1.0), 0.0)
    D = U @ Dt @ V.T
    d = m_p / rho - h * (D @ m_f)
    return D, d


class LayeredPMP(NetworkPMP):
    """:class:`NetworkPMP` with the output layer as a control and mini-batches (module docstring)."""

    def __init__(self, net, f0, target, controls=("a",), box=None, head_lr=0.0, batch_size=0, seed=0,
                 inner_tol=1e-10, inner_maxiter=500):
        controls = tuple(controls)
        self.head_control = "W" in controls
        hidden = tuple(c for c in controls if c != "W")
        if self.head_control and net.head.kind != "classes":
            raise ValueError("the output layer is a control only for output kind = 'classes' (W, mu)")
        super().__init__(net, f0, target, controls=hidden, box=box, head_lr=0.0 if self.head_control else head_lr,
                         inner_tol=inner_tol, inner_maxiter=inner_maxiter)
        self.all_f0, self.all_target = f0, target
        self.batch_size = int(batch_size) if batch_size and batch_size < f0.shape[0] else 0
        self.rng = np.random.default_rng(seed)
        self._order, self._pos = np.empty(0, dtype=int), 0
        self._unit = Head("identity", net.head.loss_name, 1.0, net.head.outputs, transform=net.head.transform)

    def _next(self):
        S = self.all_f0.shape[0]
        if self._pos + self.batch_size > self._order.size:
            self._order, self._pos = self.rng.permutation(S), 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        self.f0, self.target = self.all_f0[idx], np.asarray(self.all_target)[idx]

    def sweep(self):
        if self.batch_size:
            self._next()
        return super().sweep()

    def output_costate(self, fT):
        """p_s = -dPhi/dO_s at O = h W f(T) + mu (per sample, without the 1/S)."""
        O = self.net.head.output(fT)
        _, dO, _ = self._unit.loss(O, self.target)
        return -O.shape[0] * dO, O

    def maximise(self, rho=0.0):
        if self.head_control and rho <= 0.0:
            raise ValueError("the output layer's Hamiltonian is linear in W, mu: it is a control of emsa "
                             "(rho > 0) only")
        fT = self._traj[0][-1] if self._traj is not None else None
        total = super().maximise(rho) if self.controls else 0.0
        if self.head_control:
            head = self.net.head
            P, O = self.output_costate(fT)
            D, d = head_step(head.h, fT, P, rho)
            head.W += D
            head.mu += d
            change = head.h * fT @ D.T + d
            total += float(np.mean(np.sum(P * change, axis=1)) - 0.5 * rho * np.mean(np.sum(change ** 2, axis=1))
                           - 0.5 * rho * head.h * np.mean(np.sum((P @ D) ** 2, axis=1)))
        return float(total)
