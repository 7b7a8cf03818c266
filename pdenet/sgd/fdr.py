"""The fluctuation-dissipation relation of SGD (review (42), Yaida 2018) and the Sigma_B/Sigma_D relation (43).

At a stationary distribution of SGD, the master-equation identity (38) applied to the loss f gives

    E_ss |grad f|^2 = (eta / 2) E_ss Tr[H Sigma~_B] + (higher derivatives of f),       (42)

Sigma~_B(theta) = E_B[g_B g_B^T] the two-point matrix of the mini-batch gradient. For a quadratic
loss the higher terms vanish and (42) is exact; away from stationarity it fails. Sigma~_B is
exactly c Sigma_D + g g^T with c the batch factor of :func:`.problems.batch_factor`
((S - l)/(l (S - 1)) without replacement; review (43) approximates c by 1/l - 1/S).

:func:`fdr_run` runs independent SGD chains and returns the two sides averaged over the chains and
over a window of iterations, with standard errors from the spread of the per-chain averages (the
chains are independent); :func:`fdr_stationary` evaluates them on a stationary distribution on a
grid (:mod:`.master`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problems import batch_factor

__all__ = ["two_point", "fdr_sides", "FDR", "fdr_run", "fdr_stationary"]


def two_point(problem, theta, batch, replacement):
    """Sigma~_B(theta) = c Sigma_D(theta) + g g^T (theta (..., d) -> (..., d, d))."""
    g = problem.grad(theta)
    c = batch_factor(problem.N, batch, replacement)
    return c * problem.sigma_d(theta) + g[..., :, None] * g[..., None, :]


def fdr_sides(problem, theta, eta, batch, replacement):
    """(|grad f|^2, (eta/2) Tr[H Sigma~_B]) at each theta (..., d)."""
    g = problem.grad(theta)
    lhs = np.sum(g * g, axis=-1)
    H = problem.hessian(theta)
    rhs = 0.5 * eta * np.einsum("...ij,...ji->...", np.broadcast_to(H, g.shape + (g.shape[-1],)),
                                two_point(problem, theta, batch, replacement))
    return lhs, rhs


@dataclass
class FDR:
    lhs: float          # E |grad f|^2
    rhs: float          # (eta/2) E Tr[H Sigma~_B]
    lhs_se: float
    rhs_se: float
    diff_se: float      # standard error of lhs - rhs

    @property
    def z(self) -> float:
        """(lhs - rhs) in standard errors."""
        return (self.lhs - self.rhs) / self.diff_se


def fdr_run(problem, eta, batch, replacement, theta0, chains, burn_in, window, rng, every=1):
    """Run ``chains`` SGD chains from theta0 (d,) for burn_in + window iterations; average the two
    sides of (42) over the last ``window`` iterations (every ``every``-th) of every chain."""
    th = np.tile(np.asarray(theta0, float), (chains, 1))
    acc_l, acc_r, n = np.zeros(chains), np.zeros(chains), 0
    for k in range(burn_in + window):
        if replacement:
            idx = rng.integers(0, problem.N, (chains, batch))
        else:
            idx = np.argsort(rng.random((chains, problem.N)), axis=1)[:, :batch]
        th = th - eta * problem.batch_grad(th, idx)
        if k >= burn_in and (k - burn_in) % every == 0:
            lhs, rhs = fdr_sides(problem, th, eta, batch, replacement)
            acc_l += lhs
            acc_r += rhs
            n += 1
    ml, mr = acc_l / n, acc_r / n
    se = lambda v: float(v.std(ddof=1) / np.sqrt(chains))      # noqa: E731
    return FDR(float(ml.mean()), float(mr.mean()), se(ml), se(mr), se(ml - mr))


def fdr_stationary(problem, grid, p, eta, batch, replacement):
    """The two sides of (42) under the node masses p of a grid (:func:`.master.stationary`)."""
    lhs, rhs = fdr_sides(problem, grid.points, eta, batch, replacement)
    return float(p @ lhs), float(p @ rhs)
