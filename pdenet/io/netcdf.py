"""netCDF-4 dimensions of pdenet's HDF5 files (what makes ``xarray`` open every group).

netCDF-4 (and so ``xr.open_dataset(path, engine="h5netcdf", group=...)`` and
``xr.open_datatree``) finds a variable's dimensions through HDF5 dimension scales that live in
the variable's own group or in a group above it. pdenet's files therefore keep

* at the root: the coordinate variables ``time`` (saved times), ``x1..xn`` (cell centres of the
  mesh) and ``sample`` (0..S-1, when fields carry a sample axis);
* in ``/train``: the coordinate ``iteration`` (the record ``/train/iteration`` itself, or a
  bare dimension of that name when no such record was written);
* in ``/sweep`` of a sweep summary: the bare dimension ``case`` of the per-case lists;
* in ``/sweep/grid`` of a sweep summary: one coordinate per swept key;
* everywhere else: a bare dimension (an HDF5 dimension scale that netCDF reads as a dimension
  without a variable) named ``<variable>_<axis>`` in the variable's group.

:func:`dim_names` is the one rule naming the axes of an array; the HDF5 sink applies it to the
file and :meth:`pdenet.io.result.Result.to_xarray` to the arrays in memory, so both give the
same xarray objects.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

#: the NAME of a dimension scale that netCDF-4 reads as a dimension with no variable
NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
#: groups whose arrays may carry mesh axes (trailing axes equal to the mesh's cells)
MESH_GROUPS = ("controls", "gradients", "analysis")


def dim_names(group: str, name: str, shape: Sequence[int], cells: Sequence[int] | None,
              sizes: Mapping[str, int], grid: Sequence[str] = ()) -> list[str]:
    """The dimension names of array ``group/name`` of ``shape``.

    ``cells``: the mesh's cells (None without a mesh); ``sizes``: the dimensions already known
    to the file (root coordinates, ``iteration`` ...) and their sizes. A preferred name whose
    known size differs falls back to the generic ``<name>_<axis>``. ``grid``: the swept keys of
    a sweep summary, the dimensions of ``/sweep/grid``."""
    shape = tuple(int(n) for n in shape)
    top = group.split("/")[0]
    base = name.replace("/", "_")
    out = [f"{base}_{k}" for k in range(len(shape))]
    nd = len(cells) if cells is not None else 0
    mesh_tail = nd > 0 and len(shape) >= nd and shape[len(shape) - nd:] == tuple(cells or ())
    lead = len(shape) - nd if mesh_tail else len(shape)

    def want(k: int, dim: str) -> None:
        if sizes.get(dim, shape[k]) == shape[k]:
            out[k] = dim

    if group == "sweep/grid" and grid:
        if name in grid and len(shape) == 1:
            return [name]
        if len(shape) == len(grid):
            return [str(k) for k in grid]
    if top in ("fields", "diagnostics") and len(shape) >= 1:
        want(0, "time")
        if top == "fields" and mesh_tail and lead == 2:
            want(1, "sample")
    elif top == "train" and len(shape) >= 1:
        want(0, "iteration")
    elif top == "sweep" and group != "sweep/grid" and len(shape) == 1 and name != "keys":
        want(0, "case")
    elif top == "analysis" and lead >= 1 and "sample" in sizes:
        want(0, "sample")
    if mesh_tail and (top in ("fields", "diagnostics") or top in MESH_GROUPS):
        for d in range(nd):
            out[lead + d] = f"x{d + 1}"
    return out


def label_file(fh: Any, cells: Sequence[int] | None) -> None:
    """Attach a dimension scale to every axis of every dataset of an open h5py file that has
    none yet (the sink's last step, :meth:`pdenet.io.hdf5.H5Sink.finish`)."""
    import h5py

    root_sizes = {k: fh[k].shape[0] for k in ("time", "sample", *(f"x{d + 1}" for d in range(len(cells or ()))))
                  if k in fh and isinstance(fh[k], h5py.Dataset) and fh[k].ndim == 1}

    def scale(group: Any, dim: str, size: int) -> Any:
        node = group
        while True:   # the dimension in this group or a group above it
            if dim in node and isinstance(node[dim], h5py.Dataset) and node[dim].is_scale:
                return node[dim]
            if node.name == "/":
                break
            node = node.parent
        if dim in group:        # a variable of that name that is not a scale: make it one
            ds = group[dim]
            if ds.ndim == 1 and ds.shape[0] == size and not ds.dims[0].keys():
                ds.make_scale(dim)
                return ds
            return None
        ds = group.create_dataset(dim, shape=(size,), dtype="f4")
        ds.make_scale(f"{NOT_A_VARIABLE}{size:10d}")
        return ds

    def visit(path: str, node: Any) -> None:
        if not isinstance(node, h5py.Dataset) or node.ndim == 0 or node.is_scale or node.parent.name == "/":
            return
        group = node.parent
        gpath = group.name.strip("/")
        sizes = dict(root_sizes)
        if gpath.split("/")[0] == "train" and "iteration" in group and group["iteration"].ndim == 1:
            sizes["iteration"] = group["iteration"].shape[0]
        names = dim_names(gpath, node.name.rsplit("/", 1)[1], node.shape, cells, sizes, grid)
        for k, dim in enumerate(names):
            if node.dims[k].keys():
                continue
            s = scale(group, dim, node.shape[k])
            if s is None or s.shape[0] != node.shape[k]:
                s = scale(group, f"{node.name.rsplit('/', 1)[1]}_{k}", node.shape[k])
            if s is not None:
                node.dims[k].attach_scale(s)
            node.dims[k].label = dim

    # the coordinates first, so the other variables attach to them
    coords = [("train", "iteration")]
    grid: list[str] = []
    if "sweep/keys" in fh and "sweep/grid" in fh:
        grid = [k.decode() if isinstance(k, bytes) else str(k) for k in fh["sweep/keys"][()]]
        coords += [("sweep/grid", k) for k in grid]
    for g, name in coords:
        if g in fh and name in fh[g] and fh[g][name].ndim == 1 and not fh[g][name].is_scale:
            fh[g][name].make_scale(name)
    items: list[tuple[str, Any]] = []
    fh.visititems(lambda p, n: items.append((p, n)) if isinstance(n, h5py.Dataset) else None)
    for p, n in items:
        visit(p, n)


def is_bare_dimension(node: Any) -> bool:
    """A dimension scale that netCDF reads as a dimension without a variable (not data)."""
    name = node.attrs.get("NAME", b"")
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return isinstance(name, str) and name.startswith(NOT_A_VARIABLE)
