"""The result of a run, in memory or read back from HDF5."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import h5py
import numpy as np
import numpy.typing as npt

from ..errors import OutputError
from ..mesh import Mesh

GROUPS = ("train", "controls", "gradients", "convergence", "analysis", "sweep")


class Result:
    """Arrays of one run: ``fields``, ``time``, ``diagnostics``, ``mesh``, ``attrs``
    and the per-run groups (``train``, ``controls``, ``gradients``, ...)."""

    def __init__(self, attrs: Mapping[str, Any] | None = None, mesh: Mesh | None = None,
                 time: npt.ArrayLike | None = None, fields: Mapping[str, np.ndarray] | None = None,
                 diagnostics: Mapping[str, np.ndarray] | None = None,
                 groups: Mapping[str, Mapping[str, np.ndarray]] | None = None, path: str | None = None) -> None:
        self.attrs = dict(attrs or {})
        self.mesh = mesh
        self.time = np.asarray(time if time is not None else [], dtype=float)
        self.fields = dict(fields or {})
        self.diagnostics = dict(diagnostics or {})
        self.groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in GROUPS}
        for g, items in (groups or {}).items():
            self.groups.setdefault(g, {}).update(items)
        self.path = path

    def __getattr__(self, name: str) -> dict[str, np.ndarray]:
        if name in GROUPS:
            return self.groups[name]
        raise AttributeError(name)

    @property
    def status(self) -> str:
        return self.attrs.get("status", "unknown")

    def summary(self) -> str:
        lines = [f"model {self.attrs.get('model')}  case {self.attrs.get('case_name')}  "
                 f"status {self.status}  pdenet {self.attrs.get('pdenet_version')}",
                 f"created {self.attrs.get('created')}"]
        if self.mesh is not None:
            lines.append(f"mesh {list(self.mesh.cells)} cells on "
                         f"[{', '.join(f'{l:g}..{u:g}' for l, u in zip(self.mesh.lower, self.mesh.upper))}]")
        if self.time.size:
            lines.append(f"time {self.time.size} saves, t = {self.time[0]:g} .. {self.time[-1]:g}")
        for name, arr in self.fields.items():
            lines.append(f"  /fields/{name:<14} {str(arr.shape):<22} "
                         f"range [{np.nanmin(arr):.4g}, {np.nanmax(arr):.4g}]")
        for name, arr in self.diagnostics.items():
            a = np.asarray(arr)
            last = f"last {a.ravel()[-1]:.6g}" if a.size else "empty"
            lines.append(f"  /diagnostics/{name:<9} {str(a.shape):<22} {last}")
        for g in GROUPS:
            for name, arr in self.groups.get(g, {}).items():
                a = np.asarray(arr)
                tail = f"= {a.item():.6g}" if a.size == 1 and a.dtype.kind == "f" else str(a.shape)
                lines.append(f"  /{g}/{name:<14} {tail}")
        for k in sorted(self.attrs):
            if k not in ("case", "created", "model", "pdenet_version", "status", "case_name"):
                lines.append(f"  @{k} = {self.attrs[k]}")
        return "\n".join(lines)


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def open_result(path: str | os.PathLike[str]) -> Result:
    """Read a pdenet HDF5 file into a :class:`Result` (all arrays loaded)."""
    try:
        fh = h5py.File(path, "r")
    except FileNotFoundError:
        raise OutputError(f"{path}: no such file") from None
    except OSError as exc:
        raise OutputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        if "pdenet_version" not in fh.attrs:
            raise OutputError(f"{path}: not a pdenet output file (no pdenet_version attribute)")
        attrs = {k: _attr(v) for k, v in fh.attrs.items()}
        mesh = None
        if "mesh" in fh:
            ma = fh["mesh"].attrs
            boundary = json.loads(_attr(ma["boundary"])) if "boundary" in ma else "none"
            mesh = Mesh(list(ma["lower"]), list(ma["upper"]), [int(c) for c in ma["cells"]], boundary)
        time = fh["time"][()] if "time" in fh else []
        fields = {k: v[()] for k, v in fh["fields"].items()} if "fields" in fh else {}
        diags = {k: v[()] for k, v in fh["diagnostics"].items()} if "diagnostics" in fh else {}
        groups: dict[str, dict[str, np.ndarray]] = {}
        for g in GROUPS:
            if g in fh:
                groups[g] = {}
                fh[g].visititems(lambda name, obj, g=g: groups[g].__setitem__(name, obj[()])
                                 if isinstance(obj, h5py.Dataset) else None)
    return Result(attrs, mesh, time, fields, diags, groups, path=str(path))
