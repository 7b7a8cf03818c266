"""Particles of the ``hjb`` model: controlled SGD and plain SGD by Euler-Maruyama, with the same
noise (thesis 4.33, Theorem 4.11).

The controlled particles X follow dX = -(grad f + alpha*) dt + sqrt(2 nu) dB with the feedback
alpha* = grad u(., t_k) interpolated at X and frozen on [t_k, t_k+1); they carry the running
cost 1/2 int |alpha*|^2. The plain-SGD particles Y follow dY = -grad f dt + sqrt(2 nu) dB with
the same increments dB. Histograms and moments on the mesh treat periodic axes as a torus.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..landscape import interpolate


@dataclass
class Particles:
    """Controlled positions ``X``, plain-SGD positions ``Y`` (both (n, d)) and the running
    control cost of each controlled particle."""

    X: np.ndarray
    Y: np.ndarray
    running: np.ndarray

    @classmethod
    def start(cls, x0: np.ndarray, spread: float, n: int, rng: np.random.Generator) -> "Particles":
        """n particles at x0 plus a Gaussian spread (both ensembles start at the same points)."""
        X = x0[None, :] + spread * rng.standard_normal((n, x0.size))
        return cls(X, X.copy(), np.zeros(n))


def feedback(grad_u: np.ndarray, mesh: Any, X: np.ndarray) -> np.ndarray:
    """alpha* = grad u at the points X (n, d), interpolated from ``grad_u`` (d, *cells)."""
    return np.stack([interpolate(grad_u[e], mesh, X) for e in range(mesh.ndim)], axis=-1)


def euler_maruyama_step(p: Particles, grad_f: Callable[[np.ndarray], np.ndarray], grad_u: np.ndarray,
                        mesh: Any, nu: float, dt: float, rng: np.random.Generator) -> Particles:
    """One Euler-Maruyama step of both ensembles (the running cost is updated in place)."""
    n, d = p.X.shape
    alpha = feedback(grad_u, mesh, p.X)
    p.running += 0.5 * np.sum(alpha ** 2, axis=1) * dt
    xi = np.sqrt(2.0 * nu * dt) * rng.standard_normal((n, d))
    X = p.X - (grad_f(p.X) + alpha) * dt + xi
    Y = p.Y - grad_f(p.Y) * dt + xi
    return Particles(X, Y, p.running)


def wrap(mesh: Any, pts: np.ndarray) -> np.ndarray:
    """Positions with periodic axes wrapped into the box (the particles live on the torus)."""
    pts = pts.copy()
    for d in range(mesh.ndim):
        if mesh.boundary[d][0].kind == "periodic":
            pts[:, d] = mesh.lower[d] + np.mod(pts[:, d] - mesh.lower[d], mesh.upper[d] - mesh.lower[d])
    return pts


def outside(mesh: Any, pts: np.ndarray) -> float:
    """Fraction of the particles outside the box on its non-periodic axes."""
    out = np.zeros(pts.shape[0], bool)
    for d in range(mesh.ndim):
        if mesh.boundary[d][0].kind != "periodic":
            out |= (pts[:, d] < mesh.lower[d]) | (pts[:, d] > mesh.upper[d])
    return float(out.mean())


def histogram(mesh: Any, pts: np.ndarray) -> np.ndarray:
    """The particles' density on the cells (mass 1 for the particles inside the box)."""
    edges = [np.asarray(f) for f in mesh.faces]
    H, _ = np.histogramdd(wrap(mesh, pts), bins=edges)
    return H / (pts.shape[0] * mesh.cell_volume)


def mean_and_stderr(mesh: Any, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis mean of the (wrapped) positions and its Monte Carlo standard error."""
    w = wrap(mesh, pts)
    return w.mean(axis=0), w.std(axis=0, ddof=1) / np.sqrt(pts.shape[0])
