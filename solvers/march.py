"""The one marching loop: advance a time-dependent system through its save times, calling
observers at each.

Every grid model (Fokker-Planck, Hamilton-Jacobi, HJB, ...) hands this loop a *system* with one
of two stepping interfaces and a list of *observers*; the loop owns the cadence, the progress
count and nothing else. Observers carry their own state (running diagnostics, particle
ensembles, a sink writer) and see one :class:`Frame` per saved time, in order; a frame collects
the fields and diagnostics the observers put into it, so the last observer (typically the one
that writes to the output) sees everything the others computed.

Stepping interfaces (a system provides one):

* :class:`FixedStepSystem` — ``advance(state, n0, n)``: ``n`` steps of the fixed ``dt`` from step
  ``n0``; saves are at step indices (:meth:`SaveSchedule.every`, :meth:`SaveSchedule.uniform`
  with ``steps``).
* :class:`AdaptiveSystem` — ``advance_to(state, t0, t1) -> (state, steps)``: any number of
  steps (CFL-driven, landing on ``t1``); saves are at times.

The state is opaque to the loop: whatever ``advance`` returns is passed to the observers and to
the next ``advance``. A distributed system may keep its state internally and return the
gathered array (or ``None`` on ranks that hold no copy).

**Restart** (:func:`resume_at`): inside ``with resume_at(k, state):`` the next march starts at
save ``k`` from ``state`` instead of save 0 (frames 0..k-1 are not emitted; frame k is, from the
given state), so a run continued from its file's last save repeats exactly the arithmetic of an
uninterrupted one.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import NumericalError


@dataclass
class Frame:
    """One saved time as the observers see it."""

    index: int
    """Position in the save schedule (0 for the initial state)."""
    t: float
    state: Any
    """What the system's ``advance`` returned (None on MPI ranks that hold no gathered copy)."""
    steps: int = 0
    """Time steps taken since the previous frame."""
    fields: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)


class Observer(Protocol):
    """Called once per frame, in schedule order; may fill ``frame.fields``/``frame.diagnostics``
    or raise :class:`~solvers.errors.NumericalError` to stop the march."""

    def __call__(self, frame: Frame) -> None: ...


@runtime_checkable
class FixedStepSystem(Protocol):
    dt: float

    def advance(self, state: Any, n0: int, n: int) -> Any:
        """``n`` steps of size ``dt`` starting at step ``n0`` (time ``n0 * dt``)."""
        ...


@runtime_checkable
class AdaptiveSystem(Protocol):
    def advance_to(self, state: Any, t0: float, t1: float) -> tuple[Any, int]:
        """Advance from ``t0`` to exactly ``t1``; returns the new state and the number of steps."""
        ...


#: the most saved times a schedule holds (its list of times alone would otherwise exhaust memory)
MAX_SAVES = 10_000_000


@dataclass(frozen=True)
class SaveSchedule:
    """The saved times, and for fixed-step systems the step index of each."""

    times: tuple[float, ...]
    steps: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.times) < 1:
            raise ValueError("a save schedule needs at least the initial time")
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise ValueError("save times must increase")
        if self.steps is not None and len(self.steps) != len(self.times):
            raise ValueError("one step index per save time")

    @classmethod
    def every(cls, steps: int, dt: float, every: int, t0: float = 0.0) -> "SaveSchedule":
        """Save the initial state, every ``every``-th step and always the last one."""
        if every < 1:
            raise ValueError(f"save every {every} steps: must be >= 1")
        count = -(-steps // every) + 1
        if count > MAX_SAVES:
            raise ValueError(f"{count:.3g} saves ({steps} steps, one save every {every}): more than "
                             f"{MAX_SAVES:.0e} saved times; save less often")
        idx = list(range(0, steps, every)) + [steps]
        return cls(tuple(t0 + n * dt for n in idx), tuple(idx))

    @classmethod
    def uniform(cls, t_end: float, outputs: int, t0: float = 0.0,
                steps: int | None = None) -> "SaveSchedule":
        """``outputs`` saves equally spaced after ``t0`` (and ``t0`` itself). With ``steps`` (a
        fixed-step system) the saves must fall on steps: ``steps`` divisible by ``outputs``."""
        if outputs < 1:
            raise ValueError(f"outputs = {outputs}: must be >= 1")
        if outputs + 1 > MAX_SAVES:
            raise ValueError(f"{outputs} outputs: more than {MAX_SAVES:.0e} saved times; save less often")
        if steps is None:
            return cls(tuple(t0 + (t_end - t0) * k / outputs for k in range(outputs + 1)))
        if steps % outputs:
            raise ValueError(f"{outputs} equally spaced outputs do not fall on the {steps} steps "
                             f"(give a divisor of {steps})")
        every = steps // outputs
        dt = (t_end - t0) / steps
        return cls.every(steps, dt, every, t0)

    @property
    def work(self) -> int:
        """Units of progress: steps for a fixed-step schedule, save intervals otherwise."""
        return self.steps[-1] - self.steps[0] if self.steps is not None else len(self.times) - 1


def require_finite(what: str = "state") -> Observer:
    """An observer that stops the march on a non-finite state (before anything is written)."""

    def check(frame: Frame) -> None:
        s = frame.state
        if s is not None and not np.all(np.isfinite(s)):
            raise NumericalError(f"non-finite {what} at t = {frame.t:g}")

    return check


_RESUME: ContextVar[tuple[int, Any] | None] = ContextVar("march_resume", default=None)


@contextmanager
def resume_at(index: int, state: Any) -> Any:
    """The next :func:`march` in this context starts at save ``index`` from ``state`` (once)."""
    token = _RESUME.set((index, state))
    try:
        yield
    finally:
        _RESUME.reset(token)


def march(system: FixedStepSystem | AdaptiveSystem, state: Any, schedule: SaveSchedule,
          observers: Iterable[Observer] = (), progress: Callable[[int], Any] | None = None) -> Any:
    """Advance ``state`` through ``schedule``; call every observer at every saved time
    (including the initial one). Returns the final state. Under :func:`resume_at` the march
    starts at that save from that state."""
    obs: Sequence[Observer] = tuple(observers)
    fixed = schedule.steps is not None
    start, pending = 0, _RESUME.get()
    if pending is not None:
        _RESUME.set(None)   # one march: the run's main one
        start, state = pending
        if not 0 <= start < len(schedule.times):
            raise ValueError(f"cannot resume at save {start} of {len(schedule.times)}")
        if progress is not None and start:
            progress(schedule.steps[start] - schedule.steps[0] if fixed and schedule.steps else start)

    def emit(i: int, state: Any, steps: int) -> None:
        frame = Frame(i, schedule.times[i], state, steps)
        for o in obs:
            o(frame)

    emit(start, state, 0)
    for i in range(start + 1, len(schedule.times)):
        if fixed:
            assert schedule.steps is not None
            n0, n1 = schedule.steps[i - 1], schedule.steps[i]
            state = system.advance(state, n0, n1 - n0)  # type: ignore[union-attr]
            taken, work = n1 - n0, n1 - n0
        else:
            state, taken = system.advance_to(state, schedule.times[i - 1], schedule.times[i])  # type: ignore[union-attr]
            work = 1
        if progress is not None:
            progress(work)
        emit(i, state, taken)
    return state
