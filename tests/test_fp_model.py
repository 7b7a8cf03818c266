"""The fokker-planck case-file model on the shipped cases: exact OU solutions and observed
orders, Gibbs steady state and free-energy decay, first-passage times, non-isotropic
diffusion, circulating currents, positivity, input errors."""
import os
import tomllib

import numpy as np
import pytest
from scipy.linalg import solve_continuous_lyapunov

import pdenet
from pdenet.case import build_case
from pdenet.converge import converge
from pdenet.errors import CaseError
from pdenet.fokkerplanck.diagnostics import exact_mfpt_1d, kramers_1d

from conftest import case_path, run_cli
import reference


def run(name, *overrides):
    return pdenet.run(case_path(name), overrides=list(overrides), write=False)


def raw_case(name, drop_time=(), **time):
    with open(case_path(name), "rb") as fh:
        raw = tomllib.load(fh)
    for k in drop_time:
        raw["time"].pop(k, None)
    raw["time"].update(time)
    return build_case(raw, case_path(name), os.path.dirname(case_path(name)))


# -- 1. Ornstein-Uhlenbeck: exact solution, orders ----------------------------------------
def test_ou_space_order_through_the_cli(tmp_path):
    p = run_cli("converge", case_path("fp_ou_1d.toml"), "--key", "mesh.cells", "--values", "25,50,100",
                "-q", "-o", str(tmp_path / "c.h5"))
    assert p.returncode == 0, p.stderr
    rows = [l.split() for l in p.stdout.splitlines() if l.strip() and l.split()[0] in ("50", "100")]
    orders = [float(r[-1]) for r in rows]
    assert all(abs(o - 2.0) < 0.15 for o in orders), p.stdout
    r = pdenet.open(str(tmp_path / "c.h5"))
    assert r.convergence["orders"][-1] == pytest.approx(orders[-1], abs=1e-3)


def test_ou_2d_space_order():
    s = converge(case_path("fp_ou_2d.toml"), "mesh.cells", [20, 40, 80], field="rho")
    assert s["reference"] == "exact"
    assert all(abs(o - 2.0) < 0.2 for o in s["orders"][1:]), s["orders"]


@pytest.mark.parametrize("stepper,order", [("beuler", 1.0), ("cn", 2.0), ("bdf2", 2.0)])
def test_ou_time_orders(stepper, order):
    case = pdenet.load_case(case_path("fp_ou_1d.toml"), [f"time.stepper={stepper!r}".replace("'", '"'),
                                                         "mesh.cells=[800]", "time.save_every=1"])
    s = converge(case, "time.steps", [5, 10, 20], field="rho")
    assert s["reference"] == "exact"
    assert all(abs(o - order) < 0.25 for o in s["orders"][1:]), s["orders"]


def test_ou_diagnostics_match_exact_moments():
    r = run("fp_ou_2d.toml")
    t = r.time
    ou = reference.ref("fokker_planck", "ou_2d_stationary_variance")
    (k1, k2), (m1, m2), v0, tol = ou["k"], ou["initial_mean"], ou["initial_variance"], ou.tolerance
    v1 = v0 * np.exp(-2 * k1 * t) + ou.value[0] * (1 - np.exp(-2 * k1 * t))
    v2 = v0 * np.exp(-2 * k2 * t) + ou.value[1] * (1 - np.exp(-2 * k2 * t))
    assert np.allclose(r.diagnostics["mean_1"], m1 * np.exp(-k1 * t), atol=tol)
    assert np.allclose(r.diagnostics["mean_2"], m2 * np.exp(-k2 * t), atol=tol)
    assert np.allclose(r.diagnostics["cov_11"], v1, atol=tol)
    assert np.allclose(r.diagnostics["cov_22"], v2, atol=tol)
    assert np.abs(r.diagnostics["mass"] - 1).max() < 1e-12


# -- 2. Gibbs ---------------------------------------------------------------------------
def test_double_well_steady_state_is_discrete_gibbs():
    r = run("fp_gibbs_double_well.toml", 'time.stepper="steady"')
    assert r.attrs["steady_gibbs_max_rel_error"] < 1e-12
    # and independently of the model's own check: exp(-f/D) normalised on the mesh
    X1, X2 = r.mesh.centres()
    g = np.exp(-((X1 ** 2 - 1) ** 2 / 4 + X2 ** 2 / 2) / 0.25)
    g /= r.mesh.integrate(g)
    assert np.abs(r.fields["rho"][0] - g).max() < 1e-12 * g.max()
    assert abs(r.diagnostics["relative_entropy"][0]) < 1e-12


@pytest.mark.parametrize("stepper", ["explicit", "beuler"])
def test_free_energy_decreases_and_mass_conserved(stepper):
    extra = {"stepper": stepper, "t_end": 3.0, "save_every": 20}
    drop = ("steps", "dt")
    if stepper == "beuler":
        extra["dt"] = 0.05
        extra["save_every"] = 1
    case = raw_case("fp_gibbs_double_well.toml", drop, **extra).with_overrides(["mesh.cells=[32, 32]"])
    r = pdenet.run(case, write=False)
    F = r.diagnostics["free_energy"]
    assert len(F) > 5
    assert np.all(np.diff(F) <= 1e-13 * np.abs(F).max()), np.diff(F).max()
    assert np.abs(r.diagnostics["mass"] - 1).max() < 1e-12
    # F - F_gibbs = D KL(rho | gibbs) >= 0 and decreasing to 0
    X1, X2 = r.mesh.centres()
    f = (X1 ** 2 - 1) ** 2 / 4 + X2 ** 2 / 2
    Z = r.mesh.integrate(np.exp(-f / 0.25))
    assert np.allclose(F - (-0.25 * np.log(Z)), 0.25 * r.diagnostics["relative_entropy"], atol=1e-12)


# -- 3. Metastability --------------------------------------------------------------------
def _f(x):
    return (x * x - 1) ** 2 / 4


@pytest.mark.parametrize("eps", [0.1, 0.05])
def test_mfpt_pde_vs_exact_integral(eps):
    r = run("fp_kramers.toml", f"model.diffusion={eps}", "particles.count=0", "time.t_end=5.0")
    exact = exact_mfpt_1d(_f, eps, -1.0, 1.0, -2.5)
    assert r.attrs["mfpt_at_point"] == pytest.approx(exact, rel=0.01)
    assert r.attrs["kramers_time"] == pytest.approx(kramers_1d(_f, -1.0, 0.0, eps), rel=1e-9)
    # ... which is the Eyring-Kramers closed form sqrt(2) pi exp(1 / (4 eps)) of this double well
    kr = reference.ref("fokker_planck", "kramers_double_well")
    assert r.attrs["kramers_time"] == pytest.approx(kr.value[kr["epsilon"].index(eps)], rel=kr.tolerance)
    # Kramers is the eps -> 0 asymptote: within 20 % here, closer for the smaller eps
    assert abs(r.attrs["kramers_time"] / exact - 1) < 0.2


def test_mfpt_particles_and_survival():
    r = run("fp_kramers.toml", "particles.count=1000", "time.t_end=100.0", "time.save_every=1")
    exact = exact_mfpt_1d(_f, 0.1, -1.0, 1.0, -2.5)
    m, se = r.attrs["particle_mfpt"], r.attrs["particle_mfpt_stderr"]
    assert r.attrs["particle_absorbed_fraction"] == 1.0
    assert abs(m - exact) < 3.0 * se, (m, se, exact)
    # survival is non-increasing, and its time integral is the MFPT from the initial density:
    # for implicit Euler sum_{n>=1} dt S_n = 1^T (-A)^{-1} rho_0 h exactly (geometric tail after t_end)
    S = r.diagnostics["survival"]
    assert np.all(np.diff(S) <= 1e-15)
    dt = r.attrs["dt"]
    ratio = S[-1] / S[-2]
    integral = dt * S[1:].sum() + dt * S[-1] * ratio / (1 - ratio)
    assert integral == pytest.approx(r.attrs["mfpt_initial"], rel=1e-3)
    assert r.attrs["mfpt_initial"] == pytest.approx(exact, rel=0.01)
    # particle survival follows the PDE's within Monte Carlo error
    assert np.abs(r.diagnostics["particle_survival"] - S).max() < 4 * np.sqrt(0.25 / 1000)


def test_until_absorbed_stops_at_max_time():
    # the particles' steps to max_time sum to just under it (2.9999999999998908): the run must
    # stop there, not retry a step shorter than round-off forever
    r = run("fp_kramers.toml", "particles.count=50", "time.t_end=1.0", "particles.max_time=3.0")
    alive = r.analysis["particle_alive"].astype(bool)
    assert alive.any() and np.all(np.isnan(r.analysis["particle_exit_times"][alive]))
    assert r.attrs.get("particle_absorbed_fraction", 0.0) < 1


# -- 4. Non-isotropic --------------------------------------------------------------------
def test_nonisotropic_covariance_is_lyapunov_and_current_circulates():
    H = np.diag([1.0, 2.0])
    D = np.array([[1.0, 0.5], [0.5, 1.0]])
    Sigma = solve_continuous_lyapunov(H, 2 * D)
    errs = []
    for cells in ("[48, 40]", "[96, 80]"):
        r = run("fp_nonisotropic.toml", f"mesh.cells={cells}")
        d = r.diagnostics
        C = np.array([[d["cov_11"][0], d["cov_12"][0]], [d["cov_12"][0], d["cov_22"][0]]])
        errs.append(np.abs(C - Sigma).max())
    assert errs[1] < 0.01 and errs[1] < 0.3 * errs[0], errs   # converging at about second order
    assert abs(Sigma[0, 1] - np.linalg.inv(H)[0, 1]) > 0.3      # not H^-1
    assert d["current_l1"][0] > 0.1 and abs(d["circulation"][0]) > 0.1
    iso = run("fp_nonisotropic.toml", "model.diffusion=1.0")
    assert iso.diagnostics["current_l1"][0] < 1e-12
    assert abs(iso.diagnostics["cov_12"][0]) < 1e-12
    assert iso.diagnostics["cov_22"][0] == pytest.approx(0.5, abs=5e-3)


# -- 5. Circulating steady state ---------------------------------------------------------
def test_circulating_stationary_density_and_current(tmp_path):
    errs = []
    for n in (32, 64):
        r = run("fp_circulating.toml", f"mesh.cells=[{n}, {n}]", 'time.stepper="steady"')
        X1, X2 = r.mesh.centres()
        g = np.exp(-((X1 ** 2 - 1) ** 2 / 4 + X2 ** 2 / 2) / 0.5)
        g /= r.mesh.integrate(g)
        rho = r.fields["rho"][0]
        errs.append(np.sqrt(r.mesh.integrate((rho - g) ** 2)))
        # stationary current = (J grad f) rho: compare with the discrete one
        J1, J2 = r.fields["current_1"][0], r.fields["current_2"][0]
        # exact: int x1 J2 - x2 J1 = E[x1 f_1(x1)] + E[x2^2] = D + D = 1 (integration by parts)
        assert abs(r.diagnostics["circulation"][0] - 1.0) < (0.003 if n == 64 else 0.01)
    assert np.log2(errs[0] / errs[1]) > 1.7, errs
    Js1, Js2 = -X2 * g, (X1 ** 3 - X1) * g
    assert np.sqrt(r.mesh.integrate((J1 - Js1) ** 2 + (J2 - Js2) ** 2)) < 0.05 * np.sqrt(
        r.mesh.integrate(Js1 ** 2 + Js2 ** 2))
    # the plotter draws the current
    from pdenet.plot import plot_file
    out = plot_file(r, str(tmp_path / "c.png"))
    assert os.path.getsize(out) > 10000


# -- 6. Positivity -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fp_ou_1d.toml", "fp_ou_2d.toml", "fp_gibbs_double_well.toml",
                                  "fp_kramers.toml", "fp_circulating.toml"])
@pytest.mark.parametrize("stepper", ["explicit", "beuler"])
def test_no_negative_densities(name, stepper):
    with open(case_path(name), "rb") as fh:
        t_end = min(tomllib.load(fh)["time"]["t_end"], 2.0)
    extra = {"stepper": stepper, "t_end": t_end}
    if stepper == "beuler":
        extra["dt"] = t_end / 20
    else:
        extra["save_every"] = 50
    case = raw_case(name, ("steps", "dt"), **extra).with_overrides(["particles.count=0"])
    r = pdenet.run(case, write=False)
    assert r.fields["rho"].min() >= 0.0
    assert np.all(np.diff(r.diagnostics["mass"]) <= 1e-12)


# -- input errors ------------------------------------------------------------------------
@pytest.mark.parametrize("override,key,words", [
    ('model.drift=["x1"]', "model.drift", "1 components"),
    ("model.diffusion=[[1.0, 0.5]]", "model.diffusion", "tensor"),
    ("model.diffusion=-1.0", "model.diffusion", "positive"),
    ('model.diffusion="x3"', "model.diffusion", "x3"),
    ("time.dt=0.5", "time:", "disagree"),
    ('time.stepper="rk9"', "time.stepper", "not one of"),
])
def test_input_errors_name_key(override, key, words):
    with pytest.raises(CaseError) as exc:
        case = pdenet.load_case(case_path("fp_ou_2d.toml"), [override])
        case.model_cls(case)
    assert key in str(exc.value) and words in str(exc.value)
    assert "fp_ou_2d.toml" in str(exc.value)


@pytest.mark.parametrize("override,key,words", [
    ("model.diffusion=[[1.0, 0.5], [0.2, 1.0]]", "model.diffusion", "the diffusion tensor must be symmetric"),
    ("model.diffusion=[[1.0, 2.0], [2.0, 1.0]]", "model.diffusion", "must be positive definite"),
    ('model.diffusion="x1 - 0.5"', "model.diffusion", "must be positive definite: at cell"),
    ('mesh.boundary={kind="dirichlet", value=1.0}', "mesh.boundary", "noflux, periodic or dirichlet"),
])
def test_numerics_errors_name_key_at_construction(override, key, words):
    # the operator raises plain ValueErrors; the model maps them to the case key, with the file
    case = pdenet.load_case(case_path("fp_ou_2d.toml"), override if isinstance(override, list) else [override])
    with pytest.raises(CaseError) as exc:
        case.model_cls(case)
    assert f"fp_ou_2d.toml: {key}: " in str(exc.value) and words in str(exc.value)


@pytest.mark.parametrize("override,key,words", [
    ('model.initial="x1 - 10"', "model.initial", "negative somewhere"),
    ('time.stepper="steady"', "time.stepper", "absorbing set is zero"),
    ("time.outputs=7", "time.outputs", "do not fall on the 50 steps"),
])
def test_run_errors_are_found_at_construction(override, key, words):
    # everything run() would reject is rejected while building the model (before any output)
    overrides = [override] + (['model.absorbing="x1 > 2"'] if "steady" in override else [])
    case = raw_case("fp_ou_2d.toml", ("save_every",)).with_overrides(overrides)
    with pytest.raises(CaseError) as exc:
        case.model_cls(case)
    assert key in str(exc.value) and words in str(exc.value)


def test_outputs_saves_equally_spaced():
    r = pdenet.run(raw_case("fp_ou_1d.toml", ("save_every",), outputs=4), write=False)
    assert np.allclose(r.time, [0, 0.25, 0.5, 0.75, 1.0])
    assert set(r.diagnostics) >= {"error_rho_l2", "error_rho_max"}
    assert np.all(r.diagnostics["error_rho_max"] >= 0)


def test_outputs_with_the_automatic_explicit_step():
    # the automatic step count is rounded up to a multiple of outputs (the step only gets smaller)
    case = raw_case("fp_ou_1d.toml", ("steps", "save_every"), stepper="explicit", outputs=7)
    plain = raw_case("fp_ou_1d.toml", ("steps",), stepper="explicit")
    model, auto = case.model_cls(case), plain.model_cls(plain)
    assert model.steps % 7 == 0 and auto.steps <= model.steps < auto.steps + 7
    assert np.allclose(model.schedule.times, np.linspace(0, 1.0, 8))


def test_explicit_dt_too_large_is_rejected():
    case = raw_case("fp_ou_1d.toml", ("steps",), stepper="explicit", dt=0.1)
    with pytest.raises(CaseError, match="exceeds the largest positivity-preserving"):
        case.model_cls(case)


def test_second_run_loads_kernels_from_cache(tmp_path):
    import re
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    args = ("run", case_path("fp_gibbs_double_well.toml"), "-o", str(tmp_path / "o.h5"), "-q", "-v",
            "--set", "mesh.cells=[16, 16]", "--set", "time.t_end=0.1")
    stats = []
    for _ in range(2):
        p = run_cli(*args, env=env)
        assert p.returncode == 0, p.stderr
        m = re.search(r"numba kernels: (\d+) loaded from cache, (\d+) compiled", p.stdout)
        stats.append((int(m.group(1)), int(m.group(2))))
    assert stats[0][1] > 0 and stats[0][0] == 0
    # nothing recompiles (kernels called only from other kernels come in with their caller)
    assert stats[1][1] == 0 and stats[1][0] >= 1


# -- SGD's own diffusion ---------------------------------------------------------------------
def test_sgd_diffusion_matches_minibatch_covariance_and_sgd_runs():
    from pdenet.fokkerplanck.sgd import SGDProblem

    p = SGDProblem("logistic", 50, 0.7, 0.0, 3)
    theta, B = 0.4, 4
    _, g = p.per_sample(np.array([theta]))
    # the covariance of a with-replacement mini-batch mean, enumerated exactly = Sigma / B
    gk = g[0]
    assert p.sigma(np.array([theta]))[0] * 1.0 == pytest.approx(np.var(gk), rel=1e-12)
    rng = np.random.default_rng(0)
    means = gk[rng.integers(0, gk.size, size=(200000, B))].mean(axis=1)
    assert np.var(means) == pytest.approx(np.var(gk) / B, rel=0.02)
    # PDE with D = lr Sigma / (2B) against 10000 SGD runs
    r = run("fp_sgd_diffusion.toml", "sgd.chains=10000")
    d = r.diagnostics
    n = 10000
    assert np.all(np.abs(d["sgd_mean"] - d["mean_1"]) < 4 * np.sqrt(d["cov_11"] / n) + 2e-3)
    assert np.all(np.abs(d["sgd_var"] / d["cov_11"] - 1) < 0.06)
    # without the SGD noise (plain gradient flow) the spread would vanish: the diffusion matters
    assert d["cov_11"][-1] > 0.5 * d["cov_11"].max()
    assert np.abs(d["mass"] - 1).max() < 1e-12


def test_sgd_rejects_potential():
    with pytest.raises(CaseError, match="computed from the data"):
        pdenet.load_case(case_path("fp_sgd_diffusion.toml"), ['model.potential="x^2"'])


# -- annealing: D(t) --------------------------------------------------------------------------
_V = "(0.25 + t/2 + (0.09 - 0.25)*exp(-2*t))"
_ANNEAL = ['model.diffusion="0.5*(1 + t)"',
           f'exact.rho="exp(-(x - 1.5*exp(-t))^2 / (2*{_V})) / sqrt(2*pi*{_V})"']


@pytest.mark.parametrize("stepper,order", [("beuler", 1.0), ("cn", 2.0)])
def test_annealing_time_dependent_diffusion_orders(stepper, order):
    # OU with D(t) = (1 + t)/2: variance v' = -2v + 2D(t) -> v = 1/4 + t/2 + (v0 - 1/4) e^{-2t}
    case = pdenet.load_case(case_path("fp_ou_1d.toml"), _ANNEAL + [f'time.stepper="{stepper}"',
                                                                  "mesh.cells=[800]"])
    s = converge(case, "time.steps", [10, 20, 40], field="rho")
    assert all(abs(o - order) < 0.25 for o in s["orders"][1:]), s["orders"]
    assert s["errors"][-1] < (2e-2 if stepper == "beuler" else 5e-4)


def test_annealing_explicit_automatic_step():
    case = raw_case("fp_ou_1d.toml", ("steps", "dt"), stepper="explicit", save_every=200)
    case = case.with_overrides(_ANNEAL)
    r = pdenet.run(case, write=False)
    # the automatic step is safe for the largest D on [0, t_end]: D(1) = 1
    assert r.attrs["dt"] <= 0.9 * (r.mesh.spacing[0] ** 2 / 2.0) * 1.01
    assert r.attrs["error_rho_l2"] < 2e-3
    assert r.fields["rho"].min() >= 0 and abs(r.diagnostics["mass"][-1] - 1) < 1e-12


def test_validate_rejects_what_run_rejects(tmp_path):
    # the initial density is evaluated while the model is built: validate and run say the same
    args = (case_path("fp_ou_1d.toml"), "--set", 'model.initial="x - 10"')
    v = run_cli("validate", *args)
    r = run_cli("run", *args, "-q", "-o", str(tmp_path / "o.h5"))
    assert v.returncode != 0 and r.returncode != 0
    assert "model.initial: the initial density is negative somewhere" in v.stderr
    assert v.stderr.strip().splitlines()[-1] == r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.h5").exists()


def test_observers_cope_with_a_rank_without_the_density(monkeypatch):
    # a distributed system (PETSc DMDA) returns the gathered density on rank 0 only, None on the
    # other ranks: there every observer (diagnostics, exact error, particles, sink) does nothing
    from pdenet.fokkerplanck.model import FokkerPlanckModel

    class Elsewhere:
        def __init__(self, dt):
            self.dt, self.destroyed = dt, False

        def advance(self, rho, n0, n):
            return None

        def summary(self):
            return {}

        def destroy(self):
            self.destroyed = True

    systems = []
    monkeypatch.setattr(FokkerPlanckModel, "_system", lambda self, sink: systems.append(Elsewhere(self.dt))
                        or systems[-1])
    r = run("fp_kramers.toml", "time.t_end=2.0", "particles.count=20", "particles.until_absorbed=false")
    assert list(r.time) == [0.0] and r.fields["rho"].shape[0] == 1  # the initial state only
    assert systems[0].destroyed and r.status == "complete"
