"""Mean field for residual networks and the network PDE's own Euler step
z <- z + tau phi(a - B z) (Yang & Schoenholz 2017; review §3.1 extended): the maps against
random residual networks within sampling error, and the depth limit tau -> 0."""
import numpy as np
import pytest

import pdenet
from pdenet.meanfield import residual as rs
from pdenet.meanfield.empirical import correlated_inputs

N, DEPTH, REPS, Z = 600, 25, 150, 5.0

CASES = {  # form, phi, sigma_w^2, sigma_b^2, tau, input offset (a non-zero mean exercises m mu^T)
    "pde-tanh": ("pde", "tanh", 1.5, 0.3, 0.5, 0.0),
    "pde-relu-mean": ("pde", "relu", 1.0, 0.2, 0.3, 0.5),
    "resnet-tanh": ("resnet", "tanh", 1.5, 0.05, 1.0, 0.0),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def experiment(request):
    form, phi, sw2, sb2, tau, off = CASES[request.param]
    X = correlated_inputs(1.0, 0.3, N, np.random.default_rng(1)) + off
    Q0, m0 = rs.input_stats(X, form, sw2, sb2)
    maps = rs.propagate(Q0, m0, sw2, sb2, phi, DEPTH, tau, form)
    net = rs.random_residual(X, sw2, sb2, phi, DEPTH, tau, form, seed=3)
    reps = rs.conditional_residual(X, sw2, sb2, phi, DEPTH, tau, form, REPS, seed=4)
    return request.param, maps, net, reps


def test_random_residual_network_within_five_standard_errors(experiment):
    """One explicit-weight residual network of width 600: q_l and c_l within 5 standard errors
    (spread of 150 networks of the same law) of the residual maps over 25 layers, and the
    replicate mean within 5 standard errors of the mean."""
    _, maps, net, reps = experiment
    for got, want, spread in ((net.q, maps.q, reps.q.std(0, ddof=1)), (net.c, maps.c, reps.c.std(0, ddof=1))):
        assert np.all(np.abs(got - want)[1:] < Z * spread[1:])
    for mean, want, spread in ((reps.q.mean(0), maps.q, reps.q.std(0, ddof=1)),
                               (reps.c.mean(0), maps.c, reps.c.std(0, ddof=1))):
        assert np.all(np.abs(mean - want)[1:] < Z * spread[1:] / np.sqrt(REPS))


def test_the_tolerance_detects_a_wrong_map(experiment):
    """A map without the residual (FC-like, Q_{l+1} = increment only) or with the wrong tau
    is rejected by the same 5-s.e. test."""
    name, maps, net, reps = experiment
    form, phi, sw2, sb2, tau, off = CASES[name]
    wrong = rs.propagate(maps.Q[0], maps.m[0], sw2, sb2, phi, DEPTH, 1.3 * tau, form)
    spread = reps.q.std(0, ddof=1)
    assert np.any(np.abs(reps.q.mean(0) - wrong.q)[1:] > Z * spread[1:] / np.sqrt(REPS))


def test_mean_term_matters_for_relu():
    """Dropping the m mu^T cross term (valid only for odd phi) is visibly wrong for relu with
    a non-zero input mean."""
    X = correlated_inputs(1.0, 0.3, N, np.random.default_rng(1)) + 0.5
    Q0, m0 = rs.input_stats(X)
    good = rs.propagate(Q0, m0, 1.0, 0.2, "relu", 10, 0.3)
    bad = rs.propagate(Q0, 0 * m0, 1.0, 0.2, "relu", 10, 0.3)
    reps = rs.conditional_residual(X, 1.0, 0.2, "relu", 10, 0.3, replicates=50, seed=5)
    se = reps.q.std(0, ddof=1)
    assert np.all(np.abs(reps.q.mean(0) - good.q)[1:] < Z * se[1:])
    assert np.all(np.abs(reps.q.mean(0) - bad.q)[3:] > 10 * se[3:])


@pytest.mark.parametrize("phi, offset", [("relu", 0.5), ("tanh", 0.0)])
def test_depth_limit_is_first_order_in_tau(phi, offset):
    """At fixed T = L tau = 1 the maps converge to the ODE limit (identity for odd phi) with
    observed order 1 in tau."""
    X = correlated_inputs(1.0, 0.3, 50, np.random.default_rng(2)) + offset
    Q0, m0 = rs.input_stats(X)
    lim = rs.depth_limit(Q0, m0, 1.2, 0.2, phi, 1.0)
    errs = []
    for L in (10, 20, 40, 80):
        s = rs.propagate(Q0, m0, 1.2, 0.2, phi, L, 1.0 / L)
        errs.append(np.abs(s.Q[-1] - lim.Q[-1]).max())
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.1), (errs, orders)
    if phi == "tanh":
        np.testing.assert_allclose(lim.Q[-1], Q0, rtol=1e-14)


def test_residual_case_writes_maps_and_network(tmp_path):
    r = pdenet.run(pdenet.load_case(str(CASE), overrides=["model.residual.width=200",
                                                         "model.residual.replicates=20",
                                                         "model.residual.depth=10"]), write=False)
    a = r.analysis
    assert a["residual_q"].shape == (11,) and a["residual_network_q"].shape == (11,)
    assert np.all(np.abs(a["residual_network_q"] - a["residual_q"])[1:] < Z * a["residual_network_q_stderr"][1:])
    assert r.attrs["residual_form"] == "pde"


import os  # noqa: E402
CASE = os.path.join(os.path.dirname(__file__), os.pardir, "cases", "meanfield_residual.toml")
