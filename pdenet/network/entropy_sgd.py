"""Entropy-SGD (``[train] method = "entropy-sgd"``): gradient descent on the local entropy, its
gradient estimated by Langevin dynamics (Chaudhari's thesis, Algorithm 2 and (4.39)-(4.41)).

The local entropy of the loss f at scope gamma and inverse temperature beta is

    f_gamma(x) = -1/beta log int exp(-beta f(y) - beta |x - y|^2 / (2 gamma)) dy,
    grad f_gamma(x) = (x - <y>) / gamma,   <y> the mean of the Gibbs measure
    rho(y; x) ~ exp(-beta [f(y) + |x - y|^2 / (2 gamma)]).

One outer iteration k (L gradient evaluations), gamma_k = gamma_0 (1 - gamma_1)^k (scoping, Sect. 3.2.3):

    y, z <- x
    L times:  y <- y - eta_y [grad f(y) + (y - x) / gamma_k] + sqrt(2 eta_y / beta) N(0, I)   (Alg. 2, l. 3-4)
              z <- alpha z + (1 - alpha) y                                                 (exponential average)
    x <- P(x - eta (x - z))                                                                (Alg. 2 l. 6 scaled)

so (x - z)/gamma_k estimates grad f_gamma_k(x) and the outer step is eta gamma_k times it: the
thesis's line 6 "scaled down by gamma" (Sect. 3.2.3), which keeps the step size independent of the
scoping; eta = 1 gives x <- z. grad f(y) is a mini-batch gradient with ``batch_size`` > 0 (4.40).

Keys and the thesis's defaults (Sect. 4.6.1.1): ``langevin_steps`` L = 20, ``langevin_lr``
eta_y = 0.1, ``averaging`` alpha = 0.25, ``langevin_noise`` 1/beta = 1e-8, ``gamma`` gamma_0
= 100 and ``scoping`` gamma_1 = 1e-3 (Sect. 5.3 / 3.3), ``lr`` eta. The momentum the thesis adds
to both loops is not used here (plain steps).
"""
from __future__ import annotations

import numpy as np

from .drivers import scoped_descent

__all__ = ["entropy_sgd", "langevin", "DEFAULTS"]

DEFAULTS = {"langevin_steps": 20, "langevin_lr": 0.1, "averaging": 0.25, "langevin_noise": 1e-8,
            "gamma": 100.0, "scoping": 1e-3}


def langevin(grad, x, gamma, steps, eta, noise, alpha, rng, y0=None, normal=None):
    """The inner loop: ``steps`` Langevin steps on f(y) + |y - x|^2 / (2 gamma) from y0 (default x)
    with the exponential average z. ``grad(y)`` returns grad f(y); ``normal(rng)`` a standard
    normal vector of the metric (default N(0, I)). Returns (z, y)."""
    y = np.array(x if y0 is None else y0, dtype=float, copy=True)
    z = y.copy()
    amp = np.sqrt(2.0 * eta * noise) if noise > 0.0 else 0.0
    for _ in range(steps):
        dy = grad(y) + (y - x) / gamma
        y = y - eta * dy
        if amp:
            y = y + amp * (rng.standard_normal(y.shape) if normal is None else normal(rng))
        z = alpha * z + (1.0 - alpha) * y
    return z, y


def entropy_sgd(objective, iterations, lr, gamma=100.0, scoping=1e-3, langevin_steps=20, langevin_lr=0.1,
                langevin_noise=1e-8, averaging=0.25, seed=0, box=None, metric=None, callback=None):
    """Train ``objective.params`` in place; returns the history (module docstring)."""
    _check(gamma, langevin_steps, averaging, langevin_noise)
    rng = np.random.default_rng([seed, 7])

    def direction(flat, x, g_k):   # x - <y>: the averaged Langevin point's pull
        z, _ = langevin(lambda y: flat.gradient(y)[1], x, g_k, langevin_steps, langevin_lr, langevin_noise,
                        averaging, rng, normal=flat.normal)
        return x - z
    return scoped_descent(objective, iterations, lr, gamma, scoping, box, metric, callback, direction)


def _check(gamma, steps, alpha, noise):
    if gamma <= 0:
        raise ValueError(f"the scope gamma must be > 0, got {gamma}")
    if steps < 1:
        raise ValueError(f"langevin_steps must be >= 1, got {steps}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"averaging alpha must lie in [0, 1), got {alpha}")
    if noise < 0:
        raise ValueError(f"langevin_noise must be >= 0, got {noise}")
