"""Hamilton-Jacobi schemes against exact solutions: Cole-Hopf (quadratic closed form and
quadrature), Hopf-Lax (kink), observed orders through `pdenet converge`, widening."""
import os

import numpy as np
import pytest

from conftest import case_path
from pdenet import load_case
from pdenet.converge import converge
from pdenet.errors import CaseError
from pdenet.hj import exact
from pdenet.hj.scheme import HJScheme
from pdenet.mesh import Mesh
from pdenet.runner import run
from solvers.ssp import integrate


def test_closed_form_solves_the_pde_and_matches_cole_hopf_quadrature():
    # the closed form for f = a x^2/2 (1-D) equals the Cole-Hopf quadrature of the same f
    x = np.linspace(-2, 2, 41)
    for a, nu, t in [(1.0, 0.1, 0.5), (3.0, 0.02, 1.3)]:
        q = exact.cole_hopf(lambda y: a * y ** 2 / 2, x, t, nu)
        assert np.max(np.abs(q - exact.quadratic((x,), t, a, nu))) < 1e-10
    # and it satisfies u_t + |grad u|^2/2 = nu Lap u in 2-D (finite differences of the formula)
    a, nu, t, e = 2.0, 0.3, 0.7, 1e-4
    X = (np.array([0.3, -1.1]), np.array([0.8, 0.2]))
    u = lambda X, t: exact.quadratic(X, t, a, nu)  # noqa: E731
    ut = (u(X, t + e) - u(X, t - e)) / (2 * e)
    grad2 = sum(((u(tuple(X[j] + e * (j == d) for j in range(2)), t)
                  - u(tuple(X[j] - e * (j == d) for j in range(2)), t)) / (2 * e)) ** 2 for d in range(2))
    lap = sum((u(tuple(X[j] + e * (j == d) for j in range(2)), t) - 2 * u(X, t)
               + u(tuple(X[j] - e * (j == d) for j in range(2)), t)) / e ** 2 for d in range(2))
    assert np.max(np.abs(ut + 0.5 * grad2 - nu * lap)) < 1e-5


def test_hopf_lax_of_abs():
    x = np.linspace(-2, 2, 81)
    t = 0.5
    u = exact.hopf_lax(np.abs, x, t, (-2.0, 2.0))
    assert np.max(np.abs(u - np.where(np.abs(x) >= t, np.abs(x) - t / 2, x ** 2 / (2 * t)))) < 1e-12


def test_heat_quadrature_of_a_cosine():
    x = np.linspace(-np.pi, np.pi, 33)
    v = exact.heat(np.cos, x, 0.7, 0.2, period=(-np.pi, np.pi))
    assert np.max(np.abs(v - np.exp(-0.2 * 0.7) * np.cos(x))) < 1e-12


@pytest.mark.parametrize("name,values,low,high", [
    ("hj_quadratic_1d.toml", [20, 40, 80], 0.9, 1.1),     # first order
    ("hj_rugged_1d.toml", [64, 128, 256], 3.0, 6.0),      # WENO5 + 4th-order diffusion, smooth data
    ("hj_quadratic_2d.toml", [16, 32], 3.0, 6.0),         # WENO5 in 2-D
])
def test_observed_orders(name, values, low, high):
    study = converge(case_path(name), "mesh.cells", values)
    assert study["reference"] == "exact"
    orders = study["orders"][1:]
    assert all(low <= p <= high for p in orders), orders
    assert all(b < a for a, b in zip(study["errors"], study["errors"][1:]))


def test_rugged_first_order_is_first_order():
    study = converge(load_case(case_path("hj_rugged_1d.toml"), ["model.order=1"]), "mesh.cells",
                     [128, 256, 512])
    assert all(0.75 <= p <= 1.1 for p in study["orders"][1:]), study["orders"]


@pytest.mark.parametrize("flux", ["godunov", "llf"])
def test_kink_no_oscillation_and_small_error(flux):
    r = run(load_case(case_path("hj_kink_1d.toml"), [f'model.flux="{flux}"']), write=False)
    x, h = r.mesh.axes[0], r.mesh.spacing[0]
    f = r.fields["u"][0]
    tv = lambda v: np.sum(np.abs(np.diff(v)))  # noqa: E731
    for u, t in zip(r.fields["u"][1:], r.time[1:]):
        # total variation does not grow, no new extrema: one minimum, monotone on each side
        assert tv(u) <= tv(f) + 1e-12
        s = np.sign(np.diff(u))
        s = s[s != 0]
        assert np.count_nonzero(np.diff(s)) == 1
        assert u.max() <= f.max() + 1e-12 and u.min() >= -1e-12
        ex = np.where(np.abs(x) >= t, np.abs(x) - t / 2, x ** 2 / (2 * t))
        assert np.max(np.abs(u - ex)) < 0.4 * h  # measured: 0.32 h (Godunov), 0.35 h (LLF)
    assert r.diagnostics["error_u_max"][-1] < 0.4 * h


@pytest.mark.parametrize("nu,order", [(0.05, 5), (0.0, 5)])
def test_widening_bound_and_semiconcavity_diagnostics(nu, order):
    from pdenet.case import build_case
    raw = load_case(case_path("hj_rugged_1d.toml")).raw
    raw["model"].update(nu=nu, order=order)
    raw.pop("exact")
    r = run(build_case(raw, "<t>", "."), write=False)
    d2, bound = r.diagnostics["d2u_max"], r.diagnostics["semiconcavity_bound"]
    C = r.attrs["semiconcavity_C"]
    assert d2[0] == pytest.approx(C) and C > 20           # rugged: f'' large
    if nu > 0:
        assert np.all(d2[1:] <= bound[1:])                # sup u_xx <= 1/(1/C + t)
    else:
        # inviscid: the bound is attained (u_xx = f''/(1 + t f'') at the steepest convex point),
        # and grid-scale wiggles next to the concave kinks dominate the 1-cell second
        # difference; the 4h second difference (a hat average of u_xx) obeys it to 1 %
        assert np.all(r.diagnostics["d2u_max_4h"][1:] <= 1.01 * bound[1:])
    assert np.all(np.diff(d2) < 0)
    assert d2[1] < 0.5 * C                                # the bound bites: widening is fast


@pytest.mark.parametrize("stepper,order", [("imex-euler", 1), ("imex", 2)])
def test_imex_for_large_nu(stepper, order):
    mesh = Mesh([-np.pi], [np.pi], [128], "periodic")
    x = mesh.axes[0]
    f = lambda y: np.cos(3 * y)  # noqa: E731
    nu, T = 2.0, 0.05
    s = HJScheme(mesh, nu=nu, order=5, stepper=stepper)
    explicit = HJScheme(mesh, nu=nu, order=5).max_dt(f(x))

    def solve(n):
        return integrate(s.step, f(x), 0.0, T, lambda u, t: T / n)[0]
    ref = solve(1280)
    errs = [np.max(np.abs(solve(n) - ref)) for n in (10, 20, 40)]
    assert T / 10 > 15 * explicit                  # steps far beyond the explicit diffusion limit
    orders = np.log2(np.array(errs[:-1]) / errs[1:])
    assert np.all(np.abs(orders - order) < 0.25), orders
    # and the solution is the viscous HJ solution (Cole-Hopf) up to the 2nd-order implicit Laplacian
    ex = exact.cole_hopf(f, x, T, nu, period=(-np.pi, np.pi))
    assert np.max(np.abs(ref - ex)) < 2e-3


def test_general_hamiltonian_matches_quadratic():
    base = open(case_path("hj_rugged_1d.toml")).read()
    q = run(load_case(base, ["mesh.cells=[128]"]), write=False)
    g = run(load_case(base, ["mesh.cells=[128]", 'model.hamiltonian="general"', 'model.H="p^2/2"']),
            write=False)
    g2 = run(load_case(base, ["mesh.cells=[128]", 'model.hamiltonian="general"', 'model.H="p^2/2"',
                              'model.dissipation=["abs(p)"]']), write=False)
    for r in (g, g2):
        assert r.attrs["flux"] == "llf"
        assert np.max(np.abs(r.fields["u"][-1] - q.fields["u"][-1])) < 2e-3
        assert r.diagnostics["error_u_max"][-1] < 3e-3


def test_three_dimensional_quadratic():
    text = open(case_path("hj_quadratic_2d.toml")).read()
    case = load_case(text, ["mesh.lower=[-1.5,-1.5,-1.5]", "mesh.upper=[1.5,1.5,1.5]", "mesh.cells=[12,12,12]",
                            'model.f="x1^2 + x2^2 + x3^2"',
                            'exact.u="(x1^2 + x2^2 + x3^2)/(1 + 2*t) + 3*0.05*log(1 + 2*t)"'])
    r = run(case, write=False)
    assert r.fields["u"].shape == (3, 12, 12, 12) and r.fields["grad_u"].shape == (3, 3, 12, 12, 12)
    assert r.diagnostics["error_u_max"][-1] < 1e-3


@pytest.mark.parametrize("override,key,match", [
    (["model.beta=2.0"], "model.nu", "exactly one of nu"),
    (['mesh.boundary="dirichlet"'], "mesh.boundary", "not supported"),
    (['model.hamiltonian="general"'], "model.H", "needs the expression H"),
    (["mesh.cells=[3]"], "mesh.cells", "at least 4"),
    (['exact.u="hopf-lax"'], "exact.u", "cole-hopf"),
    (['model.f="x +"'], "model.f", "syntax"),
    (["particles.x0=[1.0, 2.0]"], "particles.x0", "2 entries"),
    (['model.H="p^2/2 + q"', 'model.hamiltonian="general"'], "model.H", "q"),
])
def test_bad_cases_name_the_key(override, key, match):
    with pytest.raises(CaseError, match=match) as info:
        c = load_case(case_path("hj_rugged_1d.toml"), override)
        c.model_cls(c)
    assert key in str(info.value) and "hj_rugged_1d.toml" in str(info.value)


def test_beta_gives_nu():
    c = load_case(case_path("hj_rugged_1d.toml"), ["model.nu=1.0"])  # replaced below
    raw = c.raw
    raw["model"].pop("nu")
    raw["model"]["beta"] = 10.0
    from pdenet.case import build_case
    c = build_case(raw, "<t>", ".")
    assert c["model.nu_value"] == pytest.approx(0.05)


def test_heat_equation_alone_against_gaussian_smoothing():
    r = run(load_case(case_path("hj_rugged_1d.toml"), ['model.equation="heat"', 'exact.u="heat"',
                                                        "mesh.cells=[128]"]), write=False)
    assert r.diagnostics["error_u_max"][-1] < 1e-4
    # maximum principle for v_xx: sup v_xx <= sup f'' (the bound recorded for the heat equation)
    assert np.all(r.diagnostics["d2u_max"] <= r.diagnostics["semiconcavity_bound"] + 1e-9)


def test_llf_flux_converges_at_high_order():
    study = converge(load_case(case_path("hj_rugged_1d.toml"), ['model.flux="llf"']), "mesh.cells",
                     [64, 128, 256])
    assert all(3.0 <= p <= 6.0 for p in study["orders"][1:]), study["orders"]
    assert study["errors"][-1] < 2e-4


def test_imex_weno5_converges_with_extrapolated_ends():
    """The implicit Laplacian uses the explicit kernels' quadratic extrapolation at extrapolated
    ends (a zero end row made IMEX + WENO5 stall at 4e-3 on this case)."""
    errs = [run(case_path("hj_quadratic_1d.toml"), write=False, overrides=[
        f"mesh.cells=[{n}]", "model.order=5", 'time.stepper="imex"']).attrs["final_error_u_max"]
        for n in (20, 40, 80)]
    assert errs[2] < 1e-4
    assert errs[0] / errs[1] > 3.5 and errs[1] / errs[2] > 3.5   # second order (ARS(2,2,2) in time)


def test_threads_key_gives_the_same_result_and_rejects_too_many(tmp_path):
    """[solver] threads: the parallel kernels compute each cell in one thread, so 1 and 2 threads
    give the same bits; more threads than NUMBA_NUM_THREADS allows is a one-line error."""
    import numba

    import pdenet

    case = case_path("hj_quadratic_2d.toml")
    runs = [pdenet.run(case, write=False, overrides=[f"solver.threads={n}", "model.order=5"])
            for n in (1, min(2, numba.config.NUMBA_NUM_THREADS))]
    assert np.array_equal(runs[0].fields["u"], runs[1].fields["u"])
    before = numba.get_num_threads()
    pdenet.run(case, write=False, overrides=["solver.threads=1"])
    assert numba.get_num_threads() == before   # restored after the run
    with pytest.raises(CaseError, match=r"solver.threads: threads = 1000: this process allows 1 to"):
        pdenet.validate(case, ["solver.threads=1000"])
    assert pdenet.validate(case).threads == int(os.environ.get("NUMBA_NUM_THREADS", "1"))
