"""The result of a run, in memory or read back from HDF5.

Besides the fixed layout (root attributes, ``/mesh``, ``/time``, ``/fields``, ``/diagnostics``),
every other group of the file is a per-run group: ``Result.groups[name]`` maps each dataset's
path inside the group (``"values/mesh.cells"`` for a nested one) to its array, and
``Result.group_attrs`` maps ``"name"`` or ``"name/path"`` to the attributes of that group or
dataset. A sink's ``write("a/b", "c", ...)`` lands in ``groups["a"]["b/c"]`` in memory and on
disk alike, so a :class:`Result` built by :class:`~pdenet.io.sink.MemorySink` and the one
:func:`open_result` reads back from the file hold the same groups.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Any, Mapping

import h5py
import numpy as np
import numpy.typing as npt

from ..errors import OutputError
from ..mesh import Mesh
from .netcdf import is_bare_dimension

# HDF5 dimension-scale bookkeeping (netcdf.py), not attributes a model wrote
SCALE_ATTRS = ("CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS",
               "_Netcdf4Dimid", "_Netcdf4Coordinates")

# the per-run groups every Result has (empty when nothing was written); any other group a model
# writes is read too
GROUPS = ("train", "controls", "gradients", "convergence", "analysis", "sweep")
# the fixed layout, not per-run groups
LAYOUT = ("mesh", "time", "fields", "diagnostics")


def split_group(group: str, name: str = "") -> tuple[str, str]:
    """``("a/b", "c")`` -> ``("a", "b/c")``: the top-level group and the path inside it."""
    parts = [p for p in f"{group}/{name}".split("/") if p]
    return parts[0], "/".join(parts[1:])


class Result:
    """Arrays of one run: ``fields``, ``time``, ``diagnostics``, ``mesh``, ``attrs``, the per-run
    groups (``train``, ``controls``, ``gradients``, ... and any other a model wrote; also as
    attributes, ``result.analysis``) and ``group_attrs`` (see the module docstring)."""

    def __init__(self, attrs: Mapping[str, Any] | None = None, mesh: Mesh | None = None,
                 time: npt.ArrayLike | None = None, fields: Mapping[str, np.ndarray] | None = None,
                 diagnostics: Mapping[str, np.ndarray] | None = None,
                 groups: Mapping[str, Mapping[str, np.ndarray]] | None = None, path: str | None = None,
                 group_attrs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.attrs = dict(attrs or {})
        self.mesh = mesh
        self.time = np.asarray(time if time is not None else [], dtype=float)
        self.fields = dict(fields or {})
        self.diagnostics = dict(diagnostics or {})
        self.groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in GROUPS}
        for g, items in (groups or {}).items():
            top, sub = split_group(g)
            self.groups.setdefault(top, {}).update(
                {f"{sub}/{k}" if sub else k: v for k, v in items.items()})
        self.group_attrs = {"/".join(split_group(k)).rstrip("/"): dict(v) for k, v in (group_attrs or {}).items()}
        self.path = path

    def __getattr__(self, name: str) -> dict[str, np.ndarray]:
        groups = self.__dict__.get("groups", {})
        if name in groups:
            return groups[name]
        raise AttributeError(name)

    def to_xarray(self) -> Any:
        """The run as an ``xarray.DataTree``, node for node what
        ``xr.open_datatree(path, engine="h5netcdf")`` gives for its file: the root holds the
        coordinates ``time``, ``x1..xn``, ``sample`` and the root attributes; ``/fields``,
        ``/diagnostics``, ``/train`` (coordinate ``iteration``), ``/controls``, ... one node per
        group with the dimension names of :func:`pdenet.io.netcdf.dim_names`. Needs xarray
        (``pip install xarray``; not a dependency of pdenet)."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("Result.to_xarray needs xarray (pip install xarray)") from None
        from .netcdf import dim_names

        cells = tuple(self.mesh.cells) if self.mesh is not None else None
        coords: dict[str, Any] = {"time": ("time", self.time)}
        if self.mesh is not None:
            for d, axis in enumerate(self.mesh.axes):
                coords[f"x{d + 1}"] = (f"x{d + 1}", np.asarray(axis))
        sizes = {k: len(v[1]) for k, v in coords.items()}
        for name, arr in self.fields.items():
            if "sample" not in sizes and dim_names("fields", name, np.shape(arr), cells, sizes)[1:2] == ["sample"]:
                sizes["sample"] = np.shape(arr)[1]
                coords["sample"] = ("sample", np.arange(np.shape(arr)[1], dtype=np.int64))
        nodes: dict[str, Any] = {"/": xr.Dataset(coords=coords, attrs=dict(self.attrs))}
        if self.mesh is not None:
            desc = self.mesh.describe()
            nodes["/mesh"] = xr.Dataset(attrs={"lower": desc["lower"], "upper": desc["upper"],
                                               "cells": desc["cells"], "boundary": json.dumps(desc["boundary"]),
                                               "ndim": self.mesh.ndim})
        tables: dict[str, dict[str, Any]] = {"fields": dict(self.fields), "diagnostics": dict(self.diagnostics)}
        for g, items in self.groups.items():
            for path, arr in items.items():
                sub, _, leaf = f"{g}/{path}".rpartition("/")
                tables.setdefault(sub, {})[leaf] = arr
        grid = [k.decode() if isinstance(k, bytes) else str(k) for k in self.groups["sweep"].get("keys", [])]
        for gpath, items in tables.items():
            if not items:
                continue
            local = dict(sizes)
            coord = {"train": ["iteration"], "sweep/grid": grid}.get(gpath, [])
            for c in coord:
                if np.ndim(items.get(c, 0)) == 1:
                    local[c] = len(items[c])
            data: dict[str, Any] = {}
            for leaf, arr in items.items():
                a = np.asarray(arr)
                if a.dtype.kind in "OS":   # h5py reads strings as bytes; xarray decodes them
                    a = np.vectorize(lambda x: x.decode() if isinstance(x, bytes) else x, otypes=[object])(a)
                dims = dim_names(gpath, leaf, a.shape, cells, local, grid)
                if leaf in coord and a.ndim == 1:
                    dims = [leaf]
                for k, dim in enumerate(dims):   # a preferred name taken with another size: generic
                    if local.setdefault(dim, a.shape[k]) != a.shape[k]:
                        dims[k] = f"{leaf}_{k}"
                data[leaf] = xr.Variable(dims, a, attrs=self.group_attrs.get(f"{gpath}/{leaf}", {}))
            ds = xr.Dataset({k: v for k, v in data.items() if v.dims != (k,)},
                            coords={k: v for k, v in data.items() if v.dims == (k,)},
                            attrs=self.group_attrs.get(gpath, {}))
            nodes[f"/{gpath}"] = ds
        return xr.DataTree.from_dict(nodes)

    def _overview(self) -> list[tuple[str, str]]:
        """(label, text) rows shared by the repr and the HTML repr."""
        rows = [("model", f"{self.attrs.get('model')}  (case {self.attrs.get('case_name')}, "
                          f"status {self.status})")]
        if self.path:
            rows.append(("file", str(self.path)))
        if self.mesh is not None:
            rows.append(("mesh", f"{list(self.mesh.cells)} cells on "
                                 f"{' x '.join(f'[{lo:g}, {hi:g}]' for lo, hi in zip(self.mesh.lower, self.mesh.upper))}"))
        if self.time.size:
            rows.append(("time", f"{self.time.size} saves, t = {self.time[0]:g} .. {self.time[-1]:g}"))
        if self.fields:
            rows.append(("fields", ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in self.fields.items())))
        if self.diagnostics:
            rows.append(("diagnostics", ", ".join(self.diagnostics)))
        for g, items in self.groups.items():
            if items:
                names = list(items)
                more = f", ... ({len(names)} arrays)" if len(names) > 8 else ""
                rows.append((g, ", ".join(names[:8]) + more))
        return rows

    def __repr__(self) -> str:
        rows = self._overview()
        width = max(len(k) for k, _ in rows)
        return "<pdenet.Result\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows) + ">"

    def _repr_html_(self) -> str:
        import html

        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._overview())
        return f"<div><b>pdenet.Result</b><table>{body}</table></div>"

    @property
    def status(self) -> str:
        """The run's ``status`` attribute (complete | failed | interrupted | running | unknown)."""
        return self.attrs.get("status", "unknown")

    def summary(self) -> str:
        """Multi-line text of ``pdenet info``: provenance, mesh, saves, every array with its shape or value."""
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
        for g in self.groups:
            for name, arr in self.groups[g].items():
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


class InconsistentFileWarning(UserWarning):
    """A file whose per-save datasets differ in length (a save cut short, in a file written
    before pdenet made saves atomic, or by a full disk)."""


def _consistent(path: Any, time: Any, fields: dict[str, np.ndarray],
                diags: dict[str, np.ndarray]) -> int | None:
    """The number of whole saves when /time, /fields/* and /diagnostics/* differ in length
    (after a warning naming the file and the lengths), else None."""
    rows = {"/time": len(time), **{f"/fields/{k}": len(v) for k, v in fields.items() if np.ndim(v)},
            **{f"/diagnostics/{k}": len(v) for k, v in diags.items() if np.ndim(v)}}
    if len(set(rows.values())) <= 1:
        return None
    n = min(rows.values())
    groups: dict[int, list[str]] = {}
    for k, v in rows.items():
        groups.setdefault(v, []).append(k)
    odd = ", ".join(f"{names[0]}{f' and {len(names) - 1} more' if len(names) > 1 else ''} {v}"
                    for v, names in groups.items())
    warnings.warn(f"{path}: inconsistent file, rows per save differ: {odd} (a save cut short); "
                  f"reading the first {n} saves", InconsistentFileWarning, stacklevel=3)
    return n


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
        if "time" in fh and (n := _consistent(path, time, fields, diags)) is not None:
            time = time[:n]
            fields = {k: v[:n] for k, v in fields.items()}
            diags = {k: v[:n] for k, v in diags.items()}
        groups: dict[str, dict[str, np.ndarray]] = {}
        group_attrs: dict[str, dict[str, Any]] = {}
        for g, obj in fh.items():
            if g in LAYOUT or not isinstance(obj, h5py.Group):
                continue
            items = groups[g] = {}
            if own := {k: _attr(v) for k, v in obj.attrs.items() if k not in SCALE_ATTRS}:
                group_attrs[g] = own

            def visit(name: str, node: Any, g: str = g, items: dict[str, np.ndarray] = items) -> None:
                if isinstance(node, h5py.Dataset):
                    if is_bare_dimension(node):   # a netCDF dimension, not data
                        return
                    items[name] = node[()]
                own = {k: _attr(v) for k, v in node.attrs.items() if k not in SCALE_ATTRS}
                if own:
                    group_attrs[f"{g}/{name}"] = own
            obj.visititems(visit)
    return Result(attrs, mesh, time, fields, diags, groups, path=str(path), group_attrs=group_attrs)
