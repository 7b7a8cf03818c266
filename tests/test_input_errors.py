"""Issue 12, items 4 and 5: inputs that ended in a Python traceback, passed ``validate`` and failed
in ``run``, or were silently accepted. Each gives one line naming the file, the key and the reason,
and ``validate`` rejects what ``run`` rejects."""
import os
import shutil

import h5py
import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError, ExpressionError
from pdenet.runner import run

from conftest import case_path, run_cli


def _both_reject(path, overrides, match, key=None):
    """validate and run raise the same one-line CaseError naming the file (and key)."""
    with pytest.raises(CaseError, match=match) as v:
        pdenet.validate(path, overrides)
    with pytest.raises(CaseError) as r:
        run(path, overrides=overrides, write=False)
    message = str(v.value)
    assert str(r.value) == message and "\n" not in message and message.startswith(path)
    if key:
        assert f": {key}: " in message, message
    return message


@pytest.mark.parametrize("overrides,match,key", [
    (["time.dt=5e-324"], "steps", "time.dt"),                        # t_end/dt overflowed round()
    (['case.model=["x"]'], "expected a string", "case.model"),        # unhashable list
    (['case.name="a\\u0000b"'], "NUL", "case.name"),                   # h5py: embedded NULL
    (['exact.uu="x"'], "no field.*did you mean 'u'", "exact.uu"),  # a typo was ignored
    (['time.stepper="euler"', "time.dt=0.05"], "stability limit", "time.dt"),
    (['time.stepper="ssp-rk3"', "time.steps=10"], "stability limit", "time.steps"),
])
def test_hj_inputs_rejected_alike(overrides, match, key):
    _both_reject(case_path("hj_quadratic_1d.toml"), overrides, match, key)


@pytest.mark.parametrize("name", ["heat_1d.toml", "fp_ou_1d.toml", "hj_quadratic_1d.toml"])
@pytest.mark.parametrize("value", ["5", "[0]", '[[5, "dirichlet"]]', '{kind = "dirichlet", value = "a"}'])
def test_mesh_boundary_of_the_wrong_type(name, value):
    """mesh.boundary = 5 was a TypeError traceback (int is not iterable) for heat and FP."""
    _both_reject(case_path(name), [f"mesh.boundary={value}"], "condition|unknown|not supported", "mesh.boundary")


def test_hj_unstable_dt_allowed_explicitly():
    model = pdenet.validate(case_path("hj_quadratic_1d.toml"),
                            ['time.stepper="euler"', "time.dt=0.05", "time.allow_unstable=true"])
    assert model.dt == pytest.approx(0.05)
    # a stable step passes without the key; imex is checked against the CFL limit of its explicit
    # (hyperbolic) part alone: |f'| <= 2 and h = 0.05 give dt <= 0.025, diffusion does not count
    pdenet.validate(case_path("hj_quadratic_1d.toml"), ['time.stepper="euler"', "time.dt=0.005"])
    pdenet.validate(case_path("hj_quadratic_1d.toml"), ['time.stepper="imex"', "time.dt=0.025"])
    _both_reject(case_path("hj_quadratic_1d.toml"), ['time.stepper="imex"', "time.dt=0.05"],
                 "2 times the stability limit 0.025 of the imex stepper's explicit part at t = 0", "time.dt")


# H = p^2/2 - 4x from f = 0: the characteristics' slopes grow as p = 4t, so a step that is stable
# at t = 0 (no transport at all) passes the CFL limit h/|p| = 0.0125/t at t = 0.625
STEEPENING = ['model.f="0"', 'model.hamiltonian="general"', 'model.H="p^2/2 - 4*x"', 'time.stepper="imex"',
              "time.dt=0.02", "time.t_end=1.0", "time.outputs=10", "exact={}"]


def test_hj_step_that_becomes_unstable_stops_the_run(tmp_path):
    """The t = 0 check cannot see a gradient that steepens later: the built-in backend checks the
    given step against the limit at every step and stops (exit 1, partial results kept)."""
    out = tmp_path / "s.h5"
    p = run_cli("run", case_path("hj_quadratic_1d.toml"), "-q", "-o", str(out),
                *[a for o in STEEPENING for a in ("--set", o)])
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "times the stability limit" in p.stderr and "at t = 0.64" in p.stderr and "allow_unstable" in p.stderr
    r = pdenet.open(tmp_path / "s.failed.h5")
    assert r.status == "failed" and 0.5 <= r.time[-1] < 0.64 and not out.exists()
    r = pdenet.run(case_path("hj_quadratic_1d.toml"), output=str(out), overrides=STEEPENING + ["time.allow_unstable=true"])
    assert r.status == "complete" and r.time[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("name,overrides,key", [
    ("hjb_double_well.toml", ["model.particles=1000000000000"], "model.particles"),
    ("hjb_double_well.toml", ["model.particle_steps=1000000000000"], "model.particle_steps"),
    ("fp_kramers.toml", ["particles.count=1000000000000"], "particles.count"),
    ("fp_sgd_diffusion.toml", ["sgd.samples=1000000000000"], "sgd.samples"),
    ("fp_sgd_diffusion.toml", ["sgd.chains=1000000000000"], "sgd.chains"),
    ("hj_figure41.toml", ["particles.runs=1000000000000"], "particles.runs"),
    ("hjb_double_well.toml", ["model.particles=9223372036854775807",
                              "model.particle_steps=9223372036854775807"], None),
])
def test_huge_counts_rejected_by_the_memory_check(name, overrides, key):
    """10^12 particles was a numpy MemoryError traceback in run and passed validate."""
    _both_reject(case_path(name), overrides, "of memory", key)


def test_deeply_nested_toml(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(open(case_path("heat_1d.toml")).read() + "\n[extra]\nv = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(CaseError, match="nested too deeply") as e:
        pdenet.validate(str(path))
    assert str(e.value).startswith(str(path))
    with pytest.raises(CaseError, match="nested too deeply"):
        pdenet.validate(case_path("heat_1d.toml"), ["model.kappa=" + "[" * 5000 + "]" * 5000])


def test_control_characters_in_a_key_stay_on_one_line():
    with pytest.raises(CaseError) as e:
        pdenet.validate(case_path("heat_1d.toml"), ['model."a\\u0000\\nb"=1'])
    assert "\n" not in str(e.value) and "\x00" not in str(e.value)


def test_network_without_a_test_split():
    """data.test_fraction = 0 crashed validate (min of an empty array); it means no held-out set."""
    model = pdenet.validate(case_path("digits_adam.toml"), ["data.test_fraction=0"])
    assert model.test is None
    _both_reject(case_path("digits_adam.toml"), ["data.test_fraction=1"], "no training samples",
                 "data.test_fraction")


def test_converge_non_integer_refinement_before_any_run(tmp_path):
    p = run_cli("converge", case_path("heat_1d.toml"), "--key", "mesh.cells", "--values", "20,30",
                "-o", str(tmp_path / "c.h5"), "-q")
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "not an integer refinement" in p.stderr
    assert "mesh.cells" in p.stderr and "heat_1d.toml" in p.stderr
    from pdenet.converge import converge
    with pytest.raises(CaseError, match="positive"):
        converge(case_path("heat_1d.toml"), "time.dt", ["0", "0.1"])


def test_plot_and_info_on_bad_paths_and_damaged_files(tmp_path):
    out = str(tmp_path / "h.h5")
    run(case_path("heat_1d.toml"), output=out, overrides=["mesh.cells=[16]", "time.steps=10"])
    p = run_cli("plot", out, "-o", str(tmp_path / "p.xyz"))
    assert p.returncode != 0 and p.stderr.strip().count("\n") == 0 and "p.xyz" in p.stderr
    # a damaged attribute: bytes that are no valid datatype message / a wrong type
    bad = str(tmp_path / "bad.h5")
    shutil.copy(out, bad)
    with h5py.File(bad, "a") as fh:
        fh.attrs["model"] = np.array([1, 2, 3])
    p = run_cli("plot", bad, "-o", str(tmp_path / "b.png"))
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0
    data = bytearray(open(out, "rb").read())
    at = data.find(b"pdenet_version")
    for shift in (-40, -24, -12, 0):
        damaged = bytearray(data)
        damaged[at + shift: at + shift + 3] = bytes(b ^ 0x5A for b in damaged[at + shift: at + shift + 3])
        path = tmp_path / f"d{shift}.h5"
        path.write_bytes(bytes(damaged))
        p = run_cli("info", str(path))
        assert "Traceback" not in p.stderr, p.stderr
        if p.returncode:
            assert p.stderr.strip().count("\n") == 0 and str(path) in p.stderr


def test_expression_issue_inputs_through_the_cli(tmp_path):
    for text in ("1/0", "1" * 400, "-" * 100000 + "x", " + ".join(["x"] * 3000)):
        p = run_cli("validate", case_path("hj_quadratic_1d.toml"), "--set", f'model.f="{text}"')
        assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr[-300:]
        assert "hj_quadratic_1d.toml: model.f: " in p.stderr
    # a long sum is not deep: 1000 terms are a valid expression (one level of the depth limit)
    p = run_cli("validate", case_path("hj_quadratic_1d.toml"), "--set",
                f'model.f="{" + ".join(["0.001*x^2"] * 1000)}"')
    assert p.returncode == 0, p.stderr


def test_long_sums_and_products_evaluate_left_to_right():
    """Chains of + - and of * / are folded in a loop (a sum of 2000 terms is one level of the
    depth limit, not 2000): the values equal the nested left-to-right evaluation bit for bit."""
    import numpy as np

    from pdenet.expr import MAX_DEPTH, Expression

    x = np.linspace(-1.0, 1.0, 7)
    coeffs = np.round(np.random.default_rng(0).uniform(-1, 1, 2000), 3)
    text = "".join(f"{'+' if c >= 0 else '-'}{abs(float(c))}*x" for c in coeffs)
    want = np.zeros_like(x)
    for c in coeffs:  # the order the parser's left-associative tree fixes
        want = want + float(c) * x if c >= 0 else want - abs(float(c)) * x
    assert np.array_equal(Expression(text, ["x"])(x=x), want)
    prod = "x" + "".join(f"{'*' if k % 3 else '/'}1.001" for k in range(1500))
    want = x.copy()
    for k in range(1500):
        want = want * 1.001 if k % 3 else want / 1.001
    assert np.array_equal(Expression(prod, ["x"])(x=x), want)
    # nesting still counts: MAX_DEPTH + 1 nested calls are refused in one line
    with pytest.raises(ExpressionError, match="levels deep"):
        Expression("sin(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1), ["x"])


def test_a_schedule_of_10_to_the_12_saves_is_refused_before_it_is_built():
    """Found by the slow fuzz: time.steps = 10^12 with a save every step built a list of 10^12 save
    times (MemoryError) while the model was constructed."""
    from solvers.march import MAX_SAVES, SaveSchedule

    with pytest.raises(ValueError, match="saved times"):
        SaveSchedule.every(10 ** 12, 1e-12, 1)
    with pytest.raises(ValueError, match="saved times"):
        SaveSchedule.uniform(1.0, MAX_SAVES)
    assert len(SaveSchedule.every(10 ** 12, 1e-12, 10 ** 6).times) == 10 ** 6 + 1


@pytest.mark.parametrize("case, override", [
    ("fp_sgd_diffusion.toml", "sgd.lr=1e308"), ("fp_ou_1d.toml", "model.diffusion=1e308"),
    ("hj_quadratic_1d.toml", 'model.f="1e308*x^4"'), ("meanfield_maps.toml", "model.sw2=1e308"),
])
def test_extreme_values_give_one_line_without_numpy_warnings(case, override):
    """An overflow while a model is set up (the slow fuzz's learning rate near the float maximum
    printed 'RuntimeWarning: overflow encountered in divide' and its source line before the
    error) gives the one line alone."""
    p = run_cli("validate", case_path(case), "--set", override)
    assert "Warning" not in p.stderr and len(p.stderr.strip().splitlines()) <= 1, p.stderr
