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
        assert fh["mesh/x1"].shape == (32,)
        np.testing.assert_allclose(fh["time"][()], [0, 0.25, 0.5, 0.75, 1.0])
        f = fh["fields/f"]
        assert f.shape == (5, 3, 32)
        assert f.compression == "gzip" and f.chunks[0] == 1
        assert f.dims[0][0].name == "/time" and f.dims[2][0].name == "/mesh/x1"
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
