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

**MPI ranks** (``comm`` of P > 1 ranks, ``backend = "petsc"``): the samples (of each batch, which every
rank draws alike) are split in contiguous blocks over the ranks; every rank sweeps its block with the
global 1/S, and every sum over samples — the loss, gradient and metrics of the sweep, the Hamiltonian,
each evaluation of an interval's augmented Hamiltonian and its gradient inside L-BFGS-B, the per-cell
search of plain MSA, the output layer's moments — is an Allreduce, so every rank takes the same
control update and holds the same controls: the one-rank result to round-off.
"""
from __future__ import annotations

import numpy as np

from .distributed import block, parallel
from .heads import Head
from .pmp import NetworkPMP, maximise_a_per_cell, paper_costate

__all__ = ["LayeredPMP", "head_step"]


def _moments(fT, P, reduce=None):
    """Sample moments of (f(T), p): means, second moments (summed over ranks by ``reduce``)."""
    S = fT.shape[0]
    parts = [np.array([S], dtype=float), fT.sum(axis=0), P.sum(axis=0), (fT.T @ fT).ravel(), (P.T @ fT).ravel(),
             (P.T @ P).ravel()]
    buf = np.concatenate(parts)
    if reduce is not None:
        buf = reduce(buf)
    N, M = fT.shape[1], P.shape[1]
    S = buf[0]
    i = 1
    out = []
    for shape in [(N,), (M,), (N, N), (M, N), (M, M)]:
        n = int(np.prod(shape))
        out.append(buf[i:i + n].reshape(shape) / S)
        i += n
    return out


def head_step(h, fT, P, rho, tol=1e-12, reduce=None):
    """(D, d): the maximiser of H~_out minus (W^k, mu^k) (module docstring). ``fT`` (S, N) the
    final states, ``P`` (S, M) the output co-states p_s = -dPhi/dO_s; ``reduce`` sums the moments
    over MPI ranks holding other samples."""
    m_f, m_p, ff, pf, c_pp = _moments(fT, P, reduce)
    cov_f = ff - np.outer(m_f, m_f)
    cov_pf = pf - np.outer(m_p, m_f)
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
    """:class:`NetworkPMP` with the output layer as a control, mini-batches, MPI ranks and the Tikhonov
    term (module docstring)."""

    tikhonov_supported = True

    def __init__(self, net, f0, target, controls=("a",), box=None, head_lr=0.0, batch_size=0, seed=0,
                 inner_tol=1e-10, inner_maxiter=500, comm=None):
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
        self.comm = comm if parallel(comm) else None
        self.S = f0.shape[0]                  # the samples of the current (batch) sweep, all ranks
        if self.comm is not None:
            from .distributed import DataParallel

            self._par = DataParallel(net, self.comm)
            if min(self.batch_size or self.S, self.S) < self.comm.Get_size():
                raise ValueError(f"{self.batch_size or self.S} samples per sweep cannot be split over "
                                 f"{self.comm.Get_size()} MPI ranks")

    # -- sums over the ranks -----------------------------------------------------------------
    def _allsum(self, x):
        if self.comm is None:
            return x
        return self._par._allreduce(np.array(x, dtype=float, copy=True))

    def _scale(self):
        return self.net.schedule.dt * self.net.h / self.S

    # -- sweeps ----------------------------------------------------------------------------
    def _next(self):
        S = self.all_f0.shape[0]
        if self._pos + self.batch_size > self._order.size:
            self._order, self._pos = self.rng.permutation(S), 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.all_f0[idx], np.asarray(self.all_target)[idx]

    def sweep(self):
        f0, target = self._next() if self.batch_size else (self.all_f0, self.all_target)
        self.S = f0.shape[0]
        if self.comm is None:
            self.f0, self.target = f0, target
            return super().sweep()
        sl = block(self.S, self._par.rank, self._par.size)
        self.f0, self.target = f0[sl], np.asarray(target)[sl]
        net, L = self.net, self.net.schedule.steps
        states, lams = [None] * (L + 1), [None] * (L + 1)

        def on_state(n, t, y, lin):
            states[n] = np.array(y, dtype=float)

        def on_costate(n, lam):
            lams[n] = np.array(lam, dtype=float)

        J, grad, metrics, _ = net.loss_and_gradient(self.f0, self.target, "all", on_state, on_costate,
                                                    samples=self.S, regularise=False)
        J, self._metrics = self._par._reduce(J, metrics, self.f0.shape[0], self.S, grad)
        J += 0.5 * net.tikhonov * net.regulariser()
        net._add_regulariser_grad(grad)
        self._traj = (np.stack(states), paper_costate(np.stack(lams), self.S, net.h))
        self._grad = grad
        return J, grad

    # -- Hamiltonians, summed over the ranks -------------------------------------------------
    def hamiltonian_steps(self):
        local = super().hamiltonian_steps() * (self.f0.shape[0] / self.S)
        return self._allsum(local)

    def interval_objective(self, k, rho=0.0, ref=None, F=None, R=None):
        val, grad = super().interval_objective(k, rho, ref, F, R)
        if self.comm is not None:
            val, grad = self._sum_objective(val, grad)
        return self._running_cost(k, val, grad)

    def _running_cost(self, k, val, grad):
        """H_k minus the Tikhonov running cost of interval k, (lambda/2) dur_k sum_i w_i theta_{k,i}^2
        (w the quadrature weight of the entry: h for a, the kernel's for b): the PMP of the
        regularised loss, whose gradient at theta^k is -dJ/dtheta_k with the Tikhonov term."""
        lam = self.net.tikhonov
        if lam == 0.0:
            return val, grad
        net = self.net
        dur = net.schedule.interval_steps(k) * net.schedule.dt
        quad = {"a": net.h, **net.operator.quadrature(net.h)}
        for name in grad:
            p = self.params[name][k]
            w = quad[name] * dur
            val -= 0.5 * lam * w * float(np.sum(p * p))
            grad[name] = grad[name] - lam * w * p
        return val, grad

    def _sum_objective(self, val, grad):
        """(val, grad) summed over the ranks."""
        names = list(grad)
        buf = self._allsum(np.concatenate([[val], *[np.ravel(grad[n]) for n in names]]))
        i = 1
        for n in names:
            grad[n] = buf[i:i + grad[n].size].reshape(grad[n].shape)
            i += grad[n].size
        return float(buf[0]), grad

    def _gather_rows(self, X):
        """All ranks' rows (step-major, then sample) of an interval's (steps_k * S_local, N) array, in
        the order of the one-rank array."""
        N = X.shape[1]
        steps = X.shape[0] // self.f0.shape[0]
        parts = self.comm.allgather(X.reshape(steps, -1, N))
        return np.concatenate(parts, axis=1).reshape(-1, N)

    def maximise_interval(self, k, rho=0.0):
        lam = self.net.tikhonov
        if self.comm is None and lam == 0.0:
            return super().maximise_interval(k, rho)
        # the rows split over the ranks: never the one-row bang-bang shortcut; with the Tikhonov term
        # the exact bang-bang / per-cell maximisers of H do not apply: L-BFGS-B on H - running cost
        F, R = self._interval_data(k)
        lo, hi = self._bounds(k)
        if rho == 0.0 and not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("plain MSA maximises H over a box: give finite bounds for every control")
        if rho == 0.0 and self.controls == ("a",) and lam == 0.0:
            # the per-cell search brackets flat maxima, where round-off in the sums moves the maximiser
            # by ~sqrt(eps): every rank gathers the interval's rows in the serial order and searches
            # them all, which is the one-rank computation exactly
            net = self.net
            C = net.a[k][None, :] - net.pre_activation(F, k)
            Call, Rall = self._gather_rows(C), self._gather_rows(R)
            net.a[k] = maximise_a_per_cell(net.activation, Call, Rall, lo, hi, self.grid, net.a[k])
            return self.interval_objective(k, 0.0, None, F, R)[0]
        return self._maximise_numerically(k, rho, F, R, self._get(k), lo, hi)

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
            D, d = head_step(head.h, fT, P, rho, reduce=self._allsum if self.comm is not None else None)
            head.W += D
            head.mu += d
            change = head.h * fT @ D.T + d
            part = (np.sum(P * change) - 0.5 * rho * np.sum(change ** 2)
                    - 0.5 * rho * head.h * np.sum((P @ D) ** 2)) / self.S
            total += float(self._allsum(np.array([part]))[0])
        return float(total)
