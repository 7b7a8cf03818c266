"""Property-based fuzz of the input half of issue 12: the expression parser and case files.

* Expressions (random text over the language's characters, random syntax trees of the language,
  pathologically long or deep ones): constructing and evaluating an :class:`Expression` either
  works (finite values) or raises :class:`ExpressionError` with a one-line message; never another
  exception (RecursionError, OverflowError, ZeroDivisionError, MemoryError, ...).
* Case files (random mutations of the values, keys and tables of the shipped cases):
  :func:`pdenet.validate` either accepts the case or raises a :class:`PdenetError` with one line
  naming the file; on cheap cases ``run`` then rejects exactly what ``validate`` rejects, with the
  same message, and accepts what it accepts (a numerical failure, SolverError, aside).

The unmarked tests run a few hundred examples (well under a minute); the ``slow`` ones run
thousands. Each test counts what it tried and how it ended (``FUZZ_COUNTS``, printed with -s).
"""
from __future__ import annotations

import collections
import copy
import glob
import os
import signal
import tomllib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
import tomli_w  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pdenet  # noqa: E402
from pdenet.errors import ExpressionError, PdenetError, SolverError  # noqa: E402
from pdenet.expr import ARITY, FUNCTIONS, Expression  # noqa: E402

from conftest import CASES  # noqa: E402

FUZZ_COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
VARIABLES = ("x", "t")


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message


# -- expressions -------------------------------------------------------------------------------
def _check_expression(text, label):
    """Parse and evaluate ``text``: finite values or a one-line ExpressionError, nothing else."""
    counts = FUZZ_COUNTS[label]
    counts["tried"] += 1
    try:
        expr = Expression(text, VARIABLES, key="model.f", source="fuzz.toml")
        out = expr(x=np.linspace(-2.0, 2.0, 7), t=np.float64(0.5))
    except ExpressionError as exc:
        _one_line(str(exc))
        assert str(exc).startswith("fuzz.toml: model.f: "), str(exc)
        counts["rejected (one line)"] += 1
        return
    assert np.all(np.isfinite(out)) and out.shape == (7,)
    counts["accepted"] += 1


ATOMS = st.one_of(
    st.sampled_from(["x", "t", "pi", "e", "inf", "y", "sin", "__import__", "x.real", "''", "True", "None"]),
    st.integers(min_value=0, max_value=10 ** 500).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: repr(abs(v))),
    st.sampled_from(["1e308", "1e309", "5e-324", "0", "0.0", "1" * 400, "9" * 5000, "1e-400", "0x10", "1_0"]),
)


def _node(children):
    unary = st.tuples(st.sampled_from(["-", "+", "not ", "~"]), children).map(lambda p: f"{p[0]}{p[1]}")
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "^", "%", "//", "<", "<=", "==",
                                                  "!=", ">", ">=", "and", "@", "<<"]), children).map(
        lambda p: f"{p[0]} {p[1]} {p[2]}")
    paren = children.map(lambda c: f"({c})")
    names = sorted(FUNCTIONS) + ["foo", "eval", "open"]
    call = st.tuples(st.sampled_from(names), st.lists(children, min_size=0, max_size=4)).map(
        lambda p: f"{p[0]}({', '.join(p[1])})")
    right_arity = st.sampled_from(sorted(FUNCTIONS)).flatmap(
        lambda f: st.lists(children, min_size=ARITY.get(f, 1), max_size=ARITY.get(f, 1)).map(
            lambda args: f"{f}({', '.join(args)})"))
    chained = st.tuples(children, children, children).map(lambda p: f"{p[0]} < {p[1]} < {p[2]}")
    return st.one_of(unary, binary, paren, call, right_arity, chained)


EXPRESSIONS = st.recursive(ATOMS, _node, max_leaves=40)

# pathological shapes: n-fold repetition of a piece (long sums, unary chains, power towers, nesting)
PATHOLOGICAL = st.tuples(
    st.sampled_from(["sum", "neg", "pow", "paren", "call", "mul"]),
    st.integers(min_value=1, max_value=120_000)).map(lambda p: {
        "sum": lambda n: " + ".join(["x"] * n),
        "neg": lambda n: "-" * n + "x",
        "pow": lambda n: "^".join(["1.0001"] * n),
        "paren": lambda n: "(" * n + "x" + ")" * n,
        "call": lambda n: "sin(" * n + "x" + ")" * n,
        "mul": lambda n: "*".join(["x"] * n),
    }[p[0]](p[1] if p[0] != "sum" else min(p[1], 30_000)))

EXPRESSION_ALPHABET = "x t e pi sin exp log sqrt where ( ) , + - * / ^ % < > = ! . 0 1 2 9 e- inf _ [ ] { } ' \" \\ ` \x00 \n"


def _random_text():
    tokens = EXPRESSION_ALPHABET.split(" ") + [" "]
    return st.lists(st.sampled_from(tokens), max_size=60).map("".join) | st.text(max_size=40)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_random_text())
def test_expression_random_text(text):
    _check_expression(text, "expression text")


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_expression_random_trees(text):
    _check_expression(text, "expression tree")


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(PATHOLOGICAL)
def test_expression_pathological_sizes(text):
    _check_expression(text, "expression long/deep")


@pytest.mark.parametrize("text", [
    " + ".join(f"x*{i}" for i in range(1000)), "-" * 100_000 + "x", "**".join(["x"] * 30_000),
    "1" * 400, "x*" + "1" * 400 + ".0", "9" * 5000, "1/0", "x/0", "x % 0", "0**-1", "exp(1000)",
    "log(0)", "gamma(-1)", "sqrt(-1)", "(" * 5000 + "x" + ")" * 5000, "sin(" * 300 + "x" + ")" * 300,
])
def test_expression_issue_inputs(text):
    """The expressions of issue 12's list of tracebacks: each is one line now."""
    _check_expression(text, "expression issue list")


# -- case files --------------------------------------------------------------------------------
# the shipped cases whose validation is cheap (mnist1d_adam loads a data set)
BASE_CASES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CASES, "*.toml"))
                    if not os.path.basename(p).startswith("mnist1d"))
RAW = {name: tomllib.load(open(os.path.join(CASES, name), "rb")) for name in BASE_CASES}

SPECIAL_VALUES = [0, -1, 1, 2, 3, 10 ** 12, 2 ** 63 - 1, -(2 ** 63), 5e-324, 1e308, -1e308, 1e-300, 0.5,
                  float("inf"), float("-inf"), float("nan"), True, False, "", "x", "\x00", "a\nb", "1/0",
                  "exp(1000)", "x^2", "sin(x)", "nope", "periodic", "euler", "ssp-rk3", "cn", "explicit",
                  [], [0], [1, 2], [10 ** 9], [100000, 100000, 100000], ["x"], [[1]], [[[]]], {}, {"a": 1},
                  "-" * 30000 + "x", " + ".join(["x"] * 1000), "1" * 400]
VALUES = st.one_of(
    st.sampled_from(SPECIAL_VALUES).map(copy.deepcopy),  # a copy: a mutation must not edit the pool
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.floats(),
    st.text(max_size=20),
    EXPRESSIONS,
    st.lists(st.one_of(st.integers(-10, 10 ** 6), st.floats(-10, 10)), max_size=4),
)


def _leaves(node, prefix=()):
    for k, v in node.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))


def _perturb(draw, value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return max(1, value + draw(st.integers(-3, 3))) if value > 0 else value + draw(st.integers(-1, 1))
    if isinstance(value, float):
        return value * draw(st.sampled_from([0.5, 2.0, 0.1, 10.0, 1.5, -1.0, 0.0]))
    if isinstance(value, str):
        return draw(st.sampled_from([value + " + x", f"({value})^2", f"exp({value})", f"{value}*0",
                                     value.replace("x", "t"), value.upper(), value + "1", value[:-1]]))
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return value[:i] + [_perturb(draw, value[i])] + value[i + 1:]
    return value


@st.composite
def mutated_cases(draw, names=BASE_CASES, max_mutations=3, perturb=2):
    name = draw(st.sampled_from(names))
    raw = copy.deepcopy(RAW[name])
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = list(_leaves(raw))
        path = draw(st.sampled_from(paths)) if paths else ("case",)
        parent = raw
        for part in path[:-1]:
            parent = parent[part]
        what = draw(st.sampled_from(["value", "value", "value", "delete", "rename", "add", "element"]
                                    + ["perturb"] * perturb))
        key = path[-1]
        if what == "perturb":  # a plausible edit: scale a number, change an expression slightly
            parent[key] = _perturb(draw, parent[key])
        elif what == "value":
            parent[key] = draw(VALUES)
        elif what == "delete":
            parent.pop(key, None)
        elif what == "rename":
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(key)
        elif what == "add":
            target = parent[key] if isinstance(parent.get(key), dict) else parent
            target[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
        elif isinstance(parent.get(key), list) and parent[key]:
            i = draw(st.integers(0, len(parent[key]) - 1))
            parent[key][i] = draw(VALUES)
        else:
            parent[key] = draw(VALUES)
    return name, raw


def _write(tmp_path_factory, raw):
    try:
        text = tomli_w.dumps(raw)
    except Exception:  # a value TOML cannot hold (tomli_w's limits, not pdenet's)
        return None
    folder = tmp_path_factory.mktemp("fuzz")
    path = os.path.join(str(folder), "case.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _validate(path, label):
    """``pdenet.validate``: None when accepted, else the one-line message (checked here)."""
    counts = FUZZ_COUNTS[label]
    counts["tried"] += 1
    try:
        pdenet.validate(path)
    except PdenetError as exc:
        message = str(exc)
        _one_line(message)
        assert path in message, f"the message does not name the file: {message}"
        counts["rejected (one line, names the file)"] += 1
        return message
    counts["accepted"] += 1
    return None


def _check_cases(tmp_path_factory, case, label):
    name, raw = case
    path = _write(tmp_path_factory, raw)
    if path is None:
        FUZZ_COUNTS[label]["not writable as TOML"] += 1
        return
    _validate(path, label)


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_cases())
def test_case_mutations_validate(tmp_path_factory, case):
    _check_cases(tmp_path_factory, case, "case mutations: validate")


# -- validate == run on cheap cases ------------------------------------------------------------
# small versions of cheap shipped cases; mutations of these are run (bounded by an alarm)
CHEAP = {
    "heat_1d.toml": {"mesh": {"cells": [16]}, "time": {"steps": 10, "outputs": 2}},
    "hj_quadratic_1d.toml": {"mesh": {"cells": [20]}, "time": {"t_end": 0.05, "outputs": 1}},
    "hj_kink_1d.toml": {"mesh": {"cells": [20]}},
    "fp_ou_1d.toml": {"mesh": {"cells": [20]}},
}


class _TooSlow(BaseException):
    pass


def _alarm(signum, frame):
    raise _TooSlow


def _cheap_raw(name):
    raw = copy.deepcopy(RAW[name])
    for table, values in CHEAP[name].items():
        raw.setdefault(table, {}).update(values)
    return raw


for _name in CHEAP:  # the small versions themselves must be valid
    RAW[f"small:{_name}"] = _cheap_raw(_name)


def _validate_vs_run(tmp_path_factory, case, label, seconds=3.0):
    from pdenet.runner import run

    name, raw = case
    path = _write(tmp_path_factory, raw)
    if path is None:
        FUZZ_COUNTS[label]["not writable as TOML"] += 1
        return
    expected = _validate(path, label)
    counts = FUZZ_COUNTS[label]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        run(path, write=False)
    except _TooSlow:
        counts["run: too slow, stopped (not compared)"] += 1
        return
    except SolverError as exc:  # a numerical failure of an accepted case: one line, not an input error
        assert expected is None, (expected, str(exc))
        _one_line(str(exc))
        counts["run: numerical failure (one line)"] += 1
        return
    except PdenetError as exc:
        assert expected is not None, f"validate accepted what run rejects: {exc}"
        assert str(exc) == expected, (expected, str(exc))
        counts["run: same rejection as validate"] += 1
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert expected is None, f"run accepted what validate rejects: {expected}"
    counts["run: accepted like validate"] += 1


CHEAP_NAMES = [f"small:{n}" for n in CHEAP]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_cases(names=CHEAP_NAMES, max_mutations=2, perturb=12))
def test_validate_equals_run_on_cheap_mutations(tmp_path_factory, case):
    _validate_vs_run(tmp_path_factory, case, "validate == run")


# -- the thousands-of-examples versions --------------------------------------------------------
@pytest.mark.slow
@settings(max_examples=5000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(EXPRESSIONS, _random_text(), PATHOLOGICAL))
def test_expression_fuzz_thousands(text):
    _check_expression(text, "expression (slow)")


@pytest.mark.slow
@settings(max_examples=4000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_cases(max_mutations=4))
def test_case_mutations_validate_thousands(tmp_path_factory, case):
    _check_cases(tmp_path_factory, case, "case mutations: validate (slow)")


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_cases(names=CHEAP_NAMES, max_mutations=3, perturb=12))
def test_validate_equals_run_thousands(tmp_path_factory, case):
    _validate_vs_run(tmp_path_factory, case, "validate == run (slow)")


def teardown_module(module):
    for label, counts in sorted(FUZZ_COUNTS.items()):
        print(f"\nfuzz {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
