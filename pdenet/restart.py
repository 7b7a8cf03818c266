"""Restart: continue a time integration from its output file (``pdenet run --resume OUT.h5``).

A run's file holds its case (the ``case`` attribute, overrides applied) and, at each save, the
fields. For a model whose saved fields are its whole marching state
(:meth:`pdenet.models.base.Model.resume_state`: heat; Fokker-Planck with a built-in one-step
stepper and no particles or SGD chains), the run is continued from the file's last save: the
saves before it are copied into the new file, the march starts at that save from the saved
state (:func:`solvers.march.resume_at`) and repeats exactly the arithmetic of the uninterrupted
run, so the continued file equals the uninterrupted one (``tests/test_restart.py``).

``--set`` overrides apply to the resumed case; extending ``time.t_end`` with ``time.steps`` (same
``dt``, the saved times a prefix of the new schedule) continues a finished run further.
"""
from __future__ import annotations

import os
import tomllib
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from .case import apply_overrides, build_case
from .errors import CaseError
from .io.result import Result, open_result


def target_of(path: str) -> str:
    """The output a file belongs to: ``OUT.interrupted.h5`` / ``OUT.failed.h5`` -> ``OUT.h5``."""
    root, ext = os.path.splitext(path)
    for status in (".interrupted", ".failed"):
        if root.endswith(status):
            return root[: -len(status)] + ext
    return path


class Resume:
    """What :func:`pdenet.runner.run` needs to continue a run: the case, the saves to copy, the
    save index and state to start the march from."""

    def __init__(self, path: str, result: Result, case: Any, index: int, state: Any) -> None:
        self.path, self.result, self.case, self.index, self.state = path, result, case, index, state

    def replay(self, sink: Any) -> None:
        """Copy the saves before the resumed one into ``sink`` (and say where they came from)."""
        r = self.result
        sink.set_attrs({"resumed_from": os.path.abspath(self.path), "resumed_at_save": self.index})
        for i in range(self.index):
            sink.save(float(r.time[i]), {k: v[i] for k, v in r.fields.items()},
                      {k: v[i] for k, v in r.diagnostics.items()})

    @contextmanager
    def active(self) -> Iterator[None]:
        from solvers.march import resume_at

        with resume_at(self.index, self.state):
            yield


def prepare(path: str | os.PathLike[str], overrides: Sequence[str] = (), comm: Any = None) -> Resume:
    """Read ``path`` and check that its run can be continued; raises a one-line
    :class:`~pdenet.errors.CaseError` when it cannot."""
    path = os.fspath(path)
    result = open_result(path)
    text = result.attrs.get("case")
    if not isinstance(text, str) or not text:
        raise CaseError("the file holds no case text to resume from", key="--resume", source=path)
    source = result.attrs.get("case_source") or path
    base_dir = os.path.dirname(os.path.abspath(source)) if os.path.exists(str(source)) else os.getcwd()
    try:
        raw = apply_overrides(tomllib.loads(text), overrides)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"the file's case text is not TOML ({exc})", key="--resume", source=path) from None
    except CaseError as exc:
        raise exc.at(source=path) from None
    case = build_case(raw, source, base_dir)
    model = case.model_cls(case, comm)
    from solvers.march import SaveSchedule

    schedule = getattr(model, "schedule", None)
    n = len(result.time)
    if not isinstance(schedule, SaveSchedule):   # not marched through solvers.march
        model.resume_state(result)               # the model's own refusal (Model's default)
        raise CaseError(f"model {case.model} cannot resume a run from its file", key="--resume", source=path)
    if n == 0:
        raise CaseError("the file has no saved state (the run stopped before its first save); run it again",
                        key="--resume", source=path)
    times = np.asarray(schedule.times)
    if n > len(times) or not np.allclose(result.time, times[:n], rtol=1e-12, atol=1e-300):
        raise CaseError(f"the file's {n} saved times are not the first saves of this case's schedule "
                        f"({len(times)} saves to t = {times[-1]:g}); --set changed the time grid?",
                        key="--resume", source=path)
    if n == len(times):
        raise CaseError(f"the run is complete (t = {times[-1]:g}); to continue it, extend time.t_end and "
                        "time.steps with --set (same dt)", key="--resume", source=path)
    state = model.resume_state(result)
    return Resume(path, result, case, n - 1, state)


def resume(path: str | os.PathLike[str], output: str | None = None, overrides: Sequence[str] = (),
           quiet: bool | None = None, comm: Any = None, force: bool = False) -> Result:
    """Continue the run of ``path`` (a complete, interrupted or failed pdenet file) into
    ``output`` (default: the run's own output, ``OUT.h5`` for ``OUT.interrupted.h5``); returns
    the :class:`~pdenet.io.Result` of the whole run."""
    from .runner import run

    start = prepare(path, overrides, comm)
    return run(start.case, output=output or target_of(os.fspath(path)), quiet=quiet, comm=comm, force=force,
               resume=start)
