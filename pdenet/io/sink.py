"""Sinks receive what a solver loop produces; they do all the I/O.

The protocol (every method optional to override):

``start(attrs, mesh)``             once, before the first save
``save(t, fields, diagnostics)``   one saved time: arrays per field, scalars
``put_field(name, index, array, n_saved)``  fill slot ``index`` of a field
                                   computed out of order (the co-state runs
                                   backward in time)
``put_diagnostic(name, index, value, n_saved)``  the same for a diagnostic
``write(group, name, array, attrs)``  per-run arrays (/train, /controls, ...)
``set_attrs(attrs)``               root attributes
``finish(status, message)``        always called, also on error or Ctrl-C
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, cast

import numpy as np
import numpy.typing as npt

from .result import Result, split_group

if TYPE_CHECKING:
    from solvers.march import Frame

    from ..mesh import Mesh


class Sink:
    """The sink protocol (see the module docstring); every method is a no-op here."""

    def start(self, attrs: Mapping[str, Any], mesh: Mesh | None) -> None:
        """Once, before the first save: the root attributes (provenance) and the mesh (or None)."""
        pass

    def save(self, t: float, fields: Mapping[str, npt.ArrayLike], diagnostics: Mapping[str, float]) -> None:
        """One saved time: ``t``, an array per field, a scalar per diagnostic."""
        pass

    def put_field(self, name: str, index: int, array: npt.ArrayLike, n_saved: int) -> None:
        """Fill slot ``index`` of field ``name`` (of ``n_saved`` slots), computed out of order."""
        pass

    def put_diagnostic(self, name: str, index: int, value: float, n_saved: int) -> None:
        """Fill slot ``index`` of diagnostic ``name`` (of ``n_saved`` slots)."""
        pass

    def write(self, group: str, name: str, array: npt.ArrayLike, attrs: Mapping[str, Any] | None = None) -> None:
        """A per-run array ``group/name`` (``/train``, ``/controls``, ``/analysis``, ...) with its attributes."""
        pass

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set root attributes (None values are skipped by the file sink)."""
        pass

    def finish(self, status: str = "complete", message: str = "") -> None:
        """Always called last: ``status`` complete | failed | interrupted, and a message."""
        pass


class MemorySink(Sink):
    """Keeps everything in memory and builds a :class:`Result`."""

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {}
        self.mesh: Mesh | None = None
        self.times: list[float] = []
        self.fields: dict[str, list[np.ndarray]] = {}
        self.diagnostics: dict[str, list[float]] = {}
        self.slotted: dict[str, np.ndarray] = {}
        self.slotted_diag: dict[str, np.ndarray] = {}
        self.groups: dict[str, dict[str, np.ndarray]] = {}
        self.group_attrs: dict[str, dict[str, Any]] = {}

    def start(self, attrs: Mapping[str, Any], mesh: Mesh | None) -> None:
        """Keep the provenance and the mesh."""
        self.attrs.update(attrs)
        self.mesh = mesh

    def save(self, t: float, fields: Mapping[str, npt.ArrayLike], diagnostics: Mapping[str, float]) -> None:
        """Append one saved time (arrays copied)."""
        self.times.append(float(t))
        for k, v in fields.items():
            self.fields.setdefault(k, []).append(np.array(v, copy=True))
        for k, v in diagnostics.items():
            self.diagnostics.setdefault(k, []).append(v)

    def put_field(self, name: str, index: int, array: npt.ArrayLike, n_saved: int) -> None:
        """Fill a slot of an out-of-order field (NaN until filled)."""
        store = self.slotted.get(name)
        if store is None:
            store = self.slotted[name] = np.full((n_saved,) + np.shape(array), np.nan)
        store[index] = array

    def put_diagnostic(self, name: str, index: int, value: float, n_saved: int) -> None:
        """Fill a slot of an out-of-order diagnostic (NaN until filled)."""
        store = self.slotted_diag.get(name)
        if store is None:
            store = self.slotted_diag[name] = np.full((n_saved,) + np.shape(value), np.nan)
        store[index] = value

    def write(self, group: str, name: str, array: npt.ArrayLike, attrs: Mapping[str, Any] | None = None) -> None:
        """Keep a per-run array under its top-level group and path (as the file has it)."""
        top, path = split_group(group, name)
        self.groups.setdefault(top, {})[path] = np.asarray(array)
        self.group_attrs.pop(f"{top}/{path}", None)     # a rewritten array has only its new attributes
        if attrs:
            self.group_attrs[f"{top}/{path}"] = dict(attrs)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Update the root attributes."""
        self.attrs.update(attrs)

    def finish(self, status: str = "complete", message: str = "") -> None:
        """Record the status and the message."""
        self.attrs["status"] = status
        if message:
            self.attrs["message"] = message

    def result(self, path: str | None = None) -> Result:
        """The :class:`~pdenet.io.result.Result` of everything received (``path``: the file's name, if any)."""
        fields = {k: np.stack(v) for k, v in self.fields.items()}
        fields.update(self.slotted)
        diags = {k: np.asarray(v) for k, v in self.diagnostics.items()}
        diags.update(self.slotted_diag)
        return Result(self.attrs, self.mesh, self.times, fields, diags, self.groups, path=path,
                      group_attrs=self.group_attrs)


class FanOut(Sink):
    """Forwards every call to several sinks."""

    def __init__(self, *sinks: Sink | None) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def __getattribute__(self, name: str) -> Any:
        if name in ("start", "save", "put_field", "put_diagnostic", "write", "set_attrs", "finish"):
            sinks = object.__getattribute__(self, "sinks")

            def call(*args: Any, **kwargs: Any) -> None:
                for s in sinks:
                    getattr(s, name)(*args, **kwargs)
            return call
        return object.__getattribute__(self, name)


class SinkWriter:
    """The observer (:mod:`solvers.march`) that hands each frame's fields and diagnostics to a
    sink: ``sink.save`` for the main march; with ``put`` (a second march over the same save
    times, e.g. a comparison solve) each field goes to its slot by ``put_field``."""

    def __init__(self, sink: Sink, put: bool = False, n_saved: int | None = None) -> None:
        self.sink, self.put, self.n_saved = sink, put, n_saved

    def __call__(self, frame: Frame) -> None:
        if self.put:
            n_saved = cast(int, self.n_saved)   # given with put=True
            for name, arr in frame.fields.items():
                self.sink.put_field(name, frame.index, arr, n_saved)
            for name, value in frame.diagnostics.items():
                self.sink.put_diagnostic(name, frame.index, value, n_saved)
        else:
            self.sink.save(frame.t, frame.fields, frame.diagnostics)
