"""The model protocol: what a case-file model provides to the runner.

A model class

* declares ``name`` (the ``[case] model`` value) and ``schema``: extra case
  tables/keys, merged with the common ones of :mod:`pdenet.case`;
* may refine validation in ``validate(data)`` (cross-key checks), raising
  :class:`~pdenet.errors.CaseError` with the key;
* is built from a validated :class:`~pdenet.case.Case`;
* in ``run(sink, progress)`` solves and hands every result to ``sink`` (it never
  opens files itself): ``sink.start(...)``, ``sink.save(...)`` per saved time,
  ``sink.write(group, name, array)`` for per-run arrays. ``progress(k)``
  advances a bar by k units of ``work_units()``.

Register a model class with :func:`pdenet.models.register`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, Sequence

import numpy as np
import numpy.typing as npt

from ..errors import CaseError, ExpressionError
from ..mesh import Mesh, MeshError
from ..resources import check_threads

if TYPE_CHECKING:
    from solvers.march import SaveSchedule

    from ..io.sink import Sink



class CaseLike(Protocol):
    """What :class:`Model` reads of its case. :class:`pdenet.case.Case` is one; the protocol keeps
    ``pdenet.models`` from importing ``pdenet.case`` (which imports the registry here)."""

    source: str | None

    def __getitem__(self, dotted: str) -> Any: ...

    def get(self, dotted: str, default: Any = None) -> Any: ...

    def error(self, reason: str, key: str | None = None) -> CaseError: ...

    def expression(self, key: str, variables: Sequence[str], text: str | None = None) -> Any: ...


#: ``progress(k)``: k more units of :meth:`Model.work_units` done
Progress = Callable[[int], Any]


class Model:
    name: ClassVar[str | None] = None
    schema: ClassVar[Mapping[str, Any]] = {}
    #: fields this model can save (names under /fields)
    fields: ClassVar[Sequence[str]] = ()
    #: the prefix of the coordinate names of expressions (``x1``, ``x2``, ...)
    coordinate_prefix: ClassVar[str] = "x"
    #: keys of the common tables (pdenet.case.COMMON_SCHEMA) this model never reads: a dotted key
    #: ("time.stepper") or a whole table ("solver"). A case that sets one explicitly is rejected
    #: ("is not used by model ...") when it is loaded. Default: every common key is used.
    unused_keys: ClassVar[tuple[str, ...]] = ()
    #: values of an [exact] entry that name a solution the model computes itself (not expressions)
    named_exact: ClassVar[tuple[str, ...]] = ()

    def __init__(self, case: CaseLike, comm: Any = None) -> None:
        """The validation phase begins here: a subclass calls this first, then builds (and so
        checks) everything its ``run`` uses, so that a case ``run`` would reject is rejected
        before any output file exists. This part checks the memory the case needs against the
        machine's (before any mesh-sized array exists) and evaluates every ``[exact]``
        expression on the mesh."""
        self.case = case
        # the communicator of a run spread over MPI ranks; None for one process
        self.comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.mesh = self.build_mesh(case)
        # numba threads of the run's parallel kernels ([solver] threads where the model has it)
        self.threads = check_threads(case, ranks=1 if self.comm is None else self.comm.Get_size())
        self.check_memory()
        self.check_exact()

    @classmethod
    def validate(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data

    @staticmethod
    def build_mesh(case: CaseLike) -> Mesh:
        m = case["mesh"]
        try:
            return Mesh(m["lower"], m["upper"], m["cells"], m["boundary"])
        except MeshError as exc:  # the numerics name the argument; the case names the key
            raise case.error(str(exc), key=f"mesh.{exc.argument}" if exc.argument else "mesh") from None

    # -- resources --------------------------------------------------------------------------------
    def memory_estimate(self) -> int:
        """Bytes the run needs at least. Called by the base constructor, before the model builds
        anything: an override may read ``self.case`` and ``self.mesh`` only. Default: the saved
        fields at every save held in memory (the in-memory result keeps them all) plus four work
        arrays, in float64 on the mesh; the number of saves counts ``time.outputs`` or
        ``time.steps / time.save_every`` when given, else the first and the last."""
        t = self.case.get("time") or {}
        outputs, every, steps = t.get("outputs"), t.get("save_every"), t.get("steps")
        if outputs:
            saves = outputs + 1
        elif steps and every:
            saves = steps // every + 1
        else:
            saves = 2
        return 8 * self.mesh.size * (max(len(self.fields), 1) * saves + 4)

    def memory_counts(self) -> dict[str, int]:
        """Bytes the run needs besides :meth:`memory_estimate`, by the case key whose count they
        grow with (``{"model.particles": ...}``: particles, samples, runs, stored steps). Called
        by the base constructor like :meth:`memory_estimate`. Default: none."""
        return {}

    def check_memory(self) -> None:
        """CaseError when :meth:`memory_estimate` plus :meth:`memory_counts` exceeds the memory
        available on this machine (the least over the ranks of a parallel run, so every rank decides
        alike), naming the key with the largest share (mesh.cells for the mesh-sized part)."""
        from ..resources import available_memory, format_bytes

        have = available_memory()
        if self.comm is not None:
            known = [h for h in self.comm.allgather(have) if h is not None]
            have = min(known) if known else None
        if have is None:
            return
        parts = {"mesh.cells": self.memory_estimate()}
        for key, size in self.memory_counts().items():
            parts[key] = parts.get(key, 0) + size
        need = sum(parts.values())
        if self.comm is not None:
            need = -(-need // self.comm.Get_size())
        if need > have:
            key = max(parts, key=lambda k: parts[k])
            if key == "mesh.cells":
                what = f"{self.mesh.size:.3g} cells{' per rank' if self.comm is not None else ''}"
            else:
                what = f"{key} = {self.case.get(key)!r}"
            need_text = format_bytes(min(need, 10**30))  # a count beyond any machine: no float overflow
            raise self.case.error(f"the case needs {need_text} of memory ({what}), this machine has "
                                  f"{format_bytes(have)} available", key=key)

    def exact_parameters(self) -> dict[str, float]:
        """Named model parameters an ``[exact]`` expression may use besides the coordinates and t
        (e.g. ``kappa`` of the heat model). Called by the base constructor: may read
        ``self.case`` only. Default: none."""
        return {}

    def check_exact(self) -> None:
        """Every ``[exact]`` name must be one of the model's ``fields`` (a misspelt name would
        otherwise be ignored); evaluate every ``[exact]`` expression on the mesh at t = 0 and at
        ``time.t_end`` (when known): an expression that is malformed or not finite there is
        rejected now."""
        exact = self.case.get("exact") or {}
        for field in exact:
            if field not in self.fields:
                import difflib

                near = difflib.get_close_matches(field, list(self.fields), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise self.case.error(f"no field {field!r} in model {self.name!r}{hint}; its fields: "
                                      f"{', '.join(self.fields)}", key=f"exact.{field}")
        t_end = self.case.get("time.t_end")
        for t in (0.0,) if t_end is None else (0.0, t_end):
            self._exact_expressions(t, sparse=True)

    def _exact_expressions(self, t: float, sparse: bool = False) -> dict[str, Any]:
        from ..expr import coordinate_env, coordinate_names

        exact = self.case.get("exact") or {}
        params = self.exact_parameters()
        names = coordinate_names(self.coordinate_prefix, self.mesh.ndim) + ("t",) + tuple(params)
        env = coordinate_env(self.coordinate_prefix, self.mesh.centres(sparse=sparse))
        values = {k: np.float64(v) for k, v in params.items()}
        out: dict[str, Any] = {}
        for field, value in exact.items():
            if isinstance(value, str) and value in self.named_exact:
                continue
            key = f"exact.{field}"
            expr = self.case.expression(key, names)
            try:
                out[field] = expr(shape=self.mesh.shape, t=np.float64(t), **env, **values)
            except ExpressionError as exc:  # "<file>: <key>: why" -> the case's one-line error
                raise self.case.error(str(exc).split(f"{key}: ", 1)[-1], key=key) from None
        return out

    def work_units(self) -> int | None:
        """Total units of work reported through ``progress`` (for the bar)."""
        return None

    def saved_fields(self) -> tuple[str, ...]:
        wanted = self.case.get("output.fields")
        if wanted is None:
            return tuple(self.fields)
        unknown = [f for f in wanted if f not in self.fields]
        if unknown:
            raise self.case.error(f"unknown field {unknown[0]!r}; this model offers "
                                  f"{', '.join(self.fields)}", key="output.fields")
        return tuple(wanted)

    def resume_state(self, result: Any) -> Any:
        """The marching state at the last save of ``result`` (an earlier run of this case), from
        which ``pdenet run --resume`` continues (:mod:`pdenet.restart`). A model whose saved
        fields are its whole state, stepped by a one-step method, overrides this; the default
        refuses with a one-line error."""
        raise self.case.error(f"model {self.name} cannot resume a run from its file (its state is not "
                              "all in the saved fields); run it again", key="--resume")

    def run(self, sink: Sink, progress: Progress = lambda k: None) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def exact_fields(self, t: float) -> dict[str, Any]:
        """Evaluate the case's ``[exact]`` expressions at time ``t`` on the mesh (dict); a model
        with named exact solutions (``named_exact``) overrides this to add them."""
        return self._exact_expressions(t)

    # -- the save schedule: one pair of [time] keys with one meaning for every model -------------
    def save_schedule(self, t_end: float, steps: int | None = None, default_outputs: int = 4) -> SaveSchedule:
        """The :class:`solvers.march.SaveSchedule` of this case: ``time.outputs`` equally spaced
        saves, or (fixed-step models, ``steps`` given) ``time.save_every`` steps; defaults: every
        step with a fixed step, ``default_outputs`` saves otherwise. Errors name the key."""
        from solvers.march import SaveSchedule

        outputs, every = self.case.get("time.outputs"), self.case.get("time.save_every")
        if outputs is not None and every is not None:
            raise self.case.error("give outputs or save_every, not both", key="time.outputs")
        try:
            if outputs is not None:
                return SaveSchedule.uniform(t_end, outputs, steps=steps)
            if steps is None:
                if every is not None:
                    raise self.case.error("save_every counts fixed time steps; this case is stepped by "
                                          "its CFL limit: give time.outputs (or time.dt)",
                                          key="time.save_every")
                return SaveSchedule.uniform(t_end, default_outputs)
            return SaveSchedule.every(steps, t_end / steps, every or 1)
        except ValueError as exc:
            key = "time.outputs" if outputs is not None else "time.save_every" if every is not None else "time.steps"
            raise self.case.error(str(exc), key=key) from None

    # -- errors against [exact]: one naming scheme for every model ----------------------------------
    def exact_errors(self, field: str, t: float, value: npt.ArrayLike,
                     exact: npt.ArrayLike | None = None) -> dict[str, float]:
        """Diagnostics ``error_<field>_l2`` (sqrt of the mesh integral of the squared error; with a
        leading sample axis, the root mean over samples) and ``error_<field>_max`` of ``value``
        against the case's exact solution at time ``t`` (``exact``: that solution, if already
        evaluated). ``pdenet converge`` reads these instead of rebuilding the model."""
        return error_norms(self.mesh, field, value, self.exact_fields(t)[field] if exact is None else exact)


def error_norms(mesh: Mesh, field: str, value: npt.ArrayLike, exact: npt.ArrayLike) -> dict[str, float]:
    """``{error_<field>_l2, error_<field>_max}`` of ``value - exact`` on ``mesh`` (see
    :meth:`Model.exact_errors`)."""
    e = np.asarray(value, dtype=float) - exact
    sq = mesh.integrate(e ** 2) if e.ndim == mesh.ndim else np.mean(
        [mesh.integrate(s ** 2) for s in e.reshape((-1,) + tuple(mesh.cells))])
    return {f"error_{field}_l2": float(np.sqrt(sq)), f"error_{field}_max": float(np.max(np.abs(e)))}
