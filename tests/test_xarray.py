"""Issue 17, part 1: the output files are netCDF-4 as xarray reads them.

Every group of every file the shipped cases write opens with ``xr.open_dataset(path,
engine="h5netcdf", group=...)`` and ``xr.open_datatree``, with named dimensions (time, x1...,
sample, iteration), and holds exactly the arrays ``pdenet.open`` reads; ``Result.to_xarray()`` --
from the file and from the in-memory result of ``pdenet.run`` -- is the same tree; a sweep
summary is an N-d grid; files of the previous layout still open with ``pdenet.open``.
"""
import glob
import os

import numpy as np
import pytest

import pdenet
from conftest import CASES

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

HERE = os.path.dirname(os.path.abspath(__file__))

# one small run of each model (and of each kind of per-run group) for the default test run;
# the slow test below runs every shipped case as shipped
SMALL = {
    "heat_1d.toml": [],
    "network_depth.toml": ["time.steps=4", "mesh.cells=[8]"],
    "toy_msa.toml": [],
    "fp_ou_2d.toml": ["mesh.cells=[16,16]"],
    "hj_quadratic_1d.toml": ["mesh.cells=[32]"],
    "meanfield_maps.toml": [],
}


def _decode(a):
    a = np.asarray(a)
    if a.dtype.kind in "OS":
        return np.vectorize(lambda x: x.decode() if isinstance(x, bytes) else x, otypes=[object])(a)
    return a


def _same(a, b):
    a, b = _decode(a), _decode(b)
    assert a.shape == b.shape
    if a.dtype.kind in "fc":
        np.testing.assert_array_equal(a, b)
    else:
        assert a.tolist() == b.tolist()


def _trees_equal(t1, t2):
    assert sorted(n.path for n in t1.subtree) == sorted(n.path for n in t2.subtree)
    for node in t1.subtree:
        a = node.to_dataset(inherit=False)
        b = t2[node.path].to_dataset(inherit=False)
        assert set(a.variables) == set(b.variables), node.path
        for v in a.variables:
            assert a[v].dims == b[v].dims, (node.path, v)
            _same(a[v].values, b[v].values)


def check_file(path, memory=None):
    """Open ``path`` with xarray (the tree and each group) and with pdenet.open; compare."""
    r = pdenet.open(path)
    tree = xr.open_datatree(path, engine="h5netcdf")
    groups = [n.path.lstrip("/") for n in tree.subtree if n.path != "/"]
    for g in groups:   # each group alone, as a user opens one
        with xr.open_dataset(path, engine="h5netcdf", group=g) as ds:
            for v in ds.variables:
                assert all(isinstance(d, str) and d for d in ds[v].dims)
    root = tree.to_dataset()
    _same(root["time"].values, r.time)
    if r.mesh is not None:
        for d, axis in enumerate(r.mesh.axes):
            _same(root[f"x{d + 1}"].values, axis)
    for name, arr in r.fields.items():
        v = tree["fields"][name]
        nd = r.mesh.ndim if r.mesh is not None else 0
        assert v.dims[0] == "time"
        if r.mesh is not None and arr.shape[-nd:] == tuple(r.mesh.cells):
            assert v.dims[-nd:] == tuple(f"x{d + 1}" for d in range(nd))
            if arr.ndim == nd + 2:
                assert v.dims[1] == "sample"
        _same(v.values, arr)
    for name, arr in r.diagnostics.items():
        assert tree["diagnostics"][name].dims[0] == "time"
        _same(tree["diagnostics"][name].values, arr)
    for g, items in r.groups.items():
        for key, arr in items.items():
            sub, _, leaf = f"{g}/{key}".rpartition("/")
            v = tree[sub].to_dataset(inherit=False)[leaf]
            _same(v.values, arr)
            if g == "train" and np.ndim(arr) == 1:
                assert v.dims == ("iteration",)
    _trees_equal(tree, r.to_xarray())
    if memory is not None:
        _trees_equal(tree, memory.to_xarray())
    return tree


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shipped_case_opens_with_xarray(name, tmp_path):
    out = tmp_path / "out.h5"
    mem = pdenet.run(os.path.join(CASES, name), overrides=SMALL[name], output=str(out), quiet=True)
    check_file(str(out), memory=mem)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CASES, "*.toml"))), ids=os.path.basename)
def test_every_shipped_case_opens_with_xarray(path, tmp_path):
    out = tmp_path / "out.h5"
    mem = pdenet.run(path, output=str(out), quiet=True)
    check_file(str(out), memory=mem)


def test_sweep_summary_is_a_grid(tmp_path):
    from pdenet.sweep import load_summary, sweep

    records, summary = sweep(os.path.join(CASES, "heat_1d.toml"),
                             ["time.steps=40,80,160", "mesh.cells=[16],[32]"], outdir=str(tmp_path / "sw"),
                             quiet=True)
    tree = check_file(summary)
    grid = xr.open_dataset(summary, engine="h5netcdf", group="sweep/grid")
    assert grid["status"].dims == ("time.steps", "mesh.cells")
    assert grid["time.steps"].values.tolist() == [40, 80, 160]
    assert grid["mesh.cells"].values.tolist() == ["[16]", "[32]"]
    flat = load_summary(summary)
    for rec in flat:   # every case where its key values put it
        cell = grid.sel({"time.steps": rec["values"]["time.steps"], "mesh.cells": rec["values"]["mesh.cells"]})
        assert cell["status"].item() == rec["status"]
        assert cell["dt"].item() == rec["attrs"]["dt"]
        assert os.path.join(os.path.dirname(summary), cell["path"].item()) == rec["path"]
    assert tree["sweep/grid"]["wall_time"].shape == (3, 2)


def test_to_xarray_round_trip(tmp_path):
    """Result -> xarray -> netCDF file written by xarray -> the same arrays."""
    out = tmp_path / "net.h5"
    mem = pdenet.run(os.path.join(CASES, "network_depth.toml"), overrides=SMALL["network_depth.toml"],
                     output=str(out), quiet=True)
    tree = mem.to_xarray()
    again = tmp_path / "again.nc"
    tree.to_netcdf(again, engine="h5netcdf")
    _trees_equal(tree, xr.open_datatree(again, engine="h5netcdf"))
    np.testing.assert_array_equal(tree["fields"]["f"].values, mem.fields["f"])
    assert tree["fields"]["f"].dims == ("time", "sample", "x1")
    sel = tree["fields"].to_dataset()["f"].sel(time=mem.time[-1], sample=0)
    np.testing.assert_array_equal(sel.values, mem.fields["f"][-1, 0])


def test_previous_layout_still_opens():
    """A file of the previous layout (coordinates in /mesh, written by pdenet before issue 17)."""
    path = os.path.join(HERE, "data", "network_layout1.h5")
    r = pdenet.open(path)
    assert r.fields["f"].shape == (2, 3, 8) and r.time.shape == (2,)
    assert list(r.mesh.cells) == [8]
    assert set(r.controls) == {"a", "b", "interval_midpoints"}
    assert r.status == "complete"
