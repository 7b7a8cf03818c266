"""Ctrl-C that Python itself would swallow: a KeyboardInterrupt raised inside a callback that
cannot raise (here an object's ``__del__``; in practice a weakref callback while numba compiles)
is printed as "Exception ignored ..." and lost. The runner remembers it and stops the run at the
next save, with the partial file kept and no traceback printed."""
import os

import pytest

import pdenet
from conftest import case_path
from pdenet.io.sink import Sink
from pdenet.runner import Interrupted, _Interrupts


class _SwallowedCtrlC:
    def __del__(self):
        raise KeyboardInterrupt


def test_a_swallowed_interrupt_is_remembered_silently(capsys):
    interrupts = _Interrupts()
    with interrupts.installed():
        obj = _SwallowedCtrlC()
        del obj  # Python calls the unraisable hook instead of raising here
        assert interrupts.pending
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        assert not interrupts.pending
    assert "Exception ignored" not in capsys.readouterr().err


class _CtrlCInACallback(Sink):
    """A sink whose second save swallows a Ctrl-C the way a weakref callback does."""

    def __init__(self):
        self.saves = 0

    def save(self, t, fields, diagnostics):
        self.saves += 1
        if self.saves == 2:
            obj = _SwallowedCtrlC()
            del obj


def test_a_run_stops_at_the_next_save_and_keeps_the_file(tmp_path, capsys):
    out = tmp_path / "o.h5"
    with pytest.raises(Interrupted, match="interrupted; partial results kept"):
        pdenet.run(case_path("fp_ou_1d.toml"), output=str(out), extra_sinks=[_CtrlCInACallback()],
                   overrides=["time.steps=40", "time.save_every=5"])
    # kept beside the target, which an interrupted run never creates or replaces (issue 12)
    assert sorted(os.listdir(tmp_path)) == ["o.interrupted.h5"]
    r = pdenet.open(tmp_path / "o.interrupted.h5")
    assert r.status == "interrupted" and len(r.time) == 2
    assert "Exception ignored" not in capsys.readouterr().err
