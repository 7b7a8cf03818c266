"""The hamilton-jacobi and hjb models on the shared marching loop: the save schedule from
[time] (model.outputs kept as a deprecated alias), HJScheme without hidden caches (the first
stage of a CFL step handed over explicitly), HJSystem equal to the plain integrate loop."""
import re

import numpy as np
import pytest

from pdenet import load_case, run
from pdenet.errors import CaseError
from pdenet.hj.scheme import STEPPERS, HJScheme, HJSystem
from pdenet.mesh import Mesh
from solvers.ssp import integrate

from conftest import case_path


def _without_time_outputs(name, model_outputs=None):
    """The shipped case's text without [time] outputs; with ``model_outputs``, spelled the old
    way (``outputs`` under [model])."""
    with open(case_path(name)) as fh:
        text = fh.read()
    text, n = re.subn(r"(?m)^outputs = \d+\n", "", text)
    assert n == 1
    if model_outputs is not None:
        text = text.replace("[model]\n", f"[model]\noutputs = {model_outputs}\n", 1)
    return text


@pytest.mark.parametrize("name", ["hj_kink_1d.toml", "hjb_double_well.toml"])
def test_model_outputs_is_a_deprecated_alias_of_time_outputs(name):
    with pytest.warns(DeprecationWarning, match="time"):
        old = load_case(_without_time_outputs(name, model_outputs=2))
    new = load_case(case_path(name), ["time.outputs=2"])
    assert old["time.outputs"] == new["time.outputs"] == 2
    assert old.model_cls(old).schedule == new.model_cls(new).schedule
    assert len(new.model_cls(new).schedule.times) == 3
    with pytest.warns(DeprecationWarning):  # both, equal: accepted
        load_case(case_path(name), ["model.outputs=4"])
    with pytest.raises(CaseError, match="deprecated alias of time.outputs") as err:
        load_case(case_path(name), ["model.outputs=2"])  # the shipped case says time.outputs = 4
    assert err.value.key == "model.outputs"


def test_old_spelling_runs_to_the_same_numbers():
    sets = ["mesh.cells=[40]"]
    with pytest.warns(DeprecationWarning):
        old = run(load_case(_without_time_outputs("hj_kink_1d.toml", model_outputs=2), sets), write=False)
    new = run(load_case(case_path("hj_kink_1d.toml"), sets + ["time.outputs=2"]), write=False)
    assert np.array_equal(old.time, new.time) and len(new.time) == 3
    assert np.array_equal(old.fields["u"], new.fields["u"])
    assert np.array_equal(old.diagnostics["error_u_l2"], new.diagnostics["error_u_l2"])


def test_hj_save_every_counts_fixed_steps():
    text = _without_time_outputs("hj_kink_1d.toml")
    r = run(load_case(text, ["mesh.cells=[40]", "time.dt=0.01", "time.save_every=20"]), write=False)
    assert np.allclose(r.time, [0.0, 0.2, 0.4, 0.5], rtol=0, atol=1e-12)
    assert r.attrs["steps"] == 50
    case = load_case(text, ["time.save_every=20"])  # no fixed step: the CFL rule decides
    with pytest.raises(CaseError) as err:
        case.model_cls(case)
    assert err.value.key == "time.save_every"


def test_hjb_saves_on_particle_steps():
    sets = ["model.particle_steps=100"]
    case = load_case(_without_time_outputs("hjb_double_well.toml"), sets + ["time.save_every=40"])
    s = case.model_cls(case).schedule
    T = case["time.t_end"]
    assert s.steps == (0, 40, 80, 100) and s.times == tuple(T * k / 100 for k in s.steps)
    case = load_case(case_path("hjb_double_well.toml"), sets + ["time.outputs=3"])
    assert case.model_cls(case).schedule.steps == (0, 33, 67, 100)  # rounded to steps
    case = load_case(case_path("hjb_double_well.toml"), sets + ["time.outputs=101"])
    with pytest.raises(CaseError, match="particle steps") as err:
        case.model_cls(case)
    assert err.value.key == "time.outputs"


def _scheme(stepper="ssp-rk3", nu=0.1):
    mesh = Mesh([-np.pi], [np.pi], [64], "periodic")
    return HJScheme(mesh, nu=nu, order=5, stepper=stepper), np.cos(3 * mesh.axes[0]) + 0.2 * np.sin(mesh.axes[0])


def test_rhs_has_no_identity_cache():
    s, u = _scheme()
    s.max_dt(u)
    u *= 2.0  # the same object, new values: the right-hand side must be of the new values
    fresh, _ = _scheme()
    assert np.array_equal(s.rhs(u), fresh.rhs(2.0 * _scheme()[1]))
    buf = np.empty_like(u)
    out = s.rhs(u, out=buf)
    assert np.shares_memory(out, buf) and np.array_equal(out, fresh.rhs(u))


@pytest.mark.parametrize("stepper", STEPPERS)
def test_a_step_from_the_cfl_stage_is_the_plain_step(stepper):
    s, u = _scheme(stepper)
    dt, L = s.dt_and_rhs(u)
    kept = L.copy()
    assert dt == s.max_dt(u)
    assert np.array_equal(s.step(u, 0.0, dt, L), s.step(u, 0.0, dt))
    assert np.array_equal(L, kept)  # the handed-over stage is only read


@pytest.mark.parametrize("stepper", ["ssp-rk3", "euler"])
def test_hj_system_equals_integrate_with_the_cfl_rule(stepper):
    s, u = _scheme(stepper)
    system = HJSystem(s)
    v, n = system.advance_to(u, 0.0, 0.3)
    # one right-hand side per stage: the CFL evaluation is the first stage of each step
    assert s.evaluations == {"ssp-rk3": 3, "euler": 1}[stepper] * n
    w, m = integrate(s.step, u, 0.0, 0.3, s.max_dt)
    assert np.array_equal(v, w) and n == m == system.steps
    fixed = HJSystem(s, dt=0.3 / 7)
    assert np.array_equal(fixed.advance_to(u, 0.0, 0.3)[0], integrate(s.step, u, 0.0, 0.3, lambda u_, t_: 0.3 / 7)[0])


@pytest.mark.parametrize("name,sets", [("hj_kink_1d.toml", ['output.fields=["rho"]']),
                                       ("hjb_double_well.toml", ['output.fields=["rho"]', 'model.density="pde"'])])
def test_saved_fields_are_checked_while_constructing(name, sets):
    case = load_case(case_path(name), sets)
    with pytest.raises(CaseError) as err:
        case.model_cls(case)
    assert err.value.key == "output.fields"
