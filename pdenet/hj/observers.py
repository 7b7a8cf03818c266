"""Observers of the Hamilton-Jacobi marches (:func:`solvers.march.march`): what the
``hamilton-jacobi`` model computes at each saved time, each with its own state. The frame's
state is the solution u on the mesh; the last observer of a march is normally
:class:`pdenet.io.sink.SinkWriter`."""
from __future__ import annotations

from typing import Any, Callable, Collection

import numpy as np

from solvers.march import Frame

from ..landscape import second_difference_max


class SolutionFields:
    """The fields ``u`` (the state) and ``grad_u`` (``gradient(u)``, the scheme's centred
    one-sided differences), each only if wanted."""

    def __init__(self, gradient: Callable[[np.ndarray], np.ndarray], want: Collection[str]):
        self.gradient, self.want = gradient, want

    def __call__(self, frame: Frame) -> None:
        u = frame.state
        if "u" in self.want:
            frame.fields["u"] = u
        if "grad_u" in self.want:
            frame.fields["grad_u"] = self.gradient(u)


class StateField:
    """The state as the field ``name`` (if wanted): a comparison solve's u."""

    def __init__(self, name: str, want: Collection[str]):
        self.name, self.want = name, want

    def __call__(self, frame: Frame) -> None:
        if self.name in self.want:
            frame.fields[self.name] = frame.state


class Semiconcavity:
    """``u_min``, ``u_max``, the largest second differences ``d2u_max`` (spacing h) and
    ``d2u_max_4h`` (4h), and the semiconcavity bound of the solution at t: C/(1 + C t) for
    f with second differences <= C (C, the constant, for the heat equation; NaN for C <= 0)."""

    def __init__(self, mesh: Any, C: float, heat: bool = False):
        self.mesh, self.C, self.heat = mesh, C, heat

    def __call__(self, frame: Frame) -> None:
        u, C = frame.state, self.C
        frame.diagnostics.update({
            "u_min": float(u.min()), "u_max": float(u.max()),
            "d2u_max": second_difference_max(u, self.mesh),
            "d2u_max_4h": second_difference_max(u, self.mesh, 4),
            "semiconcavity_bound": (C if self.heat else 1.0 / (1.0 / C + frame.t)) if C > 0 else float("nan")})


class ExactErrors:
    """``error_<field>_l2``/``error_<field>_max`` of the state against ``exact(t)``, by
    ``errors(field, t, value, exact=...)`` (:meth:`pdenet.models.base.Model.exact_errors`);
    ``last`` keeps the exact solution of the latest frame."""

    def __init__(self, field: str, exact: Callable[[float], np.ndarray],
                 errors: Callable[..., dict[str, float]]):
        self.field, self.exact, self.errors = field, exact, errors
        self.last: np.ndarray | None = None

    def __call__(self, frame: Frame) -> None:
        ex = self.last = self.exact(frame.t)
        frame.diagnostics.update(self.errors(self.field, frame.t, frame.state, exact=ex))


class LastDiagnostics:
    """Keeps the diagnostics of the latest frame (``values``): the ``final_*`` summary."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def __call__(self, frame: Frame) -> None:
        self.values.update(frame.diagnostics)
