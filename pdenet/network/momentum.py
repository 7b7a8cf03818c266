"""Heavy-ball momentum and Nesterov's accelerated gradient (``[train] method = "momentum"`` / ``"nesterov"``),
the baseline of every experiment of the thesis (SGD with Nesterov's momentum, Sutskever et al. 2013).

With momentum mu (``[train] momentum``) and step eta (``lr``), v^0 = 0:

* momentum (Polyak's heavy ball):   v^{k+1} = mu v^k - eta grad J(x^k),              x^{k+1} = P(x^k + v^{k+1})
* nesterov (Sutskever et al. 2013): v^{k+1} = mu v^k - eta grad J(x^k + mu v^k),     x^{k+1} = P(x^k + v^{k+1})

P is the projection onto the box (``box_a``/``box_b``); with a box the velocity is the projected
step, v^{k+1} = x^{k+1} - x^k. One gradient evaluation per iteration (a mini-batch one with
``batch_size`` > 0). The history's ``loss`` is J at x^k: for momentum the value the gradient call
at x^k returned (so, like ``gd``, one gradient call more than steps); for nesterov, whose gradient
is taken at the look-ahead point, a forward solve at x^k on the current batch.
"""
from __future__ import annotations

import numpy as np

from .drivers import Flat, History

__all__ = ["momentum"]


def momentum(objective, iterations, lr, mu=0.9, nesterov=False, box=None, metric=None, callback=None):
    """Train ``objective.params`` in place; returns the history (module docstring)."""
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {mu}")
    flat = Flat(objective, box, metric)
    hist = History(callback)
    x = flat.get()
    v = np.zeros_like(x)
    if nesterov:
        stop = hist.record(flat, x, None)
    else:
        J, g = flat.gradient(x)
        stop = hist.record(flat, x, None, J=J)
    for _ in range(iterations):
        if stop:
            break
        if nesterov:
            _, g = flat.gradient(x + mu * v)
        x_new = flat.project(x + (mu * v - lr * g))
        v = x_new - x
        if nesterov:
            stop = hist.record(flat, x_new, x)
        else:
            J, g = flat.gradient(x_new)
            stop = hist.record(flat, x_new, x, J=J)
        x = x_new
    flat.set(x)
    return hist.arrays()
