"""Case files: TOML text -> a validated :class:`Case`.

Each table is declared by a schema of :class:`Key` entries (type, default,
documentation). The common tables live here; each model adds its own
(``[model]``, ``[data]``, ...) through its ``schema``. Validation names the
file, the dotted key and the reason, and suggests the nearest valid key for a
misspelt one. ``docs/case-files.md`` is generated from the same schemas
(``scripts/gen_case_reference.py``), so the reference cannot drift.
"""
import difflib
import json
import math
import os
import tomllib
from typing import Any

import numpy as np
import tomli_w

from .errors import CaseError, ExpressionError
from .expr import Expression, InputExpression

REQUIRED = object()


class Key:
    """One case-file key.

    kind: float | int | str | bool | floats (number or list) | ints | strs |
    expr (expression text or number) | exprs (list of expressions) | dict (free table).
    """

    def __init__(self, kind, default=REQUIRED, doc="", choices=None, minimum=None, positive=False):
        self.kind, self.default, self.doc = kind, default, doc
        self.choices, self.minimum, self.positive = choices, minimum, positive

    def check(self, value, key):
        """``value`` checked (type, choices, bounds) and normalised for key ``key``; a :class:`~pdenet.errors.CaseError` otherwise."""
        def fail(reason):
            raise CaseError(reason, key=key)

        kind = self.kind
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(f"expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                fail(f"must be finite, got {value!r}")
        elif kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(f"expected an integer, got {value!r}")
        elif kind == "str":
            if not isinstance(value, str):
                fail(f"expected a string, got {value!r}")
            if "\0" in value:
                fail(f"must not contain a NUL character, got {value!r}")
        elif kind == "bool":
            if not isinstance(value, bool):
                fail(f"expected true or false, got {value!r}")
        elif kind in ("floats", "ints"):
            item = Key(kind[:-1])
            if isinstance(value, list):
                if not value:
                    fail("must not be empty")
                value = [item.check(v, key) for v in value]
            else:
                value = item.check(value, key)
        elif kind == "strs":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail(f"expected a list of strings, got {value!r}")
        elif kind == "expr":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                fail(f"expected an expression (string) or a number, got {value!r}")
        elif kind == "exprs":
            if not isinstance(value, list):
                value = [value]
            for v in value:
                Key("expr").check(v, key)
        elif kind == "dict":
            if not isinstance(value, dict):
                fail(f"expected a table, got {value!r}")
        elif kind == "any":
            pass
        else:  # pragma: no cover - schema bug
            raise AssertionError(kind)

        if self.choices is not None:
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v not in self.choices:
                    near = difflib.get_close_matches(str(v), [str(c) for c in self.choices], n=1)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    fail(f"{v!r} is not one of {', '.join(map(str, self.choices))}{hint}")
        numbers = value if isinstance(value, list) else [value]
        if self.minimum is not None and any(v < self.minimum for v in numbers):
            fail(f"must be >= {self.minimum}, got {value!r}")
        if self.positive and any(v <= 0 for v in numbers):
            fail(f"must be positive, got {value!r}")
        return value


# ---------------------------------------------------------------------------
# Common tables
#: ``[solver] threads`` of a model with parallel numba kernels (add it to the model's schema)
THREADS_KEY = Key("int", None, "Threads of the model's parallel numba kernels; default: NUMBA_NUM_THREADS "
                  "when the environment sets it, else 1 (and 1 per rank under MPI). Each cell is computed "
                  "by one thread, so the result does not depend on it. On a shared machine more threads "
                  "can be slower: a thread waiting for a busy core stalls every parallel loop.",
                  positive=True)

COMMON_SCHEMA = {
    "case": {
        "name": Key("str", "case", "Short name; the default output file is <name>.h5."),
        "model": Key("str", REQUIRED, "Which model to solve (see the models list)."),
        "description": Key("str", "", "Free text kept in the output file."),
    },
    "mesh": {
        "lower": Key("floats", REQUIRED, "Lower corner of the box, one number per dimension."),
        "upper": Key("floats", REQUIRED, "Upper corner of the box."),
        "cells": Key("ints", REQUIRED, "Cells per dimension (1-3 dimensions).", positive=True),
        "boundary": Key("any", "none",
                        "periodic | noflux | dirichlet | neumann | extrapolate | none; one for all "
                        "dimensions, a list per dimension, or [low, high] pairs."),
    },
    "time": {
        "t_end": Key("float", None, "Final time T (give two of t_end, steps, dt).", positive=True),
        "steps": Key("int", None, "Number of time steps (the depth L of the network).", positive=True),
        "dt": Key("float", None, "Time step tau.", positive=True),
        "stepper": Key("str", "euler", "Time-stepping scheme (model dependent)."),
        "save_every": Key("int", None, "Save every this many time steps of dt (the initial state and the "
                          "last step are always saved); models with a fixed step. Default: every step, "
                          "or `outputs` when that is given.", positive=True),
        "outputs": Key("int", None, "Save this many times after t = 0, equally spaced to t_end (every "
                       "model; with a fixed step they must fall on steps). Give outputs or save_every, "
                       "not both. Default: every step (fixed-step models), 4 (CFL-stepped models).",
                       positive=True),
        "checkpoint_every": Key("int", 0, "0: keep every step for the backward pass; c > 0: keep every c-th "
                                "state and recompute in between (memory O(L/c + c)).", minimum=0),
    },
    "solver": {
        "backend": Key("str", "builtin", "builtin (numba/scipy) or petsc.", choices=["builtin", "petsc"]),
        "petsc_options": Key("str", "", "PETSc options string, e.g. '-ksp_type gmres'."),
        "newton_tol": Key("float", 1e-12, "Relative tolerance of Newton solves (implicit steppers).",
                          positive=True),
        "newton_maxiter": Key("int", 50, "Maximum Newton iterations per step.", positive=True),
        "krylov_tol": Key("float", 1e-13, "Relative tolerance of the inner Krylov solves.", positive=True),
    },
    "output": {
        "path": Key("str", None, "HDF5 output file (default <case.name>.h5 in the current folder); relative to "
                  "the case file and inside its folder tree; no control characters."),
        "fields": Key("strs", None, "Fields to save (default: all the model offers)."),
        "compression": Key("str", "gzip", "gzip | lzf | none.", choices=["gzip", "lzf", "none"]),
    },
    "exact": {
        "*": Key("expr", REQUIRED, "Exact solution of a field (name = expression of the coordinates "
                 "and t), used by `pdenet converge` and written as an error diagnostic."),
    },
}


def _suggest(name, valid):
    near = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {near[0]!r}?)" if near else f"; valid: {', '.join(sorted(valid))}"


def validate_table(table, schema, prefix):
    """Check ``table`` against ``schema``, fill defaults; returns a new dict."""
    if not isinstance(table, dict):
        raise CaseError(f"expected a table, got {table!r}", key=prefix)
    out = {}
    wildcard = schema.get("*")
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        spec = schema.get(name, wildcard)
        if spec is None:
            valid = [k for k in schema if k != "*"]
            raise CaseError(f"unknown key{_suggest(name, valid)}", key=key)
        if isinstance(spec, dict):
            out[name] = validate_table(value, spec, key)
        else:
            out[name] = spec.check(value, key)
    for name, spec in schema.items():
        if name == "*" or name in out:
            continue
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(spec, dict):
            out[name] = validate_table({}, spec, key)
        elif spec.default is REQUIRED:
            raise CaseError("is required", key=key)
        else:
            out[name] = spec.default
    return out


def merge_schema(base, extra):
    """``base`` with the tables and keys of ``extra`` added (nested tables merged, keys replaced)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_schema(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(item):
    """``key.path=value`` -> (['key', 'path'], value); value parsed as TOML, else a string."""
    if "=" not in item:
        raise CaseError(f"--set expects key=value, got {item!r}", key=item)
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise CaseError(f"--set has a malformed key in {item!r}", key=key)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    except (RecursionError, MemoryError):
        raise CaseError("--set: the value is nested too deeply", key=key) from None
    return key.split("."), value


def apply_overrides(raw, overrides):
    """Apply ``--set key.path=value`` items to the raw case dict ``raw`` (in place); returns it."""
    for item in overrides or ():
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CaseError(f"--set: {part!r} is not a table", key=".".join(path))
        node[path[-1]] = value
    return raw


class Case:
    """A validated case: ``case['time.steps']`` reads a dotted key."""

    def __init__(self, raw, data, source, model_cls, base_dir, inputs=None):
        self.raw, self.data, self.source = raw, data, source
        self.model_cls, self.base_dir = model_cls, base_dir
        #: dotted key -> numpy array or callable given in place of an expression (from_dict)
        self.inputs = dict(inputs or {})

    @classmethod
    def from_dict(cls, tables, overrides=(), base_dir=None, source="<dict>"):
        """A case from nested dicts, as a TOML case file would give them (``{"case": {"model":
        "heat"}, "mesh": {...}, ...}``), validated exactly as a file is.

        Wherever an expression goes (initial data, potentials, kernels, sources, ...), a numpy
        array or a Python callable may stand instead (:class:`~pdenet.expr.InputExpression`); an
        array of numbers where a list of numbers goes is taken as that list. The case text kept
        in the output names each such key (``"<array (64,): /inputs/model.initial>"``) and the
        runner stores the array (a callable: its values on the mesh) under ``/inputs/<key>``.
        ``overrides``: ``--set``-style ``key=value`` strings applied after."""
        if not isinstance(tables, dict):
            raise CaseError(f"expected a dict of tables, got {type(tables).__name__}", source=source)
        raw, inputs = _extract_inputs(tables)
        try:
            apply_overrides(raw, overrides)
        except CaseError as exc:
            raise exc.at(source=source) from None
        return _with_inputs(raw, inputs, source, base_dir or os.getcwd())

    def input_arrays(self):
        """``{key: (array, attrs)}`` of the arrays and callables given in place of expressions,
        as the runner stores them in ``/inputs``: an array as given, a callable as the values it
        gave where the model first evaluated it (on its mesh), with its name."""
        out = {}
        made = self.__dict__.get("_made", {})
        for key, value in self.inputs.items():
            if callable(value):
                values = made[key].values if key in made and made[key].values is not None else np.zeros(0)
                out[key] = (values, {"function": getattr(value, "__qualname__", type(value).__name__),
                                     "meaning": "values of the function where the model first evaluated it"})
            else:
                out[key] = (np.asarray(value, dtype=float), {"meaning": "array given in place of an expression"})
        return out

    def with_values(self, values):
        """A new case with dotted keys set to Python values, validated again:
        ``case.with_values({"time.steps": 64, "model.initial": np.zeros(32)})``."""
        raw, inputs = _extract_inputs(self.raw)
        inputs = {**self.inputs, **inputs}
        new, more = _extract_inputs({k: v for k, v in dict(values).items()}, dotted=True)
        for key, value in new.items():
            inputs.pop(key, None)
            path = key.split(".")
            node = raw
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise CaseError(f"{part!r} is not a table", key=key, source=self.source)
            node[path[-1]] = value
        inputs.update(more)
        return _with_inputs(raw, inputs, self.source, self.base_dir)

    def __repr__(self):
        parts = [f"{self.name!r}", f"model={self.model!r}"]
        if self.source:
            parts.append(f"source={self.source!r}")
        cells = self.get("mesh.cells")
        if cells is not None:
            parts.append(f"mesh.cells={cells}")
        for key in ("time.steps", "time.t_end", "time.stepper", "train.method", "train.iterations"):
            value = self.get(key)
            if value is not None:
                parts.append(f"{key}={value!r}")
        return f"Case({', '.join(parts)})"

    def __getitem__(self, dotted):
        node = self.data
        for part in dotted.split("."):
            node = node[part]
        return node

    def get(self, dotted, default=None):
        """The value at dotted key ``dotted``, or ``default`` when it is absent."""
        try:
            return self[dotted]
        except (KeyError, TypeError):
            return default

    @property
    def name(self):
        """``[case] name``."""
        return self.data["case"]["name"]

    @property
    def model(self):
        """``[case] model``."""
        return self.data["case"]["model"]

    @property
    def text(self):
        """The effective case (overrides applied) as TOML."""
        return tomli_w.dumps(self.raw)

    def with_overrides(self, overrides):
        """A new case with ``--set``-style overrides applied (validated again)."""
        raw = apply_overrides(_deepcopy(self.raw), overrides)
        if self.inputs:
            return _with_inputs(raw, dict(self.inputs), self.source, self.base_dir)
        return build_case(raw, self.source, self.base_dir)

    def error(self, reason, key=None):
        """A :class:`~pdenet.errors.CaseError` naming this case's file and ``key``."""
        return CaseError(reason, key=key, source=self.source)

    def expression(self, key, variables, text=None):
        """The expression at ``key`` (or ``text``, an item of a list there), checked against
        ``variables``; errors become a :class:`CaseError` naming the file and key. Evaluating it
        raises an :class:`ExpressionError` naming the file and key (non-finite values, ...)."""
        try:
            if key in self.inputs and text is None:   # an array or callable (from_dict)
                made = InputExpression(self.inputs[key], variables, key=key, source=self.source)
                self.__dict__.setdefault("_made", {}).setdefault(key, made)
                return made
            return Expression(self[key] if text is None else text, variables, key=key, source=self.source)
        except ExpressionError as exc:
            prefix = f"{self.source}: {key}: " if self.source else f"{key}: "
            raise CaseError(str(exc).removeprefix(prefix), key=key, source=self.source) from None

    def resolve_path(self, path):
        """A path named in the case file, relative to the case file's folder."""
        return path if os.path.isabs(path) else os.path.join(self.base_dir or ".", path)

    def output_path(self, override=None):
        """The output file: ``override`` (``-o``, the user's choice, any path), else ``[output] path``
        relative to the case file's folder (checked by :func:`check_names` to stay inside it), else
        ``<name>.h5``."""
        if override is not None:
            bad = _control_char(os.fspath(override))
            if bad:
                raise CaseError(f"output file name contains a control character ({bad}); names must be printable",
                                key="output", source=self.source)
        path = override or self.get("output.path") or f"{self.name}.h5"
        if not os.path.isabs(path) and override is None and self.get("output.path"):
            path = os.path.join(self.base_dir, path)
        return path


def _placeholder(key, value):
    what = f"array {np.shape(value)}" if not callable(value) else \
        f"function {getattr(value, '__qualname__', type(value).__name__)}"
    return f"<{what}: /inputs/{key}>"


def _extract_inputs(tables, dotted=False, prefix=""):
    """A copy of nested ``tables`` with numpy scalars as Python numbers and each array or
    callable replaced by a placeholder string; returns ``(raw, {dotted key: array or callable})``.
    With ``dotted`` the top level maps dotted keys to values (``with_values``)."""
    inputs = {}

    def walk(node, path):
        if isinstance(node, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, path) for v in node]
        if isinstance(node, np.generic):
            return node.item()
        if isinstance(node, np.ndarray) or (callable(node) and not isinstance(node, type)):
            inputs[path] = node
            return _placeholder(path, node)
        return node

    if dotted:
        raw = {k: walk(v, k) for k, v in tables.items()}
    else:
        raw = walk(tables, prefix)
    return raw, inputs


def _with_inputs(raw, inputs, source, base_dir):
    """build_case with arrays/callables at ``inputs``' keys: an array at a key that takes numbers
    (not an expression) becomes the list of its numbers; a callable there is an error."""
    from .models import get_model

    model = raw.get("case", {}).get("model") if isinstance(raw.get("case"), dict) else None
    if inputs and isinstance(model, str):
        try:
            schema = merge_schema(COMMON_SCHEMA, get_model(model).schema)
        except CaseError as exc:
            raise exc.at(source=source) from None
        for key in list(inputs):
            spec = _spec(schema, key)
            if spec is not None and spec.kind in ("expr", "exprs", "any"):
                continue
            value = inputs.pop(key)
            if callable(value):
                raise CaseError("a Python function is accepted only where an expression goes", key=key,
                                source=source)
            node = raw
            for part in key.split(".")[:-1]:
                node = node[part]
            node[key.split(".")[-1]] = np.asarray(value).tolist()
    case = build_case(raw, source, base_dir)
    case.inputs = inputs
    return case


def _spec(schema, key):
    node = schema
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part, node.get("*"))
        if node is None:
            return None
    return node if isinstance(node, Key) else None


def _deepcopy(obj):
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


#: most time steps a case may ask for through t_end/dt (a tiny dt would otherwise overflow or march
#: for ever)
MAX_STEPS = 10**12


def resolve_time(time, key_prefix="time"):
    """Fill t_end/steps/dt from any two (steps wins a rounding tie); returns a new dict."""
    t_end, steps, dt = time.get("t_end"), time.get("steps"), time.get("dt")
    given = sum(v is not None for v in (t_end, steps, dt))
    if given < 2:
        raise CaseError("give two of t_end, steps, dt", key=key_prefix)
    if steps is None:
        ratio = t_end / dt
        if not math.isfinite(ratio) or ratio > MAX_STEPS:
            raise CaseError(f"t_end={t_end} / dt={dt} is {ratio:.3g} steps (at most {MAX_STEPS:.0e})",
                            key=f"{key_prefix}.dt")
        steps = round(ratio)
        if steps < 1 or abs(steps * dt - t_end) > 1e-9 * t_end:
            raise CaseError(f"t_end={t_end} is not a whole number of steps dt={dt}", key=f"{key_prefix}.dt")
    elif t_end is None:
        t_end = steps * dt
    elif dt is not None and abs(steps * dt - t_end) > 1e-9 * t_end:
        # all three given: they must agree; refinement overrides of one key win
        raise CaseError(f"t_end={t_end}, steps={steps}, dt={dt} disagree; give two of them",
                        key=key_prefix)
    out = dict(time)
    out.update(t_end=float(t_end), steps=int(steps), dt=float(t_end) / int(steps))
    return out


def check_unused(raw: dict, model_cls: Any) -> None:
    """CaseError for a key of the common tables that the case sets but the model never reads
    (the model class's ``unused_keys``: dotted keys or whole tables)."""
    for entry in getattr(model_cls, "unused_keys", ()):
        table, _, name = entry.partition(".")
        section = raw.get(table)
        if not isinstance(section, dict):
            continue
        for key in ([name] if name else list(section)):
            if key in section:
                raise CaseError(f"is not used by model {model_cls.name!r}; leave it out", key=f"{table}.{key}")


def _control_char(text):
    """The first control character of ``text`` as ``U+XXXX``, or ''."""
    for c in text:
        if ord(c) < 32 or 127 <= ord(c) < 160:
            return f"U+{ord(c):04X}"
    return ""


def check_names(data, base_dir):
    """Names that become file names: printable, and a case file's ``[output] path`` inside the
    case file's folder tree (``-o`` / ``output=`` may name any path)."""
    for table, key in (("case", "name"), ("output", "path")):
        value = data.get(table, {}).get(key)
        bad = _control_char(value) if isinstance(value, str) else ""
        if bad:
            raise CaseError(f"contains a control character ({bad}); names must be printable", key=f"{table}.{key}")
    path = data.get("output", {}).get("path")
    if path:
        root = os.path.abspath(base_dir or ".")
        target = os.path.abspath(os.path.join(root, path))
        if os.path.commonpath([root, target]) != root or target == root:
            raise CaseError(f"{path!r} is not a file inside the case file's folder ({root}); give a path "
                            "inside it, or name the output on the command line (-o)", key="output.path")


def build_case(raw, source, base_dir):
    """Validate the raw TOML dict ``raw`` against its model's schema: a :class:`Case` (one-line errors naming ``source`` and the key)."""
    from .models import get_model  # imports only the model the case names

    if not isinstance(raw.get("case"), dict) or "model" not in raw["case"]:
        raise CaseError("is required", key="case.model", source=source)
    try:
        model_cls = get_model(raw["case"]["model"])
        schema = merge_schema(COMMON_SCHEMA, model_cls.schema)
        for table in raw:
            if table not in schema:
                raise CaseError(f"unknown table{_suggest(table, schema)}", key=f"[{table}]")
        data = validate_table(raw, schema, "")
        check_unused(raw, model_cls)
        data = model_cls.validate(data) or data
        check_names(data, base_dir)
    except CaseError as exc:
        raise exc.at(source=source) from None
    return Case(raw, data, source, model_cls, base_dir)


def load_case(path_or_text, overrides=()):
    """Read and validate a case from a path or from TOML text.

    Raises :class:`CaseError` naming the file, key and reason.
    """
    if isinstance(path_or_text, Case):
        return path_or_text.with_overrides(overrides) if overrides else path_or_text
    if isinstance(path_or_text, dict):
        return Case.from_dict(path_or_text, overrides)
    text = str(path_or_text)
    if "\n" in text or ("=" in text and not os.path.exists(text)):
        source, base_dir = "<text>", os.getcwd()
    else:
        source, base_dir = text, os.path.dirname(os.path.abspath(text))
        try:
            with open(text, "rb") as fh:
                text = fh.read().decode("utf-8")
        except FileNotFoundError:
            raise CaseError("no such file", source=source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CaseError(f"cannot read: {exc}", source=source) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"invalid TOML: {exc}", source=source) from None
    except (RecursionError, MemoryError):
        raise CaseError("invalid TOML: arrays or tables nested too deeply", source=source) from None
    try:
        apply_overrides(raw, overrides)
    except CaseError as exc:
        raise exc.at(source=source) from None
    return build_case(raw, source, base_dir)


def schema_markdown():
    """The case-file reference (docs/case-files.md) generated from the schemas."""
    from .models import all_models


    def table_md(schema, prefix, lines):
        rows = []
        for name, spec in schema.items():
            if isinstance(spec, dict):
                table_md(spec, f"{prefix}.{name}", lines)
                continue
            default = "required" if spec.default is REQUIRED else f"`{spec.default!r}`"
            choices = f" One of: {', '.join(map(str, spec.choices))}." if spec.choices else ""
            cell = f"{spec.doc}{choices}".replace("|", "\\|")
            rows.append(f"| `{name}` | {spec.kind} | {default.replace('|', chr(92) + '|')} | {cell} |")
        if rows:
            lines += [f"\n### `[{prefix}]`\n", "| key | type | default | meaning |", "|---|---|---|---|", *rows]

    lines = ["# Case-file reference", "",
             "Generated by `scripts/gen_case_reference.py` from the schemas in the code; do not edit by hand.",
             "A test fails when this file and the code disagree.", "",
             "## Validation",
             "",
             "`pdenet validate CASE` and `pdenet run CASE` (and `pdenet.validate`, `pdenet.run`) share one "
             "validation phase, finished before any output file exists, so they reject the same cases with "
             "the same one-line message naming the file and the key:",
             "",
             "1. the TOML is read and every key checked against the schemas below (type, choices, bounds; "
             "unknown keys with the nearest valid name); a key of the common tables that the chosen model "
             "does not use is rejected (\"is not used by model ...\");",
             "2. the model is constructed: it checks the cross-key rules, builds its mesh, compares the "
             "memory the case needs with what the machine has (a one-line \"needs 8.0 PB, this machine "
             "has ...\" at key `mesh.cells`, before anything is allocated), and parses and evaluates every "
             "expression on its mesh, `[exact]` included (at t = 0 and t_end): anything outside the "
             "expression language, nested too deeply, or giving NaN/inf is rejected there.",
             "",
             "Expressions are bounded: at most 20 000 characters and 100 levels of nesting, where a chain "
             "of `+`/`-` or of `*`/`/` counts as one level (a polynomial of a thousand terms is fine; it "
             "is evaluated left to right, as written); a number beyond the floating-point range, `1/0` "
             "and the like are one-line errors.",
             "",
             "## Tables common to every model"]
    for table, schema in COMMON_SCHEMA.items():
        table_md(schema, table, lines)
    for name, cls in sorted(all_models().items()):
        lines += ["", f"## model = \"{name}\"", "", (cls.__doc__ or "").strip().splitlines()[0]]
        unused = getattr(cls, "unused_keys", ())
        if unused:
            lines += ["", "Common keys this model does not use (a case that sets one is rejected): "
                      + ", ".join(f"`[{k}]`" if "." not in k else f"`{k}`" for k in unused) + "."]
        for table, schema in cls.schema.items():
            table_md(schema, table, lines)
    return "\n".join(lines) + "\n"


def _json_key(spec):
    """JSON Schema of one :class:`Key`."""
    number = {"float": {"type": "number"}, "int": {"type": "integer"}}
    kind = spec.kind
    if kind in number:
        one = dict(number[kind])
    elif kind == "str":
        one = {"type": "string"}
    elif kind == "bool":
        one = {"type": "boolean"}
    elif kind in ("floats", "ints"):
        item = dict(number[kind[:-1]])
        one = {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}
    elif kind == "strs":
        one = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    elif kind == "expr":
        one = {"type": ["string", "number"]}
    elif kind == "exprs":
        one = {"anyOf": [{"type": ["string", "number"]},
                         {"type": "array", "items": {"type": ["string", "number"]}}]}
    elif kind == "dict":
        one = {"type": "object"}
    else:
        one = {}
    bounds = {}
    if spec.minimum is not None:
        bounds["minimum"] = spec.minimum
    if spec.positive:
        bounds["exclusiveMinimum"] = 0
    if spec.choices is not None:
        bounds["enum"] = list(spec.choices)
    if bounds:   # on the number itself and on each item of a list
        if "anyOf" in one:
            one = {"anyOf": [{**one["anyOf"][0], **bounds},
                             {**one["anyOf"][1], "items": {**one["anyOf"][1]["items"], **bounds}}]}
        else:
            one.update(bounds)
    if spec.doc:
        one["description"] = spec.doc
    if spec.default is not REQUIRED:
        try:
            json.dumps(spec.default)
            one["default"] = spec.default
        except (TypeError, ValueError):
            pass
    return one


def _json_table(schema):
    props, required = {}, []
    for name, spec in schema.items():
        if name == "*":
            continue
        props[name] = _json_table(spec) if isinstance(spec, dict) else _json_key(spec)
        if not isinstance(spec, dict) and spec.default is REQUIRED:
            required.append(name)
    out = {"type": "object", "properties": props}
    wildcard = schema.get("*")
    out["additionalProperties"] = (_json_table(wildcard) if isinstance(wildcard, dict) else _json_key(wildcard)) \
        if wildcard is not None else False
    if required:
        out["required"] = required
    return out


def json_schema(model=None):
    """The case schema as JSON Schema (draft 2020-12), for editors that complete and check TOML
    against a schema (``pdenet schema``): one model's (``model``), or every model's, chosen by
    ``[case] model``. Types, choices, bounds, defaults, descriptions and unknown keys are
    checked; cross-key rules and expressions are checked by ``pdenet validate`` only."""
    from ._version import __version__
    from .models import all_models, get_model

    models = {model: get_model(model)} if model is not None else all_models()
    variants = []
    for name, cls in sorted(models.items()):
        merged = merge_schema(COMMON_SCHEMA, cls.schema)
        unused = getattr(cls, "unused_keys", ())
        for entry in unused:   # a common key the model does not use is rejected by validate
            table, _, key = entry.partition(".")
            if table in merged and isinstance(merged[table], dict):
                if key:
                    merged[table] = {k: v for k, v in merged[table].items() if k != key}
                else:
                    merged = {k: v for k, v in merged.items() if k != table}
        table = _json_table(merged)
        table["properties"]["case"]["properties"]["model"] = {"const": name,
                                                              "description": "Which model to solve."}
        table["title"] = f"pdenet case, model {name}"
        variants.append(table)
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema",
           "title": f"pdenet {__version__} case file",
           "description": "Generated by `pdenet schema` from the case schemas in the code."}
    if len(variants) == 1:
        doc.update({k: v for k, v in variants[0].items() if k != "title"})
    else:
        doc["oneOf"] = variants
    return doc
