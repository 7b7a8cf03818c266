"""Out-of-equilibrium steady states of the Fokker-Planck equation (Chaudhari's thesis ch. 6).

For a steady state rho_ss of rho_t = -div J (J = v rho - div(D rho) or v rho - D grad rho):

* the implicit potential Phi = -T log rho_ss (so rho_ss ∝ exp(-Phi/T)), shifted to min Phi = 0,
  in the units of the case's temperature T (``[model] temperature``; default the scalar D when
  the diffusion is isotropic and constant, else 1): for a gradient drift -grad f with D = T I,
  Phi = f - min f (Lemma 6.27);
* the conservative force j = J_ss / rho_ss (cell centres), zero at equilibrium (detailed balance);
* the residuals of div(j rho_ss) = div J_ss = 0 (central differences of the cell-centred
  current: a consistency check of order 2) and of j . grad Phi = 0 (Assumption 6.22 / Theorem
  6.46: zero when div j = 0, e.g. linear systems; not zero in general, e.g. Example 6.43);
* the free energy F(rho) = T KL(rho || rho_ss) (Theorem 6.24), non-increasing in time, with its
  energetic-entropic split (6.30) F = E_rho[Phi] - T H(rho) + c;
* the most likely points (local minima of Phi) beside the critical points of the loss (zeros of
  the deterministic drift), Theorem 6.48;
* for the linear system dX = -F X dt + sqrt(2D) dB, Lemma 6.44: the stationary covariance
  Sigma (F Sigma + Sigma F^T = 2D), U = Sigma^-1 (Phi = x^T U x / 2) and the antisymmetric Q
  with F = (D + Q) U.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import optimize

from ..errors import PdenetError
from .fv import FokkerPlanckOperator


# -- Lemma 6.44 --------------------------------------------------------------------------------
def linear_decomposition(F: Any, D: Any, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """Stationary covariance, U and Q of dX = -F X dt + sqrt(2 T D) dB (F stable, D SPD).

    Sigma solves the Lyapunov equation F Sigma + Sigma F^T = 2 T D, here by the Kronecker
    system (I ⊗ F + F ⊗ I) vec Sigma = vec(2 T D) (independent of scipy's Bartels-Stewart);
    U = T Sigma^-1 so that rho_ss ∝ exp(-x^T U x / (2T)); D + Q = F U^-1, whose symmetric part is
    D by the Lyapunov equation, so Q = (F Sigma - Sigma F^T) / (2 T) is antisymmetric and
    F = (D + Q) U (thesis (6.47))."""
    F, D = np.asarray(F, dtype=float), np.asarray(D, dtype=float)
    n = F.shape[0]
    if F.shape != (n, n) or D.shape != (n, n):
        raise ValueError("F and D must be square matrices of one size")
    if not np.allclose(D, D.T) or np.linalg.eigvalsh(0.5 * (D + D.T)).min() <= 0:
        raise ValueError("D must be symmetric positive definite")
    if np.linalg.eigvals(F).real.min() <= 0:
        raise ValueError("F must be stable (eigenvalues with positive real part): no stationary covariance")
    I = np.eye(n)
    K = np.kron(I, F) + np.kron(F, I)
    Sigma = np.linalg.solve(K, (2.0 * temperature * D).reshape(-1, order="F")).reshape(n, n, order="F")
    Sigma = 0.5 * (Sigma + Sigma.T)
    U = temperature * np.linalg.inv(Sigma)
    Q = (F @ Sigma - Sigma @ F.T) / (2.0 * temperature)
    return {"covariance": Sigma, "U": 0.5 * (U + U.T), "Q": 0.5 * (Q - Q.T)}


# -- fields of a steady state --------------------------------------------------------------------
def potential(rho_ss: np.ndarray, temperature: float) -> np.ndarray:
    """Phi = -T log rho_ss shifted to min Phi = 0 (inf where rho_ss <= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = -temperature * np.log(np.where(rho_ss > 0, rho_ss, np.nan))
    phi = phi - np.nanmin(phi)
    return np.where(np.isnan(phi), np.inf, phi)


def conservative_force(op: FokkerPlanckOperator, rho_ss: np.ndarray) -> np.ndarray:
    """j = J_ss / rho_ss at the cell centres, (ndim, *cells)."""
    J = op.current(rho_ss)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho_ss > 0, J / rho_ss, 0.0)


def _grad(mesh, u: np.ndarray) -> list[np.ndarray]:
    """Central differences (one-sided at the walls), the mesh's spacing."""
    return [np.gradient(u, mesh.spacing[d], axis=d) if mesh.cells[d] > 1 else np.zeros_like(u)
            for d in range(mesh.ndim)]


def residuals(op: FokkerPlanckOperator, rho_ss: np.ndarray, phi: np.ndarray, j: np.ndarray,
              weight_floor: float = 1e-3) -> dict[str, float]:
    """L2 (midpoint rule) of div(j rho_ss) and of j . grad Phi over the cells where rho_ss is
    above ``weight_floor`` times its maximum (Phi and j are unreliable where rho_ss underflows)."""
    mesh = op.mesh
    keep = rho_ss > weight_floor * rho_ss.max()
    jr = j * rho_ss
    div = sum(_grad(mesh, jr[d])[d] for d in range(mesh.ndim))
    gphi = _grad(mesh, np.where(np.isfinite(phi), phi, 0.0))
    dot = sum(j[d] * gphi[d] for d in range(mesh.ndim))
    l2 = lambda u: float(np.sqrt(mesh.integrate(np.where(keep, u, 0.0) ** 2)))  # noqa: E731
    return {"residual_div_j_rho": l2(div), "residual_j_dot_grad_phi": l2(dot),
            "j_l2": l2(np.sqrt((j ** 2).sum(axis=0)) * np.sqrt(rho_ss))}


def kl_split(mesh, rho: np.ndarray, rho_ss: np.ndarray, phi: np.ndarray, temperature: float) -> dict[str, float]:
    """kl_to_steady = T KL(rho || rho_ss) (mass-normalised rho), kl_energetic = E_rho[Phi],
    kl_entropic = T int rho log rho = -T H(rho); kl_to_steady - energetic - entropic is constant.
    rho_ss is floored at 1e-14 of its maximum (a full tensor's cross terms leave ~1e-12 negative
    values in the far tails, where Phi = inf); there Phi counts as -T log(floor)."""
    floor = 1e-14 * rho_ss.max()
    rho_ss = np.maximum(rho_ss, floor)
    phi = np.where(np.isfinite(phi), phi, -temperature * np.log(floor / rho_ss.max()))
    m = mesh.integrate(rho)
    p = rho / m if m > 0 else rho
    pos = p > 0
    lp = np.zeros_like(p)
    lp[pos] = np.log(p[pos])
    with np.errstate(divide="ignore"):
        ls = np.where(rho_ss > 0, np.log(np.where(rho_ss > 0, rho_ss, 1.0)), -np.inf)
    kl = np.where(pos, p * (lp - ls), 0.0)
    return {"kl_to_steady": float(temperature * mesh.integrate(kl)),
            "kl_energetic": float(mesh.integrate(np.where(pos, p * phi, 0.0))),
            "kl_entropic": float(temperature * mesh.integrate(p * lp))}


# -- critical points -----------------------------------------------------------------------------
def local_minima(mesh, u: np.ndarray, rel_depth: float = 1e-9, strict: bool = False) -> np.ndarray:
    """Cells where u is below all its 3^ndim - 1 neighbours (not strict: not above any), refined
    by the vertex of the 1-D parabola through the three values along each axis: (k, ndim) points."""
    nd = mesh.ndim
    pad = np.pad(u, 1, mode="constant", constant_values=np.inf)
    is_min = np.isfinite(u)
    for off in np.ndindex(*(3,) * nd):
        if all(o == 1 for o in off):
            continue
        sl = tuple(slice(o, o + n) for o, n in zip(off, mesh.cells))
        if strict:
            is_min &= u < pad[sl] - rel_depth * (1.0 + abs(np.nanmax(np.where(np.isfinite(u), u, np.nan))))
        else:
            is_min &= u <= pad[sl]
    pts = []
    centres = mesh.centres()
    for idx in zip(*np.nonzero(is_min)):
        x = np.array([c[idx] for c in centres], dtype=float)
        for d in range(nd):
            lo, hi = list(idx), list(idx)
            lo[d] -= 1
            hi[d] += 1
            if lo[d] < 0 or hi[d] >= mesh.cells[d]:
                continue
            a, b, c = u[tuple(lo)], u[idx], u[tuple(hi)]
            den = a - 2 * b + c
            if np.isfinite(den) and den > 0:
                x[d] += 0.5 * mesh.spacing[d] * (a - c) / den
        pts.append(x)
    # tied neighbouring cells (a minimum between cell centres, by symmetry): one point, their mean
    merged: list[list[np.ndarray]] = []
    reach = 1.5 * max(mesh.spacing)
    for x in pts:
        for group in merged:
            if np.linalg.norm(group[0] - x) < reach:
                group.append(x)
                break
        else:
            merged.append([x])
    return np.array([np.mean(g, axis=0) for g in merged]).reshape(-1, nd)


def drift_zeros(mesh, velocity: Callable[[np.ndarray], np.ndarray], starts: np.ndarray,
                tol: float = 1e-9) -> np.ndarray:
    """Zeros of the deterministic drift v(x) (the critical points of the loss for v = -grad f),
    by scipy's hybrid root finder from each start; those inside the box, deduplicated."""
    lo, hi = np.array(mesh.lower), np.array(mesh.upper)
    out: list[np.ndarray] = []
    for x0 in np.atleast_2d(starts):
        if not np.all(np.isfinite(x0)):
            continue
        try:   # a start whose iterates leave the range where the expressions are finite: no zero
            sol = optimize.root(lambda x: velocity(np.clip(x, lo, hi).reshape(1, -1))[0], x0, method="hybr",
                                tol=1e-12)
        except (ValueError, ArithmeticError, PdenetError):
            continue
        x = sol.x
        if not sol.success or np.any(x < lo) or np.any(x > hi) or np.linalg.norm(velocity(x.reshape(1, -1))[0]) > tol:
            continue
        if all(np.linalg.norm(x - y) > 1e-6 * np.linalg.norm(hi - lo) for y in out):
            out.append(x)
    return np.array(out).reshape(-1, mesh.ndim)


def nearest_shift(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each point, the vector to the nearest target (nan when there are no targets)."""
    if len(targets) == 0:
        return np.full_like(points, np.nan)
    d = np.linalg.norm(points[:, None, :] - targets[None, :, :], axis=2)
    return targets[np.argmin(d, axis=1)] - points
