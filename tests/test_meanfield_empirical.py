"""Wide random networks reproduce the mean-field maps within their sampling error
(review §3.1, eqs. 1–6)."""
import math

import numpy as np
import pytest

from pdenet.meanfield import propagate
from pdenet.meanfield.empirical import (
    conditional_network,
    correlated_inputs,
    random_network,
    sampling_error,
)

WIDTH = 2000
DEPTH = 30
REPLICATES = 200
Q_IN, C_IN = 1.0, 0.6
SB2 = 0.05
Z = 5.0  # tolerance in standard errors


@pytest.fixture(scope="module", params=[1.3, 2.5], ids=["ordered", "chaotic"])
def experiment(request):
    """One explicit-weight tanh network and 200 replicates of the same law (conditional
    sampler) for the standard error of a single width-2000 measurement at each layer."""
    sw2 = request.param
    net = random_network(Q_IN, C_IN, sw2, SB2, "tanh", DEPTH, WIDTH, seed=11)
    reps = conditional_network(Q_IN, C_IN, sw2, SB2, "tanh", DEPTH, WIDTH, REPLICATES, seed=12)
    q_map, c_map = propagate(Q_IN, C_IN, sw2, SB2, "tanh", DEPTH)
    return sw2, net, reps, sampling_error(reps), q_map, c_map


def test_correlated_inputs_are_exact():
    X = correlated_inputs(0.7, -0.3, 500, np.random.default_rng(0))
    G = X.T @ X / 500
    np.testing.assert_allclose(G, [[0.7, -0.21], [-0.21, 0.7]], atol=1e-13)


def test_sampling_error_scales_like_one_over_sqrt_width(experiment):
    """Sanity of the error model: a single layer's chi-square error is sqrt(2/N) q."""
    _, _, _, se, q_map, _ = experiment
    assert se.q_a[0] == pytest.approx(math.sqrt(2 / WIDTH) * q_map[0], rel=0.2)
    assert np.all(se.q_a < 0.1 * q_map)


def test_random_network_reproduces_the_maps_within_sampling_error(experiment):
    """A width-2000 network with explicit Gaussian weights: q_l (both inputs) and c_l stay
    within 5 standard errors of the iterated maps over 30 layers."""
    _, net, _, se, q_map, c_map = experiment
    assert np.all(np.abs(net.q_a - q_map) < Z * se.q_a)
    assert np.all(np.abs(net.q_b - q_map) < Z * se.q_b)
    assert np.all(np.abs(net.c - c_map) < Z * se.c)


def test_replicate_means_converge_to_the_maps(experiment):
    """The mean over 200 replicates agrees with the maps to 5 standard errors of the mean
    (so the finite-width bias is below ~sigma/3 at width 2000)."""
    _, _, reps, se, q_map, c_map = experiment
    n = math.sqrt(REPLICATES)
    assert np.all(np.abs(reps.q_a.mean(0) - q_map) < Z * se.q_a / n)
    assert np.all(np.abs(reps.c.mean(0) - c_map) < Z * se.c / n)


def test_tolerance_detects_a_wrong_map(experiment):
    """The same tolerance rejects the maps of a 10% different sigma_w^2 (the test has power)."""
    sw2, net, _, se, _, _ = experiment
    q_bad, c_bad = propagate(Q_IN, C_IN, 1.1 * sw2, SB2, "tanh", DEPTH)
    assert np.any(np.abs(net.q_a - q_bad) > Z * se.q_a) or np.any(np.abs(net.c - c_bad) > Z * se.c)


def test_critical_relu_network():
    """relu at sigma_w^2 = 2, sigma_b = 0 is critical: q_l = 2 q_in for every layer and c_l
    creeps to 1; the replicate mean tracks the arc-cosine maps."""
    reps = conditional_network(Q_IN, C_IN, 2.0, 0.0, "relu", DEPTH, WIDTH, REPLICATES, seed=5)
    se = sampling_error(reps)
    q_map, c_map = propagate(Q_IN, C_IN, 2.0, 0.0, "relu", DEPTH)
    np.testing.assert_allclose(q_map, 2 * Q_IN, rtol=1e-14)
    assert np.all(np.diff(c_map) > 0) and c_map[-1] < 1
    n = math.sqrt(REPLICATES)
    assert np.all(np.abs(reps.q_a.mean(0) - q_map) < Z * se.q_a / n)
    assert np.all(np.abs(reps.c.mean(0) - c_map) < Z * se.c / n)
