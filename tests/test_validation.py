"""One validation phase (issue 11, item 3): ``pdenet validate`` and ``pdenet run`` reject the same
cases with the same one-line message, before any output file exists.

The expression keys are generated from the schemas of every registered model; each is given the
bad expressions of the issue in a case that really uses the key (a shipped case, or one of the
small cases below when no shipped case sets it).
"""
import glob
import json
import os
import tomllib

import pytest

import pdenet
from conftest import CASES, run_cli
from pdenet.case import COMMON_SCHEMA, REQUIRED, merge_schema
from pdenet.errors import CaseError, PdenetError
from pdenet.expr import Expression, ExpressionError
from pdenet.models import all_models

MODELS = all_models()

#: keys of kind "any" that may hold expressions
EXPRESSION_ANY = {("fokker-planck", "model.diffusion")}

#: the "Why" list of the issue (the injection: a Fokker-Planck ``initial`` among others)
BAD = {
    "attribute": "x.__class__",
    "lambda": "(lambda: 1)()",
    "overflow": "9^9^9^9^9",
    "deep": "(" * 5000 + "1" + ")" * 5000,
    "injection": "__import__('os').system('touch pwned')",
}

#: small cases that set the expression keys no shipped case sets
EXTRA = {
    "fp_absorbing": """
[case]
name = "fp_absorbing"
model = "fokker-planck"
[mesh]
lower = [-2.0]
upper = [2.0]
cells = [20]
[model]
potential = "x^2/2"
initial = "exp(-x^2)"
absorbing = "x - 1.5"
[time]
stepper = "beuler"
t_end = 0.1
steps = 2
""",
    "hj_general": """
[case]
name = "hj_general"
model = "hamilton-jacobi"
[mesh]
lower = [-1.0]
upper = [1.0]
cells = [16]
boundary = "periodic"
[model]
f = "cos(pi*x)"
nu = 0.0
hamiltonian = "general"
H = "p^2/2 + x*p"
dissipation = ["abs(p) + 1"]
[time]
t_end = 0.05
[exact]
u = "cos(pi*x)"
""",
    "heat_source": """
[case]
name = "heat_source"
model = "heat"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [16]
boundary = "dirichlet"
[model]
kappa = 0.5
initial = "sin(pi*x)"
source = "x*(1-x)"
[time]
stepper = "cn"
t_end = 0.1
steps = 4
""",
    "network_exact": """
[case]
name = "network_exact"
model = "network"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [8]
[model.kernel]
expression = "exp(-(y-z)^2)"
[data]
inputs = ["sin(pi*y)"]
targets = ["0"]
[time]
t_end = 1.0
steps = 4
[exact]
f = "sin(pi*y)"
""",
}

SKIP_BASES = ("digits_", "mnist1d_")  # data sets are loaded before the kernel is built: slow


@pytest.fixture(scope="module")
def extra_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("extra")
    for name, text in EXTRA.items():
        (d / f"{name}.toml").write_text(text)
    return d


def _bases(extra):
    paths = sorted(glob.glob(os.path.join(extra, "*.toml")))
    paths += [p for p in sorted(glob.glob(os.path.join(CASES, "*.toml")))
              if not os.path.basename(p).startswith(SKIP_BASES)]
    out = []
    for p in paths:
        with open(p, "rb") as fh:
            out.append((p, tomllib.load(fh)))
    return out


def expression_keys(name, cls):
    """Dotted expression keys of a model's merged schema (``exact.*`` for the [exact] table),
    leaving out the common keys the model does not use."""
    keys = []

    def walk(table, prefix):
        for k, spec in table.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(spec, dict):
                walk(spec, key)
            elif spec.kind in ("expr", "exprs") or (name, key) in EXPRESSION_ANY:
                keys.append(key)

    walk(merge_schema(COMMON_SCHEMA, cls.schema), "")
    return [k for k in keys if k not in cls.unused_keys and k.split(".")[0] not in cls.unused_keys]


ALL_KEYS = [(name, key) for name, cls in sorted(MODELS.items()) for key in expression_keys(name, cls)]


def _lookup(raw, key):
    node = raw
    for part in key.split("."):
        if part == "*":
            return next(iter(node.items())) if isinstance(node, dict) and node else None
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return key, node


def _base_for(model, key, extra):
    for path, raw in _bases(extra):
        if raw.get("case", {}).get("model") == model:
            hit = _lookup(raw, key)
            if hit is not None:
                return path, hit
    return None


def _toml(value):
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _bad_override(key, hit, text):
    """(--set item, dotted key named in the message) with ``text`` put where the key's expression is."""
    found, value = hit
    if key.endswith(".*"):  # [exact]: the first field
        found, value = f"{key[:-2]}.{found}", value
    if isinstance(value, list) and value and not isinstance(value[0], list):
        value = [text, *value[1:]]
    else:
        value = text
    return f"{found}={_toml(value)}", found


def test_every_expression_key_has_a_case(extra_dir):
    """The generated key list is covered: a new expression key needs a case that sets it."""
    missing = [(m, k) for m, k in ALL_KEYS if _base_for(m, k, extra_dir) is None]
    assert not missing, f"no case sets these expression keys (add one to EXTRA): {missing}"
    assert len(ALL_KEYS) >= 15


@pytest.mark.parametrize("model,key", ALL_KEYS, ids=[f"{m}:{k}" for m, k in ALL_KEYS])
def test_bad_expression_rejected_by_validate_and_run_alike(model, key, extra_dir, tmp_path):
    path, hit = _base_for(model, key, extra_dir)
    for what, text in BAD.items():
        item, shown = _bad_override(key, hit, text)
        out = tmp_path / "out.h5"
        with pytest.raises(PdenetError) as v:
            pdenet.validate(path, [item])
        with pytest.raises(PdenetError) as r:
            pdenet.run(path, output=str(out), overrides=[item])
        msg = str(v.value)
        assert msg == str(r.value), what
        assert msg.startswith(f"{path}: {shown}: "), (what, msg)
        assert "\n" not in msg and len(msg) < 400, (what, msg)
        assert os.listdir(tmp_path) == [], what
    assert not os.path.exists("pwned")


def test_cli_validate_and_run_give_the_same_line(tmp_path):
    """In a subprocess: exit status 2 and the same stderr line from both commands, no file."""
    path = os.path.join(CASES, "fp_ou_1d.toml")
    for item in (f"model.initial={_toml(BAD['injection'])}", f"model.initial={_toml(BAD['overflow'])}",
                 "mesh.cells=[1000000000000000]"):
        v = run_cli("validate", path, "--set", item, cwd=tmp_path)
        r = run_cli("run", path, "-q", "--set", item, "-o", str(tmp_path / "o.h5"), cwd=tmp_path)
        assert v.returncode == r.returncode == 2, (v.stderr, r.stderr)
        assert v.stderr == r.stderr and v.stderr.count("\n") == 1, (v.stderr, r.stderr)
        assert v.stderr.startswith(f"pdenet: error: {path}: ")
        assert os.listdir(tmp_path) == []


# -- expressions: the parser never fails with anything but a one-line ExpressionError --------------
@pytest.mark.parametrize("text", [
    "-" * 5000 + "x", "x" + "**x" * 5000, "1+" * 9000 + "1", "sin(" * 300 + "x" + ")" * 300,
    "(" * 5000 + "x" + ")" * 5000, "9" * 5000, "x" * 30000, "1" + "0" * 400 + ".0**x",
])
def test_pathological_expressions_are_expression_errors(text):
    with pytest.raises(ExpressionError) as e:
        Expression(text, ["x"], key="model.f")(x=[0.5])
    assert str(e.value).startswith("model.f: ") and "\n" not in str(e.value) and len(str(e.value)) < 300


def test_depth_limit_and_ordinary_nesting():
    assert Expression("(" * 50 + "x" + ")" * 50, ["x"])(x=[2.0])[0] == 2.0
    with pytest.raises(ExpressionError, match="levels deep"):
        Expression("sin(" * 200 + "x" + ")" * 200, ["x"])
    # a long sum is one level (issue 12: a polynomial of many terms is not a deep expression)
    assert Expression("+".join(["x"] * 200), ["x"])(x=[2.0])[0] == 400.0


def test_non_finite_values_name_file_and_key():
    with pytest.raises(ExpressionError, match=r"^a\.toml: model\.f: 'log\(x\)' gives non-finite"):
        Expression("log(x)", ["x"], key="model.f", source="a.toml")(x=[0.0, 1.0])


# -- resources ---------------------------------------------------------------------------------------
def _fifteen(raw):
    nd = len(raw["mesh"]["lower"]) if isinstance(raw["mesh"].get("lower"), list) else 1
    return {1: [10 ** 15], 2: [10 ** 8, 10 ** 7], 3: [10 ** 5] * 3}[nd]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_mesh_of_1e15_cells_is_one_line(model, extra_dir):
    path, raw = next((p, r) for p, r in _bases(extra_dir) if r["case"]["model"] == model and "mesh" in r)
    with pytest.raises(CaseError) as e:
        pdenet.validate(path, [f"mesh.cells={_fifteen(raw)}"])
    msg = str(e.value)
    assert msg.startswith(f"{path}: mesh.cells: ") and "needs 8.0 PB" in msg and "this machine has" in msg
    assert "\n" not in msg


def test_memory_estimate_against_available(monkeypatch, tmp_path):
    import pdenet.resources

    path = os.path.join(CASES, "fp_ou_1d.toml")
    model = pdenet.validate(path)
    assert model.memory_estimate() >= 8 * 200
    monkeypatch.setattr(pdenet.resources, "available_memory", lambda: 1000)
    with pytest.raises(CaseError, match=r"mesh\.cells: the case needs .* this machine has 1\.0 kB available"):
        pdenet.validate(path)
    with pytest.raises(CaseError):
        pdenet.run(path, output=str(tmp_path / "o.h5"))
    assert os.listdir(tmp_path) == []


def test_network_dense_kernel_too_large_is_one_line():
    with pytest.raises(CaseError, match=r"network_depth\.toml: mesh\.cells: the case needs .* GB"):
        pdenet.validate(os.path.join(CASES, "network_depth.toml"), ["mesh.cells=[1000000]"])


# -- keys of the common tables a model does not use -------------------------------------------------
def test_unused_keys_are_common_keys_the_model_does_not_redefine():
    for name, cls in MODELS.items():
        for entry in cls.unused_keys:
            table, _, key = entry.partition(".")
            assert table in COMMON_SCHEMA, (name, entry)
            assert not key or key in COMMON_SCHEMA[table], (name, entry)
            own = cls.schema.get(table, {})
            assert (key not in own) if key else not own, (name, entry)


def _example(spec):
    if spec.default not in (None, REQUIRED):
        return spec.default
    return {"int": 1, "float": 1.0, "str": "x", "bool": True, "expr": "0", "strs": ["x"]}[spec.kind]


UNUSED = [(name, entry) for name, cls in sorted(MODELS.items()) for entry in cls.unused_keys]


@pytest.mark.parametrize("model,entry", UNUSED, ids=[f"{m}:{e}" for m, e in UNUSED])
def test_a_key_the_model_ignores_is_rejected(model, entry, extra_dir, tmp_path):
    path = next(p for p, r in _bases(extra_dir) if r["case"]["model"] == model)
    table, _, key = entry.partition(".")
    if not key:  # a whole table: its first key (a field name for [exact])
        key = "f" if table == "exact" else next(k for k in COMMON_SCHEMA[table] if k != "*")
    spec = COMMON_SCHEMA[table].get(key, COMMON_SCHEMA[table].get("*"))
    item = f"{table}.{key}={_toml(_example(spec))}"
    with pytest.raises(CaseError) as v:
        pdenet.validate(path, [item])
    with pytest.raises(CaseError) as r:
        pdenet.run(path, output=str(tmp_path / "o.h5"), overrides=[item])
    assert str(v.value) == str(r.value)
    assert str(v.value).startswith(f"{path}: {table}.{key}: is not used by model {model!r}")
    assert os.listdir(tmp_path) == []


def test_mean_field_rejects_a_stepper():
    path = os.path.join(CASES, "meanfield_tanh_phase.toml")
    with pytest.raises(CaseError, match=r"time\.stepper: is not used by model 'mean-field'"):
        pdenet.validate(path, ['time.stepper="rk4"'])


def test_every_model_declares_at_least_one_unused_key_or_uses_all():
    # one more per model than mean-field's rk4: every model has a declaration to test against
    assert all(isinstance(cls.unused_keys, tuple) for cls in MODELS.values())
    assert {name for name, _ in UNUSED} == set(MODELS)


# -- a valid case still validates and runs -----------------------------------------------------------
def test_valid_case_validates_and_runs(tmp_path):
    path = os.path.join(CASES, "fp_ou_1d.toml")
    model = pdenet.validate(path, ["time.steps=10", "time.save_every=5"])
    assert model.mesh.size == 200 and model.case.name == "fp_ou_1d"
    out = tmp_path / "o.h5"
    result = pdenet.run(path, output=str(out), overrides=["time.steps=10", "time.save_every=5"])
    assert out.exists() and result.status == "complete"
    p = run_cli("validate", path)
    assert p.returncode == 0 and "ok" in p.stdout


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CASES, "*.toml"))),
                         ids=lambda p: os.path.basename(p))
def test_every_shipped_case_validates(path):
    if os.path.basename(path).startswith(SKIP_BASES):
        pytest.skip("loads a data set")
    pdenet.validate(path)


# -- checks that run made late, now made while the model is constructed -----------------------------
@pytest.mark.parametrize("case,sets,key", [
    ("fp_sgd_diffusion.toml", ["time.dt=0.07"], "time.dt"),                        # dt not a whole number of lr
    ("fp_ou_1d.toml", ['time.stepper="steady"', 'model.absorbing="x - 5"'], "time.stepper"),
    ("hjb_double_well.toml", ['model.V="log(x)"'], "model.V"),                      # V first evaluated in run
])
def test_late_checks_are_made_by_validate(case, sets, key, tmp_path):
    path = os.path.join(CASES, case)
    with pytest.raises(PdenetError) as v:
        pdenet.validate(path, sets)
    with pytest.raises(PdenetError) as r:
        pdenet.run(path, output=str(tmp_path / "o.h5"), overrides=sets)
    assert str(v.value) == str(r.value) and str(v.value).startswith(f"{path}: {key}: ")
    assert os.listdir(tmp_path) == []
