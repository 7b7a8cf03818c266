"""Forward sweep with a tape, backward (adjoint) sweep, and checkpointing.

``keep`` chooses what the forward sweep remembers for the adjoint:

* ``"all"``  every step's linearisation records (fastest backward pass);
* ``c`` (int > 0)  only every c-th state; the backward pass recomputes one
  segment of c steps at a time (memory O(L/c + c) states, one extra forward);
* ``"none"``  nothing (forward only).
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Union, cast

from .errors import NumericalError
from .protocol import Array, ControlledSystem, Gradient, Progress, Stepper
from .schedule import Schedule
from .steppers import finite

#: what the forward sweep keeps: ``"all"``, ``"none"`` or a checkpoint interval (int > 0)
Keep = Union[Literal["all", "none"], int]
#: ``on_state(n, t_n, y_n, lin_n)`` (``lin_n`` None at the last step)
OnState = Callable[[int, float, Array, Any], Any]
#: ``on_costate(n, lam_n)``
OnCostate = Callable[[int, Array], Any]


class Tape:
    """What a forward sweep remembers for :func:`solve_adjoint`."""

    def __init__(self, stepper: Stepper, schedule: Schedule, keep: Keep) -> None:
        self.stepper, self.schedule, self.keep = stepper, schedule, keep
        self.records: dict[int, Any] = {}         # step n -> stepper tape
        self.checkpoints: dict[int, Array] = {}   # step n -> state y_n


def _noop(*args: Any) -> None:
    pass


def solve_forward(system: ControlledSystem, y0: Array, schedule: Schedule, stepper: Stepper,
                  keep: Keep = "all", on_state: OnState | None = None,
                  progress: Progress | None = None) -> tuple[Array, Tape]:
    """Integrate from y0 over ``schedule``.

    ``on_state(n, t_n, y_n, lin_n)`` is called for n = 0..L (``lin_n`` is the
    linearisation at y_n, or None at n = L). Returns (y_L, tape).
    """
    on_state = on_state or _noop
    progress = progress or _noop
    if not (keep in ("all", "none") or (isinstance(keep, int) and keep > 0)):
        raise ValueError(f"keep must be 'all', 'none' or a positive int, got {keep!r}")
    tape = Tape(stepper, schedule, keep)
    y, dt = y0, schedule.dt
    for n in range(schedule.steps):
        k = schedule.interval(n)
        if isinstance(keep, int) and n % keep == 0:
            tape.checkpoints[n] = y
        y_next, record, lin = stepper.step(system, y, k, dt, keep == "all")
        if keep == "all":
            tape.records[n] = record
        on_state(n, schedule.time(n), y, lin)
        if not finite(y_next):
            raise NumericalError(f"non-finite state at step {n + 1} (t = {schedule.time(n + 1):g}); "
                                 f"the solution blew up: reduce dt or check the controls")
        y = y_next
        progress(1)
    on_state(schedule.steps, schedule.t_end, y, None)
    return y, tape


def _recompute_segment(system: ControlledSystem, tape: Tape, start: int) -> None:
    sched, stepper, c = tape.schedule, tape.stepper, cast(int, tape.keep)
    y = tape.checkpoints[start]
    for n in range(start, min(start + c, sched.steps)):
        y, record, _ = stepper.step(system, y, sched.interval(n), sched.dt, True)
        tape.records[n] = record


def solve_adjoint(system: ControlledSystem, tape: Tape, lam: Array, grad: Gradient | None,
                  on_costate: OnCostate | None = None, progress: Progress | None = None) -> Array:
    """Backward sweep from lam = dJ/dy_L; adds parameter gradients into ``grad``.

    ``on_costate(n, lam_n)`` is called for n = L..0 with lam_n = dJ/dy_n.
    Returns dJ/dy_0.
    """
    if tape.keep == "none":
        raise ValueError("the forward sweep kept no tape (keep='none'); cannot run the adjoint")
    on_costate = on_costate or _noop
    progress = progress or _noop
    sched, stepper = tape.schedule, tape.stepper
    on_costate(sched.steps, lam)
    for n in reversed(range(sched.steps)):
        if n not in tape.records:
            _recompute_segment(system, tape, (n // cast(int, tape.keep)) * cast(int, tape.keep))
        record = tape.records.pop(n)
        lam = stepper.adjoint_step(system, record, sched.interval(n), sched.dt, lam, grad)
        on_costate(n, lam)
        progress(1)
    return lam
