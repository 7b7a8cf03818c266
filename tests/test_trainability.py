"""Trainability against depth (review Fig. 1b): the numba training driver and the fit of
L* = c xi_c."""
import math

import numpy as np
import pytest

from pdenet.meanfield import trainability as tb
from pdenet.meanfield import critical_sw2, xi_c


def _synthetic(c_true, noise=0.0, seed=0):
    sw2 = np.linspace(1.0, 4.0, 13)
    depths = np.array([6, 9, 12, 16, 20, 25, 32, 40, 50, 64, 80, 100])
    xc = np.array([xi_c(s, 0.05, "tanh") for s in sw2])
    rng = np.random.default_rng(seed)
    limit = c_true * xc * np.exp(noise * rng.standard_normal(sw2.size))
    acc = np.where(depths[None, :] < limit[:, None], 0.9, 0.1)
    return tb.TrainabilityGrid(sw2, depths, acc, 0.05, xc, critical_sw2(0.05, "tanh"))


@pytest.mark.parametrize("c_true", [3.0, 4.5, 6.0])
def test_fit_recovers_the_constant(c_true):
    """Accuracy grids cut at exactly c xi_c: the fitted c lies within the grid's resolution
    (the transition is the geometric mid-point of two depths, at most ~15 % off) and its
    interval covers it; the deepest trainable column is within one cell of the critical line."""
    fit = tb.fit_depth_constant(_synthetic(c_true), 0.5)
    assert abs(math.log(fit.c / c_true)) < 0.15
    assert fit.ci[0] < c_true * 1.15 and fit.ci[1] > c_true / 1.15
    assert abs(fit.peak_sw2 - critical_sw2(0.05, "tanh")) <= 0.25
    wrong = tb.fit_depth_constant(_synthetic(2 * c_true), 0.5)
    assert wrong.ci[0] > fit.ci[1]


@pytest.mark.slow
def test_driver_trains_shallow_and_fails_deep_ordered():
    """The numba driver on digits: a depth-4 network at the critical point learns (training
    accuracy > 0.6 after 200 steps, from ~0.1), a depth-40 network deep in the ordered phase
    (sigma_w^2 = 1, xi_c = 3.6) stays at chance."""
    pytest.importorskip("sklearn")
    X, y, classes = tb.load("digits")
    before, after, loss = tb.train_once(X, y, classes, 4, 32, 1.76, 0.05, steps=200)
    assert before < 0.3 and after > 0.6 and np.isfinite(loss)
    _, deep, _ = tb.train_once(X, y, classes, 40, 32, 1.0, 0.05, steps=200)
    assert deep < 0.2
