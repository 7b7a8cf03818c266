"""Case-file model ``heat``: u_t = kappa Lap u + s(x, t) on a box in 1-3 dimensions.

The worked example of docs/adding-a-model.md: a schema, a constructor that validates everything
(the expressions evaluated on the mesh, the boundary kinds, the stable step of explicit Euler,
the memory), and a ``run`` that builds a fixed-step system, names its observers and marches.
The numerics (the sparse Laplacian, the steppers) are in :mod:`pdenet.heat.numerics`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from solvers.march import Frame, march, require_finite

from ..case import REQUIRED, Key, resolve_time
from ..errors import CaseError, ExpressionError
from ..expr import coordinate_env, coordinate_names
from ..io.sink import SinkWriter
from ..models.base import Model
from .numerics import STEPPERS, HeatStepper, HeatSystem, laplacian, stable_dt


class HeatModel(Model):
    """Heat equation u_t = kappa Lap u + s(x, t) (the worked example of docs/adding-a-model.md)."""

    name = "heat"
    unused_keys = ("time.checkpoint_every", "solver.petsc_options", "solver.newton_tol",
                   "solver.newton_maxiter", "solver.krylov_tol")
    fields = ("u",)
    schema = {
        "model": {
            "kappa": Key("float", REQUIRED, "Diffusion coefficient kappa.", positive=True),
            "initial": Key("expr", REQUIRED, "u(x, 0): an expression of the coordinates (x in 1-D, "
                           "x1, x2, x3 otherwise)."),
            "source": Key("expr", 0.0, "s(x, t): an expression of the coordinates, t and kappa."),
        },
        "time": {
            "stepper": Key("str", "euler", "heat: euler (explicit, stable for dt <= 1/(2 kappa "
                           "sum_d 1/h_d^2), checked), beuler (implicit Euler) or cn (Crank-Nicolson); "
                           "the implicit ones by one sparse LU.", choices=list(STEPPERS)),
        },
        "exact": {
            "*": Key("expr", REQUIRED, "heat: the exact solution of a field (u) as an expression of the "
                     "coordinates, t and kappa; written as error_u_l2 / error_u_max at every save."),
        },
    }

    @classmethod
    def validate(cls, data: dict) -> dict:
        if data["solver"]["backend"] != "builtin":
            raise CaseError("the heat model runs on the builtin backend", key="solver.backend")
        data["time"] = resolve_time(data["time"])
        return data

    # -- the validation phase: everything run would reject is rejected here ----------------------
    def __init__(self, case, comm=None) -> None:
        super().__init__(case, comm)
        mesh = self.mesh
        self.kappa = float(case["model.kappa"])
        self.t_end, self.steps, self.dt = case["time.t_end"], case["time.steps"], case["time.dt"]
        self.stepper_name = case["time.stepper"]
        small = min(mesh.spacing)
        if not small * small > 0.0 or 1.0 / (small * small) == float("inf"):
            raise case.error(f"the mesh spacing {small:.3g} is too small for the Laplacian (1/h^2 overflows)",
                             key="mesh.cells")
        self.dt_stable = stable_dt(mesh, self.kappa)
        if self.stepper_name == "euler" and self.dt > self.dt_stable * (1 + 1e-12):
            need = int(np.ceil(self.t_end / self.dt_stable))
            raise case.error(f"explicit Euler is stable for dt <= {self.dt_stable:.6g} on this mesh "
                             f"(kappa = {self.kappa:g}), got {self.dt:.6g}: give steps >= {need} or "
                             f"stepper = \"cn\"", key="time.dt")
        names = coordinate_names("x", mesh.ndim) + ("t", "kappa")
        self._env = coordinate_env("x", mesh.centres())
        self._exprs = {key: case.expression(key, names if key != "model.initial" else names[:-2])
                       for key in ("model.initial", "model.source",
                                   *(f"exact.{f}" for f in case.get("exact") or {}))}
        for field in case.get("exact") or {}:
            if field not in self.fields:
                raise case.error(f"the heat model has no field {field!r}; it solves for u",
                                 key=f"exact.{field}")
        self.u0 = self._evaluate("model.initial")
        for key in self._exprs:  # every expression evaluated on the mesh, at both ends of time
            for t in (0.0, self.t_end):
                self._evaluate(key, t)
        self.saved = self.saved_fields()
        self.schedule = self.save_schedule(self.t_end, self.steps)
        try:
            self.A, self.b = laplacian(mesh, self.kappa)
        except ValueError as exc:
            raise case.error(str(exc), key="mesh.boundary") from None
        with np.errstate(all="ignore"):
            finite = bool(np.all(np.isfinite(self.A.data * (self.kappa * self.dt))) and np.all(np.isfinite(self.b)))
        if not finite:  # a spacing so small that 1/h^2 overflows: the step matrix is not finite
            raise case.error(f"the mesh spacing {min(mesh.spacing):.3g} is too small: the Laplacian "
                             f"(1/h^2) times kappa dt overflows", key="mesh.cells")

    def _evaluate(self, key: str, t: float = 0.0) -> np.ndarray:
        """The expression at ``key`` on the mesh centres at time ``t`` (errors name the key)."""
        try:
            return self._exprs[key](shape=self.mesh.shape, t=np.float64(t), kappa=np.float64(self.kappa),
                                    **self._env)
        except ExpressionError as exc:
            # the message may already say where ("<file>: <key>: why"): keep the why
            raise self.case.error(str(exc).split(f"{key}: ", 1)[-1], key=key) from None

    def exact_parameters(self) -> dict[str, float]:
        """[exact] expressions may use kappa besides the coordinates and t."""
        return {"kappa": float(self.case["model.kappa"])}

    def memory_estimate(self) -> int:
        """About 100 bytes per cell (state, matrix, LU factor) besides the saved fields."""
        per_cell = 48 + 24 * (2 * self.mesh.ndim + 1) * (1 if self.case["time.stepper"] == "euler" else 4)
        return super().memory_estimate() + self.mesh.size * per_cell

    def work_units(self) -> int:
        return self.schedule.work

    # -- the run: build the system, name the observers, march -------------------------------------
    def source(self) -> Callable[[float], np.ndarray] | None:
        """s(t) on the flattened mesh for the stepper (None for s = 0)."""
        if self.case["model.source"] in (0, 0.0, "0"):
            return None
        if "t" not in self._exprs["model.source"].names:
            s = self._evaluate("model.source").ravel()
            return lambda t: s
        return lambda t: self._evaluate("model.source", t).ravel()

    def observe(self, frame: Frame) -> None:
        """Fields and diagnostics of one saved time."""
        u = frame.state
        if "u" in self.saved:
            frame.fields["u"] = u
        frame.diagnostics.update(u_min=float(u.min()), u_max=float(u.max()),
                                 mass=float(self.mesh.integrate(u)))
        if "u" in (self.case.get("exact") or {}):
            frame.diagnostics.update(self.exact_errors("u", frame.t, u))

    def resume_state(self, result):
        """``pdenet run --resume``: u at the last save is the whole state of both steppers."""
        if "u" not in result.fields:
            raise self.case.error("the file has no field u to resume from (output.fields left it out)",
                                  key="--resume")
        return result.fields["u"][-1]

    def run(self, sink, progress=lambda k: None) -> dict[str, Any]:
        stepper = HeatStepper(self.stepper_name, self.A, self.b, self.kappa, self.dt, self.source())
        system = HeatSystem(stepper, self.mesh.shape)
        sink.set_attrs({"kappa": self.kappa, "stepper": self.stepper_name, "dt": self.dt,
                        "steps": self.steps, "dt_stable_euler": self.dt_stable})
        march(system, self.u0.copy(), self.schedule,
              [require_finite("u"), self.observe, SinkWriter(sink)], progress)
        return {"steps": self.steps}

