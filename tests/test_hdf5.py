"""The HDF5 layout of PRODUCT.md section 3 and the round trip through pdenet.open."""
import h5py
import numpy as np

from conftest import case_path
import pdenet


def test_layout_and_round_trip(tmp_path):
    out = tmp_path / "r.h5"
    mem = pdenet.run(case_path("network_depth.toml"), output=str(out), overrides=["time.steps=8",
                                                                                  "time.save_every=2"])
    with h5py.File(out) as fh:
        for key in ("pdenet_version", "model", "case", "created", "status"):
            assert key in fh.attrs
        assert fh.attrs["model"] == "network"
        assert "steps = 8" in fh.attrs["case"]  # the effective case text, overrides applied
        assert list(fh["mesh"].attrs["cells"]) == [32]
        assert fh["x1"].shape == (32,) and "x1" not in fh["mesh"]   # coordinates at the root (netCDF-4)
        np.testing.assert_allclose(fh["time"][()], [0, 0.25, 0.5, 0.75, 1.0])
        f = fh["fields/f"]
        assert f.shape == (5, 3, 32)
        assert f.compression == "gzip" and f.chunks[0] == 1
        assert [f.dims[k][0].name for k in range(3)] == ["/time", "/sample", "/x1"]
        assert [f.dims[k].label for k in range(3)] == ["time", "sample", "x1"]
        assert fh["fields/r"].shape == (5, 3, 32)
        assert fh["diagnostics/lyapunov"].shape == (5,)
        assert fh["gradients/b"].shape == (1, 32, 32)
        assert "controls/a" in fh
    back = pdenet.open(out)
    assert back.mesh == mem.mesh
    for k in mem.fields:
        np.testing.assert_array_equal(back.fields[k], mem.fields[k])
    for k in mem.diagnostics:
        np.testing.assert_array_equal(back.diagnostics[k], mem.diagnostics[k])
    np.testing.assert_array_equal(back.gradients["b"], mem.gradients["b"])
    assert back.attrs["loss"] == mem.attrs["loss"]


def test_costate_field_is_the_papers_r(tmp_path):
    """r(T) = f(T) - target for the identity head (the discrete co-state rescaled by S/h)."""
    r = pdenet.run(case_path("network_depth.toml"), write=False)
    np.testing.assert_allclose(r.fields["r"][-1], r.fields["f"][-1] - r.analysis["targets"], atol=1e-13)


def test_field_selection(tmp_path):
    r = pdenet.run(case_path("network_depth.toml"), write=False, overrides=['output.fields=["f"]'])
    assert set(r.fields) == {"f"}
    import pytest
    with pytest.raises(pdenet.CaseError, match="unknown field 'q'"):
        pdenet.run(case_path("network_depth.toml"), write=False, overrides=['output.fields=["q"]'])


def test_open_reads_every_group_a_sink_wrote(tmp_path):
    """A group outside the usual ones (any name, nested, with attributes) survives the round trip:
    the in-memory Result and the reopened one hold the same groups, arrays and attributes."""
    from pdenet.io import FanOut, H5Sink, MemorySink
    from pdenet.mesh import Mesh

    path = tmp_path / "odd.h5"
    memory, h5 = MemorySink(), H5Sink(path)
    sink = FanOut(memory, h5)
    sink.start({"pdenet_version": pdenet.__version__, "model": "none"}, Mesh([0.0], [1.0], [4]))
    sink.save(0.0, {"u": np.arange(4.0)}, {"mass": 1.0})
    deep = np.arange(6.0).reshape(2, 3)
    sink.write("odd-name.v2/deep", "arr", deep, {"meaning": "a nested array", "n": 3})
    sink.write("odd-name.v2", "s", 2.5)
    sink.write("analysis", "x", np.ones(2), {"meaning": "first"})
    sink.write("analysis", "x", np.zeros(2))          # rewritten: the old attributes go
    sink.finish()
    mem, back = memory.result(str(path)), pdenet.open(path)
    assert set(back.groups) == set(mem.groups) and "odd-name.v2" in back.groups
    for g in mem.groups:
        assert set(back.groups[g]) == set(mem.groups[g]), g
        for name, arr in mem.groups[g].items():
            np.testing.assert_array_equal(back.groups[g][name], arr)
    np.testing.assert_array_equal(back.groups["odd-name.v2"]["deep/arr"], deep)
    assert back.groups["odd-name.v2"]["s"] == 2.5
    assert back.group_attrs == mem.group_attrs == {"odd-name.v2/deep/arr": {"meaning": "a nested array", "n": 3}}
    np.testing.assert_array_equal(back.analysis["x"], [0, 0])
    assert "/odd-name.v2/deep/arr" in back.summary()


def test_shipped_cases_reopen_with_the_same_groups(tmp_path):
    """For shipped cases, ``pdenet.open`` of the file gives the groups (names, arrays, attributes)
    of the in-memory result that ``pdenet.run`` returned."""
    runs = {"network_depth.toml": ["time.steps=8"], "meanfield_maps.toml": [],
            "hj_quadratic_1d.toml": []}
    for name, overrides in runs.items():
        out = tmp_path / name.replace(".toml", ".h5")
        mem = pdenet.run(case_path(name), output=str(out), overrides=overrides)
        back = pdenet.open(out)
        assert set(back.groups) == set(mem.groups), name
        for g in mem.groups:
            assert set(back.groups[g]) == set(mem.groups[g]), (name, g)
        assert set(back.group_attrs) == set(mem.group_attrs), name
        assert any(mem.groups[g] for g in mem.groups), name
