"""Optimal learning-rate control of the SGD modified equation on a quadratic (review §4.4)."""
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import reference

from pdenet.meanfield.lr_control import (
    QuadraticSGD,
    compare_schedules,
    constant_schedule,
    expected_loss_recursion,
    inverse_time_schedule,
    optimal_feedback,
    optimal_moment,
    optimal_schedule,
    simulate_sgd,
    solve_hjb,
    step_times,
    switching_time,
)

P = QuadraticSGD(a=1.0, eta=0.1, Sigma=1.0, m0=1.0, T=10.0)


def _terminal_moment(schedule, p=P):
    """m(T) of m' = -2 a u m + eta Sigma u^2 for an open-loop schedule u(t) (tight RK45)."""
    rhs = lambda t, m: p.drift(m, float(schedule(t)))
    return solve_ivp(rhs, (0.0, p.T), [p.m0], rtol=1e-11, atol=1e-14).y[0, -1]


def test_closed_form_switching_time_and_moment():
    ts = switching_time(P)
    t_star = reference.ref("training", "lr_control_switching_time")
    assert (P.a, P.eta, P.Sigma, P.m0) == (t_star["a"], t_star["eta"], t_star["Sigma"], t_star["m0"])
    assert ts == pytest.approx(t_star.value, rel=t_star.tolerance)  # = log(19)/2
    # at t* the full-rate moment reaches the switching value eta Sigma / a, where u* = 1 just
    assert optimal_moment(ts, P) == pytest.approx(P.kappa / P.a, rel=1e-12)
    assert optimal_feedback(optimal_moment(ts, P), P) == pytest.approx(1.0)
    # the closed-form moment solves the ODE under the closed-form schedule
    t = np.linspace(0, P.T, 7)
    sol = solve_ivp(lambda s, m: P.drift(m, float(optimal_schedule(s, P))), (0, P.T), [P.m0],
                    t_eval=t, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(sol.y[0], optimal_moment(t, P), rtol=1e-8)
    # feedback along the closed-form path reproduces the open-loop schedule (review eq. 47)
    np.testing.assert_allclose(optimal_feedback(optimal_moment(t, P), P), optimal_schedule(t, P),
                               rtol=1e-12)
    # already below the switching value: decay from t = 0
    low = QuadraticSGD(m0=0.05)
    assert switching_time(low) == 0.0


def test_closed_form_schedule_beats_perturbed_schedules():
    """m(T) of the closed form is below that of perturbed schedules (switch earlier/later,
    other decay constants, constant rate)."""
    best = _terminal_moment(lambda t: optimal_schedule(t, P))
    assert best == pytest.approx(float(optimal_moment(P.T, P)), rel=1e-8)
    ts = switching_time(P)
    for shift in (-0.5, -0.1, 0.1, 0.5):
        s = ts + shift
        other = _terminal_moment(lambda t: 1.0 if t <= s else 1.0 / (1.0 + P.a * (t - s)))
        assert other > best
    for k in (0.5, 2.0):
        other = _terminal_moment(lambda t: 1.0 if t <= ts else 1.0 / (1.0 + k * P.a * (t - ts)))
        assert other > best
    assert _terminal_moment(lambda t: 1.0) > best


@pytest.fixture(scope="module")
def hjb():
    # dm / (eta Sigma) = dt = 0.01, so the switching time is resolved to one time step
    return solve_hjb(P, n_m=1201, n_t=1000, m_max=1.2)


def test_hjb_feedback_is_the_closed_form_law(hjb):
    """The pointwise minimiser on every grid node is u* = min(1, a m / (eta Sigma))."""
    np.testing.assert_allclose(hjb.u, np.broadcast_to(optimal_feedback(hjb.m, P), hjb.u.shape),
                               atol=1e-12)
    # and the value function is increasing in m (the premise of that law) ...
    assert np.all(np.diff(hjb.V, axis=1) > 0)
    # ... and approximates the optimal terminal moment to first order in the grid
    v0 = np.interp(P.m0, hjb.m, hjb.V[0])
    assert v0 == pytest.approx(float(optimal_moment(P.T, P)), rel=0.03)


def test_hjb_switching_time_matches_closed_form(hjb):
    ts = hjb.switching_time()
    assert abs(ts - switching_time(P)) <= hjb.dt + 1e-12
    # the grid-feedback path ends at the optimal terminal moment
    m, u = hjb.trajectory()
    assert m[-1] == pytest.approx(float(optimal_moment(P.T, P)), rel=1e-3)
    np.testing.assert_allclose(u, optimal_schedule(hjb.t[:-1], P), atol=0.02)


def test_hjb_switching_time_follows_the_initial_moment():
    """The switching time moves as log(2 a m0 / (eta Sigma) - 1) / (2a) with m0 and a."""
    for p in (QuadraticSGD(a=2.0, eta=0.05, Sigma=2.0, m0=3.0, T=4.0),
              QuadraticSGD(a=0.5, eta=0.2, Sigma=0.5, m0=0.6, T=12.0)):
        n_t = 800
        dt = p.T / n_t
        m_max = 1.1 * p.m0
        n_m = int(math.ceil(m_max / (0.5 * p.kappa * dt))) + 1
        h = solve_hjb(p, n_m=n_m, n_t=n_t, m_max=m_max)
        assert abs(h.switching_time() - switching_time(p)) <= dt + 1e-12


def test_optimal_schedule_wins_in_simulated_sgd():
    res = compare_schedules(P, runs=20000, seed=3)
    opt, const, inv = res["optimal"], res["constant"], res["inverse_time"]
    for other in (const, inv):
        gap = other["mc_mean"] - opt["mc_mean"]
        assert gap > 5 * math.hypot(other["mc_stderr"], opt["mc_stderr"])
        assert other["exact"] > opt["exact"]
    # Monte Carlo agrees with the exact discrete expectation ...
    for r in (opt, const, inv):
        assert abs(r["mc_mean"] - r["exact"]) < 5 * r["mc_stderr"]
    # ... which the SME predicts to O(eta)
    assert opt["exact"] == pytest.approx(opt["sme"], rel=3 * P.eta)
    # numbers: constant rate plateaus at eta Sigma / (2 (2 - eta a)) ~ a kappa/4
    assert const["exact"] == pytest.approx(P.eta * P.Sigma / (2 * (2 - P.eta * P.a)), rel=1e-6)


def test_sgd_simulation_is_seeded_and_vectorised():
    u = optimal_schedule(step_times(P), P)
    a = simulate_sgd(u, P, runs=1000, seed=7)
    b = simulate_sgd(u, P, runs=1000, seed=7)
    assert a.shape == (1000,) and np.array_equal(a, b)
    assert not np.array_equal(a, simulate_sgd(u, P, runs=1000, seed=8))
    assert expected_loss_recursion(constant_schedule(step_times(P), P, 0.0), P) == pytest.approx(0.5)
    assert inverse_time_schedule(np.array([0.0]), P)[0] == 1.0
