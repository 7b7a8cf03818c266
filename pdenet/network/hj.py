"""HJ (``[train] method = "hj"``): the non-viscous Hamilton-Jacobi algorithm of the thesis, (4.42).

Lemma 4.1's second form of the local-entropy gradient, grad f_gamma(x) = grad f(x - y*), with y
relaxing towards its fixed point y* = gamma grad f(x - y*): one outer iteration k (L gradient
evaluations), gamma_k = gamma_0 (1 - gamma_1)^k:

    y <- 0
    L - 1 times:  y <- (1 - eta_y / gamma_k) y + eta_y grad f(x - y)          (4.42, first line)
    x <- P(x - eta grad f(x - y))                                             (4.42, k/L an integer)

(the x step uses the gradient at x - y after the L - 1 updates of y; y is re-initialised to 0
every outer iteration). grad f is a mini-batch gradient with ``batch_size`` > 0 (beta_ex^-1 = 0:
the only noise is the mini-batch's). Defaults (Sect. 4.6.1.2): ``langevin_steps`` L = 5,
``langevin_lr`` eta_y = 0.1, ``gamma`` 100, ``scoping`` 1e-3; ``lr`` eta.
"""
from __future__ import annotations

import numpy as np

from .drivers import scoped_descent

__all__ = ["hj", "DEFAULTS"]

DEFAULTS = {"langevin_steps": 5, "langevin_lr": 0.1, "gamma": 100.0, "scoping": 1e-3}


def hj(objective, iterations, lr, gamma=100.0, scoping=1e-3, langevin_steps=5, langevin_lr=0.1, box=None, metric=None,
       callback=None):
    """Train ``objective.params`` in place; returns the history (module docstring)."""
    if gamma <= 0 or langevin_steps < 1:
        raise ValueError(f"hj needs gamma > 0 and langevin_steps >= 1, got {gamma}, {langevin_steps}")

    def direction(flat, x, g_k):   # the gradient at the proximal point x - y of the inner iteration
        y = np.zeros_like(x)
        for _ in range(langevin_steps - 1):
            _, g = flat.gradient(x - y)
            y = (1.0 - langevin_lr / g_k) * y + langevin_lr * g
        return flat.gradient(x - y)[1]
    return scoped_descent(objective, iterations, lr, gamma, scoping, box, metric, callback, direction)
