"""The discrete master equation of SGD (review (37)) as a transfer operator on a grid.

rho_{k+1}(theta) = E_{theta' ~ rho_k, B} delta(theta - [theta' - eta g_B(theta')]): on a uniform
tensor grid (1-D or 2-D) the mass at node y moves, for each mini-batch B with probability p_B, to
y - eta g_B(y), and is shared among the 2^d nodes of the landing cell by multilinear weights
(a point outside the grid box is first clamped onto it). The result is a sparse column-stochastic
matrix T (p_{k+1} = T p_k on node masses), its stationary vector the eigenvector of eigenvalue 1 (power iteration).

The weights reproduce every observable that is multilinear on each cell exactly, so the
master-equation identity (38), E_ss[O] = E_ss[E_B O(theta - eta g_B(theta))], holds on the grid
exactly for O replaced by its multilinear interpolant at the landing points (and up to the
interpolation error O(h^2) for smooth O): :func:`identity_38` measures both.

The continuous-time prediction is the stationary Fokker-Planck density of
dX = -f'(X) dt + sqrt(eta Sigma_B(X)) dW; in 1-D its zero-flux solution is
p(x) = C / D(x) exp(-int^x f'(z) / D(z) dz), D = eta Sigma_B / 2 (:func:`fp_steady_state_1d`).
"""
from __future__ import annotations

import numpy as np
from scipy import integrate, sparse

from .problems import batches

__all__ = ["Grid", "transfer_operator", "stationary", "fp_steady_state_1d", "identity_38", "batch_set"]


class Grid:
    """A uniform tensor grid: ``axes`` a list of 1-D node arrays (increasing, equally spaced)."""

    def __init__(self, axes):
        self.axes = [np.asarray(a, float) for a in axes]
        self.d = len(self.axes)
        self.shape = tuple(a.size for a in self.axes)
        self.h = np.array([a[1] - a[0] for a in self.axes])
        mesh = np.meshgrid(*self.axes, indexing="ij")
        self.points = np.stack([m.ravel() for m in mesh], axis=1)          # (M, d), C order
        self.size = self.points.shape[0]

    def weights(self, x):
        """(node indices (n, 2^d), weights (n, 2^d)) of points x (n, d) (clamped into the box)."""
        n = x.shape[0]
        lo = np.empty((n, self.d), dtype=int)
        frac = np.empty((n, self.d))
        for j, a in enumerate(self.axes):
            t = (np.clip(x[:, j], a[0], a[-1]) - a[0]) / self.h[j]
            i = np.minimum(np.floor(t).astype(int), a.size - 2)
            lo[:, j], frac[:, j] = i, t - i
        idx = np.zeros((n, 2 ** self.d), dtype=int)
        w = np.ones((n, 2 ** self.d))
        for corner in range(2 ** self.d):
            flat = np.zeros(n, dtype=int)
            for j in range(self.d):
                bit = (corner >> (self.d - 1 - j)) & 1
                flat = flat * self.shape[j] + lo[:, j] + bit
                w[:, corner] *= frac[:, j] if bit else 1.0 - frac[:, j]
            idx[:, corner] = flat
        return idx, w

    def interpolate(self, values, x):
        """The multilinear interpolant of nodal ``values`` (M,) at points x (n, d)."""
        idx, w = self.weights(x)
        return np.sum(w * values[idx], axis=1)


def batch_set(N, size, replacement=True, samples=None, rng=None):
    """(indices (B, size), probabilities): every batch, or ``samples`` batches drawn with ``rng``
    (equal probabilities) when given."""
    if samples is None:
        return batches(N, size, replacement)
    rng = np.random.default_rng(0) if rng is None else rng
    if replacement:
        idx = rng.integers(0, N, (samples, size))
    else:
        idx = np.array([rng.choice(N, size, replace=False) for _ in range(samples)])
    return idx, np.full(samples, 1.0 / samples)


def transfer_operator(problem, grid: Grid, eta: float, batch_idx, batch_p):
    """Sparse column-stochastic T: (T p)_x = sum_y sum_B p_B w(x; y - eta g_B(y)) p_y."""
    M = grid.size
    rows, cols, vals = [], [], []
    nodes = np.arange(M)
    for b, pb in zip(batch_idx, batch_p):
        g = problem.batch_grad(grid.points, np.broadcast_to(b, (M, b.size)))
        idx, w = grid.weights(grid.points - eta * g)
        rows.append(idx.ravel())
        cols.append(np.repeat(nodes, idx.shape[1]))
        vals.append(pb * w.ravel())
    T = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(M, M))
    return T


def stationary(T, tol: float = 1e-14, maxiter: int = 200_000, p0=None) -> np.ndarray:
    """The probability vector p with T p = p, by power iteration from ``p0`` (default uniform) until
    the L1 change of one step is below ``tol`` (the chain contracts at the rate of SGD's mixing,
    ~ 1 - eta lambda_min(H) per step near a minimum; a sparse direct solve fills in badly in 2-D)."""
    M = T.shape[0]
    p = np.full(M, 1.0 / M) if p0 is None else np.asarray(p0, float) / np.sum(p0)
    T = T.tocsr()
    for _ in range(int(maxiter)):
        q = T @ p
        change = np.abs(q - p).sum()
        p = q
        if change < tol:
            break
    else:
        raise RuntimeError(f"power iteration did not reach {tol:g} in {maxiter} steps (last change {change:.3g})")
    return p / p.sum()


def fp_steady_state_1d(grad_f, sigma_b, eta, nodes) -> np.ndarray:
    """Stationary FP density at ``nodes`` of dX = -f' dt + sqrt(eta Sigma_B) dW (normalised to
    integrate to 1 by the trapezoidal rule): p = C/D exp(-int f'/D), D = eta Sigma_B / 2."""
    x = np.asarray(nodes, float)
    D = lambda z: 0.5 * eta * sigma_b(z)                     # noqa: E731
    ratio = lambda z: grad_f(z) / D(z)                        # noqa: E731
    # the potential int_{x0}^x f'/D from the node nearest the minimum (|f'| smallest), by quadrature
    i0 = int(np.argmin(np.abs(grad_f(x))))
    phi = np.zeros_like(x)
    for i in range(i0 + 1, x.size):
        phi[i] = phi[i - 1] + integrate.quad(ratio, x[i - 1], x[i])[0]
    for i in range(i0 - 1, -1, -1):
        phi[i] = phi[i + 1] - integrate.quad(ratio, x[i], x[i + 1])[0]
    p = np.exp(-(phi - phi.min())) / D(x)
    return p / integrate.trapezoid(p, x)


def identity_38(problem, grid: Grid, eta, batch_idx, batch_p, p, observable):
    """(E_ss O, E_ss E_B O(theta - eta g_B) with O exact, the same with O's multilinear interpolant)."""
    lhs = float(p @ observable(grid.points))
    exact, interp = 0.0, 0.0
    values = observable(grid.points)
    for b, pb in zip(batch_idx, batch_p):
        x = grid.points - eta * problem.batch_grad(grid.points, np.broadcast_to(b, (grid.size, b.size)))
        exact += pb * float(p @ observable(x))
        interp += pb * float(p @ grid.interpolate(values, np.clip(x, [a[0] for a in grid.axes],
                                                                  [a[-1] for a in grid.axes])))
    return lhs, exact, interp
