"""Activations sigma with sigma' and the primitive Sigma (Sigma(0) = 0), as numba kernels.

The fused kernels are what the network's time loop calls:
``pre_activation`` forms u = a - scale*P and sigma(u) in one pass;
``backprop`` forms sigma'(u) * w. The activation is selected by an integer
code (branch hoisted out of the loop by the compiler).
"""
import math

import numba
import numpy as np

NAMES = ("identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "arctan")
CODE = {name: i for i, name in enumerate(NAMES)}
LEAK = 0.1  # leaky relu: max(0.1 s, s)


@numba.njit(cache=True, inline="always")
def sigma(s, code):
    if code == 0:
        return s
    if code == 1:
        return s if s > 0.0 else 0.0
    if code == 2:
        return s if s > 0.0 else LEAK * s
    if code == 3:
        return s if s > 0.0 else math.expm1(s)
    if code == 4:
        return math.tanh(s)
    if code == 5:
        if s >= 0.0:
            return 1.0 / (1.0 + math.exp(-s))
        e = math.exp(s)
        return e / (1.0 + e)
    return math.atan(s)


@numba.njit(cache=True, inline="always")
def sigma_prime(s, code):
    if code == 0:
        return 1.0
    if code == 1:
        return 1.0 if s > 0.0 else 0.0
    if code == 2:
        return 1.0 if s > 0.0 else LEAK
    if code == 3:
        return 1.0 if s > 0.0 else math.exp(s)
    if code == 4:
        t = math.tanh(s)
        return 1.0 - t * t
    if code == 5:
        g = sigma(s, 5)
        return g * (1.0 - g)
    return 1.0 / (1.0 + s * s)


@numba.njit(cache=True, inline="always")
def sigma_primitive(s, code):
    if code == 0:
        return 0.5 * s * s
    if code == 1:
        return 0.5 * s * s if s > 0.0 else 0.0
    if code == 2:
        return 0.5 * s * s if s > 0.0 else 0.5 * LEAK * s * s
    if code == 3:
        return 0.5 * s * s if s > 0.0 else math.expm1(s) - s
    if code == 4:  # log cosh, overflow-free
        a = abs(s)
        return a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0)
    if code == 5:  # softplus - log 2
        a = abs(s)
        return max(s, 0.0) + math.log1p(math.exp(-a)) - math.log(2.0)
    return s * math.atan(s) - 0.5 * math.log1p(s * s)


@numba.njit(cache=True)
def pre_activation(a, P, scale, code, F, U):
    """U = a - scale*P (a broadcast over rows), F = sigma(U). P, F, U are (S, N)."""
    S, N = P.shape
    for s in range(S):
        for i in range(N):
            u = a[i] - scale * P[s, i]
            U[s, i] = u
            F[s, i] = sigma(u, code)


@numba.njit(cache=True)
def backprop(U, W, code, out):
    """out = sigma'(U) * W, all (S, N)."""
    S, N = U.shape
    for s in range(S):
        for i in range(N):
            out[s, i] = sigma_prime(U[s, i], code) * W[s, i]


@numba.njit(cache=True)
def tangent(U, V, scale, code, out):
    """out = -scale * sigma'(U) * V (the Jacobian-vector product after the kernel)."""
    S, N = U.shape
    for s in range(S):
        for i in range(N):
            out[s, i] = -scale * sigma_prime(U[s, i], code) * V[s, i]


@numba.njit(cache=True)
def apply_elementwise(U, code, which):
    """sigma (which = 0), sigma' (1) or Sigma (2) of every entry of U."""
    out = np.empty_like(U)
    flat, res = U.ravel(), out.ravel()
    for i in range(flat.size):
        if which == 0:
            res[i] = sigma(flat[i], code)
        elif which == 1:
            res[i] = sigma_prime(flat[i], code)
        else:
            res[i] = sigma_primitive(flat[i], code)
    return out


class Activation:
    """Python face of one activation: ``act(u)``, ``act.prime(u)``, ``act.primitive(u)``."""

    def __init__(self, name):
        if name not in CODE:
            raise ValueError(f"unknown activation {name!r}; one of {', '.join(NAMES)}")
        self.name, self.code = name, CODE[name]

    def _apply(self, u, which):
        return apply_elementwise(np.ascontiguousarray(u, dtype=float), self.code, which)

    def __call__(self, u):
        return self._apply(u, 0)

    def prime(self, u):
        return self._apply(u, 1)

    def primitive(self, u):
        return self._apply(u, 2)


def kernels():
    """The numba dispatchers of this module (for compile/cache statistics)."""
    return [pre_activation, backprop, tangent, apply_elementwise]


def compile_stats(dispatchers=None):
    """(loaded from cache, compiled) signature counts of numba dispatchers in this process."""
    dispatchers = kernels() if dispatchers is None else dispatchers
    hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    return hits, misses
