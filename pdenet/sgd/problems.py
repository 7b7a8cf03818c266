"""Finite-sum problems in low dimension for the SGD-as-a-process experiments.

:class:`LeastSquares`: f(theta) = (1/N) sum_i f_i(theta), f_i = (1/2) (x_i . theta - y_i)^2 with
theta in R^d (d = 1 or 2 here). Per-sample gradient g_i = x_i (x_i . theta - y_i), Hessian
H = (1/N) sum_i x_i x_i^T (constant: third and higher derivatives vanish, which makes the
fluctuation-dissipation relation (42) exact), diffusion matrix
Sigma_D(theta) = (1/N) sum_i g_i g_i^T - g g^T.

:class:`Anharmonic1D`: f_i(theta) = (1/2) a_i (theta - b_i)^2 + c (1 - cos theta): a non-quadratic
1-D problem (the higher-order terms of (42) do not vanish).

Mini-batches (:meth:`batches`): every l-subset (``replacement=False``) or every ordered l-tuple
(``replacement=True``) with its probability, enumerated when there are at most ``limit`` of them.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["LeastSquares", "Anharmonic1D", "batches", "batch_factor"]


def batch_factor(samples: int, batch: int, replacement: bool) -> float:
    """c such that the covariance of a size-``batch`` mini-batch mean gradient is c Sigma_D
    (1/l with replacement; (S - l)/(l (S - 1)) without, the finite-population correction).
    Also exported by :mod:`pdenet.network.sgd_noise` (the network package imports this one)."""
    S, l = int(samples), int(batch)
    if not 1 <= l <= S:
        raise ValueError(f"batch size must be in 1..{S}, got {l}")
    if replacement:
        return 1.0 / l
    return (S - l) / (l * (S - 1)) if S > 1 else 0.0


def batches(N: int, size: int, replacement: bool, limit: int = 200_000):
    """(index array (B, size), probabilities (B,)) of every mini-batch of ``size`` of N samples."""
    if replacement:
        count = N ** size
        it = itertools.product(range(N), repeat=size)
    else:
        count = math.comb(N, size)
        it = itertools.combinations(range(N), size)
    if count > limit:
        raise ValueError(f"{count} mini-batches of size {size} out of {N}: more than {limit} to enumerate")
    idx = np.array(list(it), dtype=int).reshape(count, size)
    return idx, np.full(count, 1.0 / count)


class LeastSquares:
    def __init__(self, X, y):
        X = np.asarray(X, float)
        self.X = X.reshape(X.shape[0], -1)
        self.y = np.asarray(y, float).ravel()
        self.N, self.d = self.X.shape
        self.H = self.X.T @ self.X / self.N
        self.minimiser = np.linalg.solve(self.H, self.X.T @ self.y / self.N)

    def per_sample(self, theta):
        """Per-sample gradients (..., N, d) at theta (..., d)."""
        theta = np.asarray(theta, float)
        r = theta @ self.X.T - self.y                  # (..., N)
        return r[..., :, None] * self.X

    def loss(self, theta):
        r = np.asarray(theta, float) @ self.X.T - self.y
        return 0.5 * np.mean(r * r, axis=-1)

    def grad(self, theta):
        return self.per_sample(theta).mean(axis=-2)

    def hessian(self, theta=None):
        return self.H

    def sigma_d(self, theta):
        g = self.per_sample(theta)
        m = g.mean(axis=-2)
        return np.einsum("...ni,...nj->...ij", g, g) / self.N - m[..., :, None] * m[..., None, :]

    def batch_grad(self, theta, idx):
        """Mini-batch gradients: theta (..., d), idx (..., l) sample indices -> (..., d)."""
        theta = np.asarray(theta, float)
        Xb, yb = self.X[idx], self.y[idx]                # (..., l, d), (..., l)
        r = np.einsum("...ld,...d->...l", Xb, theta) - yb
        return np.einsum("...l,...ld->...d", r, Xb) / idx.shape[-1]


class Anharmonic1D:
    def __init__(self, a, b, c):
        self.a, self.b, self.c = np.asarray(a, float), np.asarray(b, float), float(c)
        self.N, self.d = self.a.size, 1

    def per_sample(self, theta):
        theta = np.asarray(theta, float)
        g = self.a * (theta[..., :1] - self.b) + self.c * np.sin(theta[..., :1])
        return g[..., :, None]

    def loss(self, theta):
        t = np.asarray(theta, float)[..., :1]
        return np.mean(0.5 * self.a * (t - self.b) ** 2, axis=-1) + self.c * (1 - np.cos(t[..., 0]))

    def grad(self, theta):
        return self.per_sample(theta).mean(axis=-2)

    def hessian(self, theta):
        t = np.asarray(theta, float)[..., 0]
        return (np.mean(self.a) + self.c * np.cos(t))[..., None, None]

    def sigma_d(self, theta):
        g = self.per_sample(theta)
        m = g.mean(axis=-2)
        return np.einsum("...ni,...nj->...ij", g, g) / self.N - m[..., :, None] * m[..., None, :]

    def batch_grad(self, theta, idx):
        t = np.asarray(theta, float)[..., :1]
        g = self.a[idx] * (t - self.b[idx]) + self.c * np.sin(t)
        return g.mean(axis=-1, keepdims=True)
