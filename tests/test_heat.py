"""The heat model (the worked example of docs/adding-a-model.md): accuracy against exact
solutions, observed orders in space and time, conservation, boundary values, the CLI and
one-line rejections of bad cases."""
import numpy as np
import pytest

import pdenet
from conftest import case_path, run_cli
from pdenet.converge import converge

CASE = case_path("heat_1d.toml")


def run(*overrides):
    return pdenet.run(CASE, overrides=list(overrides), write=False)


def test_shipped_case_matches_the_exact_solution():
    r = run()
    assert r.status == "complete"
    assert r.time.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert r.fields["u"].shape == (6, 64)
    # error of the sine mode: 2.2e-5 (space, order 2) at t = 0.5, on an amplitude of 0.085
    assert np.max(r.diagnostics["error_u_l2"]) < 5e-5
    assert np.max(r.diagnostics["error_u_max"]) < 7e-5
    assert r.diagnostics["error_u_l2"][0] == 0.0


def test_second_order_in_space():
    # 2000 Crank-Nicolson steps: the time error (4e-9) is far below the space error (7e-6 at 128 cells)
    study = converge(pdenet.load_case(CASE, ["time.steps=2000"]), "mesh.cells", [16, 32, 64, 128], field="u")
    assert study["reference"] == "exact"
    assert study["orders"][1:] == pytest.approx([2.0, 2.0, 2.0], abs=0.02)


# the sine mode of the 16-cell mesh decays at the discrete rate kappa 4/h^2 sin^2(pi h/2): against
# this semi-discrete solution the error is the time-stepping error alone
SEMI_DISCRETE = 'exact.u="exp(-kappa*4*16^2*sin(pi/32)^2*t)*sin(pi*x)"'


@pytest.mark.parametrize("stepper, steps, order", [("euler", [256, 512, 1024, 2048], 1.0),
                                                   ("beuler", [10, 20, 40, 80], 1.0),
                                                   ("cn", [10, 20, 40, 80], 2.0)])
def test_order_in_time(stepper, steps, order):
    case = pdenet.load_case(CASE, [f'time.stepper="{stepper}"', "mesh.cells=[16]", "time.outputs=1",
                                      SEMI_DISCRETE])
    study = converge(case, "time.steps", steps, field="u")
    assert study["orders"][1:] == pytest.approx([order] * 3, abs=0.05)
    assert study["errors"][-1] < {"euler": 1e-4, "beuler": 3e-3, "cn": 2e-5}[stepper]


@pytest.mark.parametrize("stepper, steps", [("euler", 200), ("beuler", 20), ("cn", 20)])
def test_mass_is_conserved_with_no_flux_boundaries(stepper, steps):
    r = run("mesh.cells=[24, 16]", "mesh.lower=[0.0, 0.0]", "mesh.upper=[1.0, 2.0]", 'mesh.boundary="noflux"',
            'model.initial="exp(-20*((x1-0.3)^2 + (x2-1.2)^2))"', f'time.stepper="{stepper}"',
            "time.t_end=0.1", f"time.steps={steps}", "exact={}")
    mass = r.diagnostics["mass"]
    assert np.max(np.abs(mass - mass[0])) < 1e-13 * mass[0]
    assert r.fields["u"][-1].max() < 0.5 * r.fields["u"][0].max()  # it did diffuse


def test_mass_balance_with_a_source():
    """d/dt int u = int s with no-flux boundaries: mass(t) = mass(0) + t int s (s constant in time)."""
    r = run('mesh.boundary="noflux"', 'model.source="1 + cos(pi*x)"', "exact={}")
    mass = r.diagnostics["mass"]
    assert mass - mass[0] == pytest.approx(r.time * 1.0, abs=1e-13)


def test_boundary_values_are_imposed():
    """u = 1 - x is steady with u(0) = 1 and the outward flux -kappa u_x = kappa at x = 1; the
    cell-centred scheme keeps it to round-off."""
    bc = 'mesh.boundary=[[{kind="dirichlet", value=1.0}, {kind="neumann", value=0.5}]]'
    r = run(bc, 'model.initial="1 - x"', 'exact.u="1 - x"', 'time.stepper="beuler"')
    assert np.max(r.diagnostics["error_u_max"]) < 1e-12


@pytest.mark.parametrize("ndim", [2, 3])
def test_manufactured_solution_with_a_source(ndim):
    """u = exp(-t) cos(2 pi x1) sin(pi x2) [cos(2 pi x3)], periodic in x1 (and x3), dirichlet in x2;
    the source s = u_t - kappa Lap u makes it exact."""
    if ndim == 2:
        u, k2 = "exp(-t)*cos(2*pi*x1)*sin(pi*x2)", "5"
        mesh = ["mesh.cells=[32, 16]", "mesh.lower=[0.0, 0.0]", "mesh.upper=[1.0, 1.0]",
                'mesh.boundary=["periodic", "dirichlet"]']
    else:
        u, k2 = "exp(-t)*cos(2*pi*x1)*sin(pi*x2)*cos(2*pi*x3)", "9"
        mesh = ["mesh.cells=[16, 8, 16]", "mesh.lower=[0.0, 0.0, 0.0]", "mesh.upper=[1.0, 1.0, 1.0]",
                'mesh.boundary=["periodic", "dirichlet", "periodic"]']
    r = run(*mesh, f'model.initial="{u.replace("exp(-t)*", "")}"', "model.kappa=0.1",
            f'model.source="(-1 + kappa*{k2}*pi^2)*{u}"', f'exact.u="{u}"', "time.t_end=0.2",
            "time.steps=40", "time.outputs=2")
    err = r.diagnostics["error_u_max"][-1]
    assert 0 < err < (3e-3 if ndim == 2 else 1e-2)


def test_cli_run_writes_a_file_that_open_reads(tmp_path):
    out = tmp_path / "heat.h5"
    p = run_cli("run", CASE, "-o", str(out), "-q")
    assert p.returncode == 0, p.stderr
    r = pdenet.open(out)
    assert r.status == "complete" and r.attrs["model"] == "heat" and r.attrs["stepper"] == "cn"
    assert r.fields["u"].shape == (6, 64)
    assert r.diagnostics["error_u_l2"][-1] < 5e-5
    np.testing.assert_allclose(r.fields["u"], run().fields["u"], rtol=0, atol=0)
    p = run_cli("plot", str(out), "-o", str(tmp_path / "heat.png"))
    assert p.returncode == 0, p.stderr


BAD = [
    (['time.stepper="euler"'], "time.dt", "explicit Euler is stable for dt <= 0.000244141"),
    (['model.initial="x.__class__"'], "model.initial", "not allowed"),
    (['model.initial="(lambda: 1)()"'], "model.initial", ""),
    (['model.source="9^9^9^9^9"'], "model.source", "non-finite"),
    (['exact.u="1/(x - x)"'], "exact.u", "non-finite"),
    (['exact.v="0"'], "exact.v", "no field 'v'"),
    (['mesh.boundary="extrapolate"'], "mesh.boundary", "not defined for the heat equation"),
    (["mesh.cells=[1000000000000000]"], "mesh.cells", "PB"),
    (["model.kappa=-1"], "model.kappa", "positive"),
    (["time.outputs=3"], "time.outputs", "do not fall on the 100 steps"),
    (['time.stepper="rk4"'], "time.stepper", "not one of euler, beuler, cn"),
]


@pytest.mark.parametrize("overrides, key, message", BAD, ids=[b[1] + ":" + b[0][0] for b in BAD])
def test_bad_cases_are_rejected_before_the_run(overrides, key, message):
    with pytest.raises(pdenet.CaseError) as info:
        case = pdenet.load_case(CASE, overrides)
        case.model_cls(case)
    text = str(info.value)
    assert f"{key}:" in text and message in text and "\n" not in text


def test_validate_rejects_what_run_rejects(tmp_path):
    out = tmp_path / "bad.h5"
    bad = ["--set", 'time.stepper="euler"']
    v = run_cli("validate", CASE, *bad)
    r = run_cli("run", CASE, *bad, "-o", str(out), "-q")
    assert v.returncode == r.returncode == 2
    assert v.stderr == r.stderr and len(v.stderr.strip().splitlines()) == 1 and "time.dt" in v.stderr
    assert not out.exists() and not (tmp_path / "bad.h5.partial").exists()
