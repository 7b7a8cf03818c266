"""Issue 17, part 3: Python-first cases.

``Case.from_dict`` validates a dict exactly as a TOML file; numpy arrays and Python callables
stand where expressions go and give the *identical* run (the oracle: the same case from its TOML
file); the arrays are stored in ``/inputs``; ``with_values`` sets keys from Python values;
``pdenet schema`` exports the case schema as JSON Schema, which accepts every shipped case.
"""
import glob
import json
import os
import tomllib

import numpy as np
import pytest

import pdenet
from conftest import CASES, run_cli
from pdenet.errors import CaseError


def _raw(name):
    with open(os.path.join(CASES, name), "rb") as fh:
        return tomllib.load(fh)


def _same_run(a, b):
    assert a.fields.keys() == b.fields.keys() and a.diagnostics.keys() == b.diagnostics.keys()
    for k in a.fields:
        np.testing.assert_array_equal(a.fields[k], b.fields[k])
    for k in a.diagnostics:
        np.testing.assert_array_equal(a.diagnostics[k], b.diagnostics[k])
    np.testing.assert_array_equal(a.time, b.time)


def test_dict_equals_toml():
    toml = pdenet.run(os.path.join(CASES, "heat_1d.toml"), write=False)
    case = pdenet.Case.from_dict(_raw("heat_1d.toml"))
    assert case.data == pdenet.load_case(os.path.join(CASES, "heat_1d.toml")).data
    _same_run(toml, pdenet.run(case, write=False))
    _same_run(toml, pdenet.run(_raw("heat_1d.toml"), write=False))   # load_case accepts a dict too


def test_array_and_callable_initial_data_identical_output(tmp_path):
    toml = pdenet.run(os.path.join(CASES, "heat_1d.toml"), output=str(tmp_path / "toml.h5"))
    x = toml.mesh.axes[0]
    raw = _raw("heat_1d.toml")
    raw["model"]["initial"] = np.sin(np.pi * x)                      # an array on the mesh
    arr = pdenet.run(pdenet.Case.from_dict(raw), output=str(tmp_path / "array.h5"))
    raw["model"]["initial"] = lambda x: np.sin(np.pi * x)            # a Python function
    fn = pdenet.run(pdenet.Case.from_dict(raw), output=str(tmp_path / "function.h5"))
    for r in (arr, fn, pdenet.open(tmp_path / "array.h5"), pdenet.open(tmp_path / "function.h5")):
        _same_run(toml, r)
        np.testing.assert_array_equal(r.inputs["model.initial"], np.sin(np.pi * x))   # stored: reproducible
        assert "/inputs/model.initial" in r.attrs["case"]
    assert pdenet.open(tmp_path / "function.h5").group_attrs["inputs/model.initial"]["function"].endswith("<lambda>")


def test_network_kernel_as_callable_and_array():
    """A kernel b(y, z, t) as a Python function, and a time-independent one as a matrix."""
    base = ["time.steps=8", "mesh.cells=[16]"]
    toml = pdenet.run(os.path.join(CASES, "network_depth.toml"), overrides=base, write=False)
    raw = _raw("network_depth.toml")
    raw["model"]["kernel"]["expression"] = lambda y, z, t: 2 * np.exp(-4 * (y - z) ** 2) * np.cos(t)
    fn = pdenet.run(pdenet.Case.from_dict(raw, overrides=base), write=False)
    for k in toml.fields:
        np.testing.assert_allclose(fn.fields[k], toml.fields[k], rtol=0, atol=1e-14)
    np.testing.assert_allclose(fn.attrs["loss"], toml.attrs["loss"], rtol=1e-14)

    still = base + ['model.kernel.expression="2*exp(-4*(y - z)^2)"']
    toml = pdenet.run(os.path.join(CASES, "network_depth.toml"), overrides=still, write=False)
    y = toml.mesh.axes[0]
    raw["model"]["kernel"]["expression"] = 2 * np.exp(-4 * (y[:, None] - y[None, :]) ** 2)
    arr = pdenet.run(pdenet.Case.from_dict(raw, overrides=base), write=False)
    for k in toml.fields:
        np.testing.assert_allclose(arr.fields[k], toml.fields[k], rtol=0, atol=1e-14)


def test_inputs_are_validated_like_expressions():
    raw = _raw("heat_1d.toml")

    def error(**model):
        case = pdenet.Case.from_dict({**raw, "model": {**raw["model"], **model}})
        with pytest.raises(CaseError) as exc:
            pdenet.validate(case)
        msg = str(exc.value)
        assert "\n" not in msg and msg.startswith("<dict>: model.initial: ")
        return msg

    assert "shape (32,)" in error(initial=np.zeros(32))
    assert "non-finite" in error(initial=np.full(64, np.nan))
    assert "non-finite" in error(initial=lambda x: x / 0.0)
    assert "takes q" in error(initial=lambda q: q)
    assert "raised ZeroDivisionError" in error(initial=lambda x: 1 // 0)
    assert "numeric array" in error(initial=np.array(["a"] * 64))
    with pytest.raises(CaseError, match="^<dict>: mesh.cells: a Python function is accepted only where"):
        pdenet.Case.from_dict({**raw, "mesh": {**raw["mesh"], "cells": lambda x: 3}})
    with pytest.raises(CaseError, match=r"^<dict>: mesh.cellz: unknown key \(did you mean 'cells'\?\)"):
        pdenet.Case.from_dict({**raw, "mesh": {**raw["mesh"], "cellz": 3}})
    with pytest.raises(CaseError, match="expected a dict"):
        pdenet.Case.from_dict("not a dict")


def test_with_values():
    case = pdenet.load_case(os.path.join(CASES, "heat_1d.toml"))
    new = case.with_values({"time.steps": 60, "mesh.cells": np.array([32]), "model.kappa": np.float64(0.25)})
    assert new["time.steps"] == 60 and new["mesh.cells"] == [32] and new["model.kappa"] == 0.25
    assert case["time.steps"] == 100     # the original is untouched
    assert "steps = 60" in new.text
    _same_run(pdenet.run(new, write=False),
              pdenet.run(os.path.join(CASES, "heat_1d.toml"),
                         overrides=["time.steps=60", "mesh.cells=[32]", "model.kappa=0.25"], write=False))
    with pytest.raises(CaseError, match="time.stepz: unknown key"):
        case.with_values({"time.stepz": 3})


def test_json_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    p = run_cli("schema", "-o", str(tmp_path / "s.json"))
    assert p.returncode == 0, p.stderr
    schema = json.loads((tmp_path / "s.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted(glob.glob(os.path.join(CASES, "*.toml"))):
        with open(path, "rb") as fh:
            jsonschema.validate(tomllib.load(fh), schema)
    bad = _raw("heat_1d.toml")
    bad["time"]["stepz"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = _raw("heat_1d.toml")
    bad["time"]["stepper"] = "nope"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
