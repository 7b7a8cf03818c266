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

**Training** (network model, ``[train] method = "adam"``): every run writes Adam's restart point
-- the iterate, the moments, the gradient and loss there, the mini-batch RNG state -- to
``/optimizer`` with the ``/train`` records (at the end, on Ctrl-C and on failure); ``--resume``
continues the iterations from it (:func:`solvers.optim.adam` ``state``) with the same arithmetic
as an uninterrupted run, keeps the records before it and adds the rest; a longer
``train.iterations`` continues a finished training.
"""
from __future__ import annotations

import os
import tomllib
from contextlib import contextmanager
from contextvars import ContextVar
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


_TRAINING: ContextVar[Any] = ContextVar("training_resume", default=None)


def training_resume() -> Any:
    """``(adam state, /train records so far)`` while ``pdenet run --resume`` continues a training
    (read once by the network model's training), else None."""
    value = _TRAINING.get()
    if value is not None:
        _TRAINING.set(None)
    return value


def join_history(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The /train records of a resumed training: those of the file, then the new ones."""
    n0 = len(next(iter(before.values()), []))
    n1 = len(next(iter(after.values()), []))
    out = {}
    for k in dict.fromkeys([*before, *after]):
        a = np.asarray(before.get(k, np.full(n0, np.nan)), dtype=float)
        b = np.asarray(after.get(k, np.full(n1, np.nan)), dtype=float)
        out[k] = np.concatenate([a, b])
    return out


def write_adam_state(sink: Any, state: dict[str, Any], whole: Any = None) -> None:
    """Adam's restart point into ``/optimizer`` (what :func:`read_adam_state` reads back).
    ``whole(name, array)``: the whole parameter from this rank's part (a row-distributed kernel,
    gathered on rank 0; None on the other ranks, which then write nothing of it). Collective
    when it is: every rank calls this with the same state names."""
    sink.write("optimizer", "iteration", np.int64(state["it"]),
               {"meaning": "Adam's restart point: the last completed iteration (pdenet run --resume)",
                "loss": float(state["J"])})
    for part in ("params", "m", "v", "grad"):
        for name, arr in state[part].items():
            arr = whole(name, arr) if whole is not None else arr
            if arr is not None:
                sink.write(f"optimizer/{part}", name, np.asarray(arr))
    obj = state.get("objective")
    if obj is not None:
        sink.write("optimizer", "batch_order", np.asarray(obj["order"], dtype=np.int64),
                   {"rng": obj["rng"], "pos": int(obj["pos"])})


def read_adam_state(result: Result) -> dict[str, Any] | None:
    """The Adam state :func:`write_adam_state` wrote, or None when the file has none."""
    g = result.groups.get("optimizer") or {}
    if "iteration" not in g:
        return None
    state: dict[str, Any] = {"it": int(g["iteration"]),
                             "J": float(result.group_attrs.get("optimizer/iteration", {})["loss"])}
    for part in ("params", "m", "v", "grad"):
        state[part] = {k.split("/", 1)[1]: np.asarray(v) for k, v in g.items() if k.startswith(part + "/")}
    if "batch_order" in g:
        a = result.group_attrs["optimizer/batch_order"]
        state["objective"] = {"order": np.asarray(g["batch_order"]), "rng": a["rng"], "pos": int(a["pos"])}
    return state


class Resume:
    """What :func:`pdenet.runner.run` needs to continue a run: the case, the saves to copy, the
    save index and state to start the march from (or, for a training, Adam's restart point and
    the /train records so far)."""

    def __init__(self, path: str, result: Result, case: Any, index: int, state: Any, training: Any = None) -> None:
        self.path, self.result, self.case, self.index, self.state = path, result, case, index, state
        self.training = training

    def replay(self, sink: Any) -> None:
        """Copy the saves before the resumed one into ``sink`` (and say where they came from)."""
        r = self.result
        if self.training is not None:
            sink.set_attrs({"resumed_from": os.path.abspath(self.path),
                            "resumed_at_iteration": int(self.training[0]["it"])})
            return
        sink.set_attrs({"resumed_from": os.path.abspath(self.path), "resumed_at_save": self.index})
        for i in range(self.index):
            sink.save(float(r.time[i]), {k: v[i] for k, v in r.fields.items()},
                      {k: v[i] for k, v in r.diagnostics.items()})

    @contextmanager
    def active(self) -> Iterator[None]:
        if self.training is not None:
            token = _TRAINING.set(self.training)
            try:
                yield
            finally:
                _TRAINING.reset(token)
            return
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
    if case.model == "network" and case.get("train.method") not in (None, "none"):
        return _prepare_training(path, result, case)
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


def _prepare_training(path: str, result: Result, case: Any) -> Resume:
    method = case["train.method"]
    if case.get("solver.distribute") == "rows":
        raise CaseError("a training with a row-distributed kernel cannot resume from its file yet",
                        key="--resume", source=path)
    if method != "adam":
        raise CaseError(f"a {method} training cannot resume from its file yet (adam can)", key="--resume",
                        source=path)
    state = read_adam_state(result)
    if state is None:
        raise CaseError("the file holds no optimiser state (/optimizer): it was written before restarts "
                        "existed, or the training stopped before its first iteration", key="--resume",
                        source=path)
    if state["it"] >= case["train.iterations"]:
        raise CaseError(f"the training is complete ({state['it']} iterations); to continue it, give more "
                        "with --set train.iterations=N", key="--resume", source=path)
    history = {k: np.asarray(v)[: state["it"] + 1] for k, v in result.train.items()}
    return Resume(path, result, case, 0, None, training=(state, history))


def resume(path: str | os.PathLike[str], output: str | None = None, overrides: Sequence[str] = (),
           quiet: bool | None = None, comm: Any = None, force: bool = False) -> Result:
    """Continue the run of ``path`` (a complete, interrupted or failed pdenet file) into
    ``output`` (default: the run's own output, ``OUT.h5`` for ``OUT.interrupted.h5``); returns
    the :class:`~pdenet.io.Result` of the whole run."""
    from .runner import run

    start = prepare(path, overrides, comm)
    return run(start.case, output=output or target_of(os.fspath(path)), quiet=quiet, comm=comm, force=force,
               resume=start)
