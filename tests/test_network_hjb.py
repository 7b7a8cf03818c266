"""Reduced functional HJB (Liu & Markowich §4.3): pdenet.network.reduced.hjb and the
``network-hjb`` model.

* the reduction is exact: the full network (low-rank kernel, a = alpha phi_1) on the label
  mesh stays in the span of the modes and equals the Euler path of the amplitude ODE;
* the semi-Lagrangian dynamic programme against the exact discrete Riccati solution
  (identity activation, no active box): second order in the grid spacing;
* tanh with an active box: V(c0, 0), the closed-loop cost and the open-loop optimum of the
  same discrete problem (L-BFGS-B with the network's gradient) agree and converge;
* the shipped case through the runner, the plotter, and the one-line errors.
"""
import numpy as np
import pytest

from conftest import case_path
from pdenet.case import load_case
from pdenet.errors import CaseError
from pdenet.mesh import Mesh
from pdenet.network.reduced.hjb import ReducedProblem, open_loop, solve_hjb
from pdenet.runner import run

CASE = case_path("network_reduced_hjb.toml")


def one_mode(activation="tanh", box=(-1.0, 1.0), tikhonov=0.2, steps=40):
    """c' = sigma(alpha - c/2), c(0) = 0, target 1.5, T = 2 (4 label cells, mode on (0, 1/2))."""
    y = (np.arange(4) + 0.5) / 4
    return ReducedProblem(activation, 4, [(0.0, 0.5)], [np.where(y < 0.5, 1.0, 0.0)], [1.0], box, tikhonov,
                          [0.0], [1.5], 2.0, steps)


def two_modes(activation="tanh", box=(-0.6, 0.6), tikhonov=0.1, steps=40):
    """The shipped case: c1' = sigma(alpha - c1/2), c2' = sigma(2 c1 - c2/2), target (0, 1)."""
    y = (np.arange(8) + 0.5) / 8
    psi = [np.where(y < 0.5, 1.0, 0.0), np.where(y < 0.5, -4.0, 1.0)]
    return ReducedProblem(activation, 8, [(0.0, 0.5), (0.5, 1.0)], psi, [1.0, 0.0], box, tikhonov,
                          [0.0, 0.0], [0.0, 1.0], 2.0, steps)


# -- the reduction ------------------------------------------------------------------------------
@pytest.mark.parametrize("make,activation", [(one_mode, "tanh"), (two_modes, "tanh"), (two_modes, "arctan"),
                                             (two_modes, "identity")])
def test_network_equals_the_reduced_ode(make, activation):
    p = make(activation)
    np.testing.assert_allclose(p.G, [[0.5]] if p.m == 1 else [[0.5, 0.0], [-2.0, 0.5]], atol=1e-15)
    alphas = np.random.default_rng(0).uniform(*p.box, p.steps)
    J, path = p.cost(alphas)
    net, f0, target = p.network()
    assert p.network_cost(alphas, (net, f0, target)) == pytest.approx(J, rel=1e-13)
    states = np.empty((p.steps + 1, p.N))

    def on_state(n, t, y, lin):
        states[n] = y[0]
    net.forward(f0, on_state=on_state)
    np.testing.assert_allclose(states, path @ p.phi, rtol=0, atol=1e-14)   # f(t) = sum c_r phi_r exactly
    # the chain-rule gradient dJ/dalpha of the network against central differences
    _, g = p.network_cost(alphas, (net, f0, target), grad=True)
    d = np.random.default_rng(1).standard_normal(p.steps)
    eps = 1e-6
    fd = (p.cost(alphas + eps * d)[0] - p.cost(alphas - eps * d)[0]) / (2 * eps)
    assert g @ d == pytest.approx(fd, rel=1e-7, abs=1e-10)


def test_invalid_reductions_are_rejected():
    y = (np.arange(4) + 0.5) / 4
    with pytest.raises(ValueError, match="sigma\\(0\\) != 0"):
        ReducedProblem("sigmoid", 4, [(0, 0.5)], [y], [1], (-1, 1), 0, [0], [1], 1, 4)
    with pytest.raises(ValueError, match="not a face"):
        ReducedProblem("tanh", 4, [(0, 0.3)], [y], [1], (-1, 1), 0, [0], [1], 1, 4)
    with pytest.raises(ValueError, match="overlap"):
        ReducedProblem("tanh", 4, [(0, 0.75), (0.5, 1)], [y, y], [1, 0], (-1, 1), 0, [0, 0], [1, 1], 1, 4)


# -- exact discrete Riccati (identity activation, LQ) ---------------------------------------------
def riccati(p):
    """V^0 = 1/2 c'Pc + q'c + s and the gains of the Euler-discretised LQ problem (no box)."""
    A = np.eye(p.m) - p.dt * p.G
    B = p.dt * p.e
    W = np.diag(p.weights)
    P, q, s = W.copy(), -W @ p.target, 0.5 * p.target @ W @ p.target
    for _ in range(p.steps):
        R = p.dt * p.rc + B @ P @ B
        K, k = (B @ P @ A) / R, (B @ q) / R          # alpha* = -(K c + k)
        P, q, s = A.T @ P @ A - R * np.outer(K, K), A.T @ q - R * K * k, s - 0.5 * R * k * k
    return lambda c: 0.5 * c @ P @ c + q @ c + s, lambda c: -(K @ c + k)


@pytest.mark.parametrize("make,cells,rtol", [(one_mode, (50, 100, 200, 400), 5e-4),
                                             (two_modes, (30, 60, 120), 0.04)])
def test_hjb_converges_to_the_discrete_riccati_solution_at_second_order(make, cells, rtol):
    p = make("identity", box=(-8.0, 8.0), tikhonov=0.5, steps=20)
    V_exact, feedback_exact = riccati(p)
    errors = []
    for n in cells:
        mesh = Mesh([-3.0] * p.m, [3.0] * p.m, [n] * p.m)
        sol = solve_hjb(p, mesh, alpha_points=33, refine=40)
        errors.append(abs(sol.value(0, p.c0[None])[0] - V_exact(p.c0)))
        a0 = sol.feedback(0, p.c0[None])[0]
        assert abs(a0) < 7.0                              # the box is inactive: the LQ solution applies
    a_exact = feedback_exact(p.c0)
    assert abs(a0 - a_exact) < 0.01 * max(1.0, abs(a_exact))
    errors = np.array(errors)
    orders = np.log2(errors[:-1] / errors[1:])
    overall = np.log2(errors[0] / errors[-1]) / (len(errors) - 1)
    # measured (V = 0.20178, 0.05827): 1-D errors 4.3e-3, 5.3e-4, 1.8e-4, 4.3e-5 (orders 3.0, 1.6,
    # 2.0; overall 2.2); 2-D 2.6e-2, 9.1e-3, 1.9e-3 (orders 1.5, 2.2; overall 1.9)
    assert np.all(orders > 1.4) and overall > 1.8, (errors, orders)
    assert errors[-1] < rtol * abs(V_exact(p.c0))


# -- tanh with an active box: value, closed loop, open loop -----------------------------------------
def test_value_closed_loop_and_open_loop_agree_and_converge_one_mode():
    p = one_mode()
    a_open, J_open, runs = open_loop(p)
    assert all(abs(J - J_open) < 1e-12 for J, _ in runs)          # every start finds the same optimum
    assert np.any(a_open == p.box[1]) and np.any(a_open < p.box[1] - 0.1)   # box active on part of (0, T)
    gaps_value, gaps_closed = [], []
    for n in (100, 200, 400):
        sol = solve_hjb(p, Mesh([-2.1], [2.1], [n]), alpha_points=41, refine=40)
        path, alphas, cost, along = sol.closed_loop()
        gaps_value.append(along[0] - J_open)
        gaps_closed.append(cost - J_open)
        assert cost >= J_open - 1e-12                              # no admissible control beats the optimum
    gaps_value, gaps_closed = np.array(gaps_value), np.array(gaps_closed)
    # measured: V(c0,0) - J* = 2.2e-3, 4.4e-4, 1.1e-4; closed - J* = 8.4e-6, 3.0e-6, 5.0e-7 (J* = 0.12242)
    assert np.all(np.log2(np.abs(gaps_value[:-1] / gaps_value[1:])) > 1.5), gaps_value
    assert abs(gaps_value[-1]) < 2e-3 * J_open and gaps_closed[-1] < 1e-5 * J_open
    # the feedback reproduces the optimal open-loop control (max difference 3.5e-3 on 400 cells)
    np.testing.assert_allclose(alphas, a_open, atol=0.01)


def test_shipped_case_value_closed_loop_and_open_loop_agree(tmp_path):
    res = {}
    for n in (40, 80):
        r = run(CASE, overrides=[f"mesh.cells=[{n}, {n}]"], write=False)
        res[n] = r
        a = r.attrs
        assert a["reduction_error"] < 1e-14
        assert a["network_cost_closed_loop"] == pytest.approx(a["cost_closed_loop"], rel=1e-12)
        # measured closed - open: 9.4e-4 (40^2), 1.07e-4 (80^2), 2.8e-5 (160^2), 5.0e-6 (320^2)
        assert 0 <= a["closed_minus_open"] < {40: 0.05, 80: 0.006}[n] * a["cost_open_loop"]
        assert r.fields["value"].shape == (5, n, n)
        fb = r.fields["feedback"]
        assert np.all(np.isnan(fb[-1])) and np.all((fb[:-1] >= -0.6) & (fb[:-1] <= 0.6))
        V = r.fields["value"]
        Phi = 0.25 * ((r.mesh.centres()[0]) ** 2 + (r.mesh.centres()[1] - 1.0) ** 2)
        np.testing.assert_allclose(V[-1], Phi, rtol=1e-13)           # V(c, T) = Phi(c)
        an = r.analysis
        # dynamic programming along the closed loop: V(c_n, t_n) ~ the remaining cost
        assert np.max(np.abs(an["value_on_path"] - an["cost_to_go"])) < 2.5 * abs(a["closed_minus_value"]) + 1e-12
    gap40 = abs(res[40].attrs["open_minus_value"])
    gap80 = abs(res[80].attrs["open_minus_value"])
    # measured: V(c0,0) - J_open = 1.87e-2 (40^2), 6.3e-3 (80^2), 9.5e-4 (160^2), 3.0e-4 (320^2);
    # J_open = 0.030041 (docs/network-training.md)
    assert gap80 < 0.4 * gap40 and gap80 < 0.25 * res[80].attrs["cost_open_loop"]
    assert res[80].attrs["closed_minus_open"] < 0.2 * res[40].attrs["closed_minus_open"]
    from pdenet.plot import plot_file
    out = plot_file(res[40], str(tmp_path / "hjb.png"))
    assert (tmp_path / "hjb.png").stat().st_size > 20000 and out


@pytest.mark.parametrize("override,key", [
    ("model.c0=[0.0]", "model.c0"),
    ("mesh.lower=[-1.0, -2.1]", "mesh.lower"),
    ("model.modes=[[0.0, 0.3], [0.5, 1.0]]", "model.modes"),
    ("model.box=[1.0, -1.0]", "model.box"),
    ("model.activation=\"sigmoid\"", "model.activation"),
    ("mesh.cells=[40]", "mesh.cells"),
    ("time.stepper=\"rk4\"", "time.stepper"),
])
def test_bad_cases_name_file_and_key(override, key):
    with pytest.raises(CaseError) as info:
        case = load_case(CASE, [override])
        case.model_cls(case)
    msg = str(info.value)
    assert "\n" not in msg and "network_reduced_hjb.toml" in msg and key in msg


def _case_text(tmp_path, model_outputs=None, time_outputs=True):
    """The shipped case with [time] outputs dropped and/or the deprecated model.outputs set."""
    text = open(CASE).read()
    if not time_outputs:
        text = text.replace("\noutputs = 4\n", "\n")
    if model_outputs is not None:
        text = text.replace("[model]\n", f"[model]\noutputs = {model_outputs}\n")
    path = tmp_path / "network_reduced_hjb.toml"
    path.write_text(text)
    return str(path)


def test_time_outputs_and_the_deprecated_model_outputs(tmp_path):
    """[time] outputs sets the saves; model.outputs is its deprecated alias (same saves, a warning);
    giving both is an error naming model.outputs; neither: 4 saves after t = 0."""
    case = load_case(CASE)
    assert case["time.outputs"] == 4
    assert case.model_cls(case).saves.steps == (0, 10, 20, 30, 40)
    with pytest.warns(FutureWarning, match="model.outputs is deprecated"):
        old = load_case(_case_text(tmp_path, model_outputs=2, time_outputs=False))
    model = old.model_cls(old)
    assert old["time.outputs"] == 2 and model.saves.steps == (0, 20, 40)
    assert model.saves.times == (0.0, 1.0, 2.0)
    r = run(_case_text(tmp_path, model_outputs=2, time_outputs=False),
            overrides=["mesh.cells=[16, 16]", "model.open_loop=false"], write=False)
    assert r.fields["value"].shape == (3, 16, 16) and list(r.time) == [0.0, 1.0, 2.0]
    with pytest.raises(CaseError) as info:
        load_case(_case_text(tmp_path, model_outputs=2))
    assert "model.outputs" in str(info.value) and "\n" not in str(info.value)
    none = load_case(_case_text(tmp_path, time_outputs=False))
    assert none.model_cls(none).saves.steps == (0, 10, 20, 30, 40)
    with pytest.raises(CaseError) as info:
        c = load_case(CASE, ["time.outputs=3"])
        c.model_cls(c)
    assert "time.outputs" in str(info.value)
