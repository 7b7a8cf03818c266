"""Symmetric alpha-stable noise and escape times of Levy-driven SGD (review (36)).

Convention: a standard symmetric alpha-stable variable Z has E exp(i t Z) = exp(-|t|^alpha)
(scipy ``levy_stable(alpha, 0)`` with its default S1 parametrisation, scale 1). For alpha = 2,
Z ~ N(0, 2). The Levy motion L_t has increments L_{t+dt} - L_t ~ dt^(1/alpha) Z, and its
Levy measure is c_alpha |y|^(-1-alpha) dy with c_alpha = Gamma(1 + alpha) sin(pi alpha / 2) / pi.

Particles of dX = -U'(X) dt + eps dL^alpha (Euler-Maruyama) started at a minimum leave an
interval around it. Small-noise asymptotics (Imkeller & Pavlyukevich 2006): for alpha < 2 the
mean first exit time from (x* - w_-, x* + w_+) is

    E tau ~ alpha / (c_alpha eps^alpha (w_-^-alpha + w_+^-alpha)),

a power law in eps and in the width (exponent alpha), not the Kramers/Arrhenius
exp(Delta U / eps^2) of Brownian noise; for alpha = 2 (eps dL = eps sqrt(2) dW, temperature
D = eps^2) the mean exit time is the classical one-dimensional formula of :func:`brownian_exit_time`.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import integrate

__all__ = ["stable", "levy_constant", "levy_exit_time_asymptotic", "brownian_exit_time", "exit_times",
           "scaling_exponent"]


def stable(alpha: float, size, rng: np.random.Generator) -> np.ndarray:
    """Standard symmetric alpha-stable samples (E e^{itZ} = e^{-|t|^alpha}), Chambers-Mallows-Stuck."""
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"the tail index alpha must be in (0, 2], got {alpha}")
    V = rng.uniform(-0.5 * np.pi, 0.5 * np.pi, size)
    W = rng.exponential(1.0, size)
    if alpha == 1.0:
        return np.tan(V)
    return (np.sin(alpha * V) / np.cos(V) ** (1.0 / alpha)
            * (np.cos(V - alpha * V) / W) ** ((1.0 - alpha) / alpha))


def levy_constant(alpha: float) -> float:
    """c_alpha: the Levy measure of the standard symmetric alpha-stable motion is c_alpha |y|^(-1-alpha) dy."""
    return math.gamma(1.0 + alpha) * math.sin(math.pi * alpha / 2.0) / math.pi


def levy_exit_time_asymptotic(alpha: float, eps: float, width_left: float, width_right: float) -> float:
    """Small-noise mean exit time alpha / (c_alpha eps^alpha (w_-^-alpha + w_+^-alpha)) (alpha < 2)."""
    rate = levy_constant(alpha) * eps ** alpha * (width_left ** -alpha + width_right ** -alpha) / alpha
    return 1.0 / rate


def brownian_exit_time(U: Callable, D: float, left: float, right: float, x0: float) -> float:
    """Exact mean exit time of dX = -U'(X) dt + sqrt(2 D) dW from (left, right) started at x0.

    T solves D T'' - U' T' = -1, T(left) = T(right) = 0; with psi = exp(U/D) and
    I(y) = int_left^y exp(-U/D) / D, T(x) = C S(x) - int_left^x psi I, S(x) = int_left^x psi,
    C = (int_left^right psi I) / S(right). (Quadrature; U is shifted by U(x0) for range.)
    """
    u0 = U(x0)
    psi = lambda y: math.exp((U(y) - u0) / D)       # noqa: E731
    inner = lambda y: integrate.quad(lambda z: math.exp(-(U(z) - u0) / D) / D, left, y, limit=200)[0]   # noqa: E731
    S = lambda x: integrate.quad(psi, left, x, limit=200)[0]                     # noqa: E731
    PI = lambda x: integrate.quad(lambda y: psi(y) * inner(y), left, x, limit=200)[0]   # noqa: E731
    C = PI(right) / S(right)
    return C * S(x0) - PI(x0)


def exit_times(grad_U: Callable, alpha: float, eps: float, left: float, right: float, x0: float,
               particles: int, dt: float, rng: np.random.Generator, t_max: float = np.inf) -> np.ndarray:
    """First exit times from (left, right) of Euler-Maruyama particles of dX = -U'(X) dt + eps dL^alpha.

    Every particle starts at x0; a particle is done at the first step that lands outside. Particles
    still inside at ``t_max`` get ``inf`` (the caller decides; the mean then is infinite).
    """
    x = np.full(particles, float(x0))
    alive = np.arange(particles)
    tau = np.full(particles, np.inf)
    scale = eps * dt ** (1.0 / alpha)
    n = 0
    while alive.size and n * dt < t_max:
        n += 1
        xa = x[alive]
        xa = xa - dt * grad_U(xa) + scale * stable(alpha, xa.size, rng)
        out = (xa <= left) | (xa >= right)
        tau[alive[out]] = n * dt
        x[alive] = xa
        alive = alive[~out]
    return tau


def scaling_exponent(levels, times) -> float:
    """Least-squares slope of log(times) against log(levels)."""
    return float(np.polyfit(np.log(levels), np.log(times), 1)[0])
