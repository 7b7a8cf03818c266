"""Depth and width limits (Theorems 2.1, 2.2) through the refinement-study machinery."""
import pytest

from conftest import case_path
from pdenet.converge import converge
import reference


@pytest.mark.parametrize("stepper,values", [
    ("euler", [16, 32, 64, 128]),
    ("heun", [8, 16, 32, 64]),
    ("rk4", [4, 8, 16, 32]),
    ("beuler", [16, 32, 64, 128]),
    ("cn", [8, 16, 32, 64]),
])
def test_depth_limit_orders(stepper, values):
    order = reference.value("orders", stepper)
    study = converge(_case(stepper), "time.steps", values)
    assert study["reference"] == "finest"
    for p in study["orders"][2:-1] or study["orders"][1:-1]:
        assert p == pytest.approx(order, abs=0.12), study["orders"]
    # errors against the finest run decrease monotonically
    errs = study["errors"][:-1]
    assert all(b < a for a, b in zip(errs, errs[1:]))


def _case(stepper):
    from pdenet import load_case
    return load_case(case_path("network_depth.toml"), [f'time.stepper="{stepper}"'])


def test_width_limit_order_two():
    study = converge(case_path("network_width.toml"), "mesh.cells", [8, 16, 32, 64])
    for p in study["orders"][1:-1]:
        assert p == pytest.approx(reference.value("orders", "width_midpoint"), abs=0.05), study["orders"]


def test_dt_refinement_equals_steps_refinement():
    a = converge(_case("heun"), "time.steps", [8, 16, 32])
    b = converge(_case("heun"), "time.dt", [1 / 8, 1 / 16, 1 / 32])
    assert a["differences"][:2] == pytest.approx(b["differences"][:2], rel=1e-12)


def test_exact_solution_is_used_when_given():
    # identity activation, zero kernel, constant bias: f(t) = f_I + a t exactly
    from pdenet import load_case
    text = open(case_path("network_depth.toml")).read()
    case = load_case(text, ['model.activation="identity"', 'model.kernel.init="zero"',
                            'model.bias.expression="2*y"', 'exact.f="sin(pi*y) + 2*y*t"',
                            'data.inputs=["sin(pi*y)"]', 'data.targets=["0"]'])
    study = converge(case, "time.steps", [4, 8])
    assert study["reference"] == "exact"
    assert max(study["errors"]) < 1e-13


def test_bad_refinements_are_rejected():
    from pdenet import CaseError
    with pytest.raises(CaseError, match="monotonically"):
        converge(case_path("network_depth.toml"), "time.steps", [16, 8])
    with pytest.raises(CaseError, match="cannot refine"):
        converge(case_path("network_depth.toml"), "model.intervals", [1, 2])


def test_network_writes_error_f_l2_and_max_at_every_save():
    """[exact] f: the network writes error_f_l2 and error_f_max (one naming scheme) at every save."""
    from pdenet import load_case
    from pdenet.runner import run
    text = open(case_path("network_depth.toml")).read()
    case = load_case(text, ['model.activation="identity"', 'model.kernel.init="zero"',
                            'model.bias.expression="2*y"', 'exact.f="sin(pi*y) + 2*y*t"',
                            'data.inputs=["sin(pi*y)", "sin(pi*y)"]', 'data.targets=["0", "y"]'])
    r = run(case, write=False)
    d = r.diagnostics
    assert "error_f" not in d
    assert len(d["error_f_l2"]) == len(d["error_f_max"]) == len(r.time) > 1
    assert max(d["error_f_l2"]) < 1e-13 and max(d["error_f_max"]) < 1e-13
    wrong = load_case(text, ['exact.f="sin(pi*y) + 1"', 'data.inputs=["sin(pi*y)"]', 'data.targets=["0"]',
                             'model.activation="identity"', 'model.kernel.init="zero"'])
    d = run(wrong, write=False).diagnostics
    assert d["error_f_l2"][0] == pytest.approx(1.0, rel=1e-12) and d["error_f_max"][0] == pytest.approx(1.0)
