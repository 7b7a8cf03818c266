"""Particle algorithms against the PDEs: Entropy-SGD homogenisation (grad u), Theorem 4.11 with
the HJB value u and the backward Kolmogorov v, and the algorithms' basic behaviour."""
import numpy as np
import pytest

from conftest import case_path
from pdenet import load_case
from pdenet.hj import particles as P
from pdenet.landscape import Landscape, interpolate
from pdenet.runner import run


def test_entropy_sgd_homogenises_to_grad_u():
    r = run(case_path("hj_homogenisation.toml"), write=False)
    a = r.analysis
    es, se, pde = a["homogenisation_entropy_sgd"], a["homogenisation_stderr"], a["homogenisation_grad_u"]
    assert np.all(se < 0.05)                              # a modest particle count resolves it
    assert np.all(np.abs(es - pde) < 4 * se), (es, pde, se)
    assert r.attrs["homogenisation_max_z"] < 4
    # the PDE gradient itself is accurate (u matches Cole-Hopf to ~1e-6)
    assert r.diagnostics["error_u_max"][-1] < 1e-5
    # negative control: the inner loop at half the temperature (the printed (4.39) noise) samples
    # a different measure, and the test detects it
    case = load_case(case_path("hj_homogenisation.toml"))
    f = Landscape(case, "model.f", 1)
    pts = np.asarray(case["homogenisation.points"]).reshape(-1, 1)
    wrong, wse = P.entropy_gradient(f.grad, pts, 0.3, 0.05, np.random.default_rng(7), runs=200,
                                    inner=2000, burn=200, eta_y=0.004)
    assert np.max(np.abs(wrong - pde) / wse) > 6


def test_hjb_theorem_4_11_and_particle_estimates():
    case = load_case(case_path("hjb_double_well.toml"), ["model.particles=3000", "model.particle_steps=200",
                                                           "mesh.cells=[120]"])
    r = run(case, write=False)
    a = r.attrs
    # u <= v everywhere (comparison principle), equality at T
    assert np.all(r.fields["u"] <= r.fields["v"] + 1e-12)
    assert np.max(r.fields["v"][0] - r.fields["u"][0]) > 0.01
    assert np.max(np.abs(r.fields["u"][-1] - r.fields["v"][-1])) == 0.0
    # particle estimates against the PDE values at x0 (MC error + Euler-Maruyama bias O(dt))
    tol = lambda s: 4 * s + 0.005  # noqa: E731
    assert abs(a["cost_controlled"] - a["u_x0"]) < tol(a["cost_controlled_stderr"])
    assert abs(a["terminal_sgd"] - a["v_x0"]) < tol(a["terminal_sgd_stderr"])
    # Theorem 4.11: E V(X_csgd) <= E V(X_sgd) - 1/2 E int |alpha*|^2 (beyond the MC error)
    assert a["terminal_controlled"] + a["control_energy"] < a["terminal_sgd"] - 2 * a["terminal_sgd_stderr"]
    assert a["control_energy"] > 0
    # densities are probability densities
    assert np.allclose(r.diagnostics["mass_rho"], 1.0)
    # alpha* = grad u: compare with a central difference of u
    h = r.mesh.spacing[0]
    u0, al = r.fields["u"][0], r.fields["alpha"][0, 0]
    assert np.max(np.abs(al[2:-2] - (u0[3:-1] - u0[1:-3]) / (2 * h))) < 1e-3


def test_hjb_sign_convention_the_control_lowers_the_cost():
    # with the feedback reversed (alpha = -grad u) the cost is higher than with no control:
    # checks numerically that alpha* = +grad u with drift -(grad f + alpha) is the minimiser
    case = load_case(case_path("hjb_double_well.toml"), ["model.particles=3000", "model.particle_steps=100",
                                                           "mesh.cells=[100]"])
    model = case.model_cls(case)
    U, _ = model._backward(model.hjb, 100, lambda k: None)
    grads = np.stack([model.hjb.gradient(U[k]) for k in range(101)])
    dt = model.T / 100
    costs = {}
    for sign in (1.0, 0.0, -1.0):
        rng = np.random.default_rng(5)
        X = np.full((3000, 1), 0.9)
        run_cost = np.zeros(3000)
        for k in range(100):
            al = sign * interpolate(grads[k, 0], model.mesh, X)[:, None]
            run_cost += 0.5 * np.sum(al ** 2, axis=1) * dt
            X = X - (model.f.grad(X) + al) * dt + np.sqrt(2 * model.nu * dt) * rng.standard_normal(X.shape)
        costs[sign] = np.mean(model.V(X) + run_cost)
    assert costs[1.0] < costs[0.0] < costs[-1.0]


@pytest.mark.parametrize("alg", P.ALGORITHMS)
def test_algorithms_descend_a_convex_quadratic_and_are_seeded(alg):
    grad = lambda x: 2.0 * x  # noqa: E731  f = |x|^2
    opts = dict(steps=200, eta=0.05, gamma=0.2, nu=0.0 if alg == "hj" else 1e-4, inner=10, inner_hj=5,
                eta_y=0.05, average=0.75, scoping=0.0, replicas=3, record_every=10)
    x0 = np.full((50, 2), 1.5)
    x1, path = P.run_algorithm(alg, grad, x0, opts, np.random.default_rng(0))
    x2, _ = P.run_algorithm(alg, grad, x0, opts, np.random.default_rng(0))
    assert path.shape == (50, 21, 2)
    assert np.array_equal(x1, x2)
    assert np.max(np.abs(x1)) < 0.1


def test_hj_algorithm_step_is_the_proximal_gradient():
    # (4.42): the inner fixed point y = gamma grad f(x - y), so the outer step direction is
    # grad f(prox) = grad u(x, gamma) of the inviscid HJ; for f = a x^2/2: a x/(1 + a gamma)
    a, gamma, eta = 3.0, 0.5, 0.1
    x0 = np.array([[1.0]])
    x1, _ = P.hj(lambda x: a * x, x0, 1, eta, gamma, inner=400, eta_y=0.05)
    assert x1[0, 0] == pytest.approx(1.0 - eta * a / (1 + a * gamma), rel=1e-9)


def test_figure41_case_runs_particles(tmp_path):
    case = load_case(case_path("hj_figure41.toml"), ["mesh.cells=[128]", "particles.runs=40",
                                                      "particles.steps=30", "time.outputs=2"])
    r = run(case, write=False)
    for name in ("u", "u_inviscid", "v_heat"):
        assert r.fields[name].shape == (3, 128)
    # ordering of the smoothings at T: Hopf-Lax <= f (y = x in the min), inviscid <= viscous,
    # and viscous <= heat (Jensen: G * exp(-f/2nu) >= exp(-G * f/2nu))
    u, ui, v, f = [r.fields[k][-1] for k in ("u", "u_inviscid", "v_heat")] + [r.fields["u"][0]]
    assert np.all(ui <= f + 1e-9) and np.all(ui <= u + 1e-6) and np.all(u <= v + 1e-6)
    for alg in ("sgd", "entropy_sgd", "hj", "heat"):
        assert r.analysis[f"particles_{alg}_path"].shape == (40, 31, 1)
    from pdenet.plot import plot_file
    out = plot_file(r, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 10000 and out


def test_hjb_two_dimensional():
    case = load_case(case_path("hjb_double_well_2d.toml"), ["model.particles=2000", "model.particle_steps=100",
                                                              "mesh.cells=[32, 32]"])
    r = run(case, write=False)
    a = r.attrs
    assert r.fields["alpha"].shape == (5, 2, 32, 32)
    assert np.all(r.fields["u"] <= r.fields["v"] + 1e-12)
    assert abs(a["cost_controlled"] - a["u_x0"]) < 4 * a["cost_controlled_stderr"] + 0.01
    assert abs(a["terminal_sgd"] - a["v_x0"]) < 4 * a["terminal_sgd_stderr"] + 0.01
    assert a["u_x0"] < a["v_x0"] - 0.02
