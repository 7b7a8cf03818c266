import os
import signal
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "cases")

# The signal tests send Ctrl-C to runs in this process and to child processes. A shell that
# starts pytest in the background (`pytest ... &`, nohup) leaves SIGINT ignored, which Python
# and pdenet respect (and children inherit): those tests would then see no interrupt at all.
# Ctrl-C is given its normal meaning for the test session.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def case_path(name):
    return os.path.join(CASES, name)


def run_cli(*args, cwd=None, env=None):
    """Run ``python -m pdenet.cli ARGS`` in a subprocess; returns CompletedProcess."""
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pdenet.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=600)


def hide_module(monkeypatch, name):
    """Make ``importlib.util.find_spec(name)`` report the module as not installed (for the
    one-line 'not installed' errors of optional dependencies)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == name else real(n, *a))
