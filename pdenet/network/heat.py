"""HEAT (``[train] method = "heat"``): gradient descent on the loss smoothed by the heat equation,
the thesis's (4.28) implemented as (4.43).

    x^{k+1} = P(x^k - eta/L sum_{i=1}^L grad f(x^k + eps^i)),   eps^i ~ N(0, gamma_k I),

gamma_k = gamma_0 (1 - gamma_1)^k the variance of the Gaussian (scoping), L gradient evaluations
per iteration (mini-batch ones with ``batch_size`` > 0), each perturbation drawn afresh. grad f *
G_gamma is the gradient of the heat-equation solution v(x, gamma) of (4.28) up to the constant in
the time scale. Defaults: ``langevin_steps`` L = 20 (Sect. 4.6.1.3); the thesis gives no value of
gamma for HEAT, so ``gamma`` defaults to 1e-4 here (perturbations of relative size ~1e-2 on O(1)
weights), ``scoping`` 1e-3.
"""
from __future__ import annotations

import numpy as np

from .drivers import scoped_descent

__all__ = ["heat", "DEFAULTS"]

DEFAULTS = {"langevin_steps": 20, "gamma": 1e-4, "scoping": 1e-3}


def heat(objective, iterations, lr, gamma=1e-4, scoping=1e-3, langevin_steps=20, seed=0, box=None, metric=None,
         callback=None):
    """Train ``objective.params`` in place; returns the history (module docstring)."""
    if gamma < 0 or langevin_steps < 1:
        raise ValueError(f"heat needs gamma >= 0 and langevin_steps >= 1, got {gamma}, {langevin_steps}")
    rng = np.random.default_rng([seed, 11])

    def direction(flat, x, g_k):   # the gradient averaged over Gaussian perturbations of variance g_k
        total = np.zeros_like(x)
        for _ in range(langevin_steps):
            total += flat.gradient(x + np.sqrt(g_k) * flat.normal(rng))[1]
        return total / langevin_steps
    return scoped_descent(objective, iterations, lr, gamma, scoping, box, metric, callback, direction)
