"""The ``mean-field`` case-file model (phase diagram, maps, learning-rate control)."""
import os

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.meanfield import critical_sw2, propagate
from pdenet.meanfield.lr_control import QuadraticSGD, switching_time

CASE = os.path.join(os.path.dirname(__file__), os.pardir, "cases", "meanfield_tanh_phase.toml")


def test_phase_case_runs_and_matches_the_library(tmp_path):
    out = tmp_path / "mf.h5"
    r = pdenet.run(CASE, output=str(out), overrides=["mesh.cells=[6, 2]", "model.maps.width=300",
                                                    "model.maps.replicates=4", "model.maps.depth=10"])
    assert r.status == "complete"
    assert r.fields["c_star"].shape == (1, 6, 2)
    sw2, sb2 = r.mesh.axes
    crit = r.analysis["critical_sw2"]
    np.testing.assert_allclose(crit, [critical_sw2(b, "tanh") for b in sb2], rtol=1e-12)
    ordered = sw2[:, None] < crit[None, :]
    assert np.array_equal(r.fields["c_star"][0] == 1.0, ordered)
    q, c = propagate(1.0, 0.6, 1.76, 0.05, "tanh", 10)
    np.testing.assert_allclose(r.analysis["maps_q"], q, rtol=1e-14)
    np.testing.assert_allclose(r.analysis["maps_c"], c, rtol=1e-14)
    assert r.analysis["network_q"].shape == (10,)
    # read back from HDF5
    back = pdenet.open(str(out))
    np.testing.assert_array_equal(back.fields["xi_c"], r.fields["xi_c"])
    assert back.attrs["maps_critical_sw2"] == pytest.approx(1.7609546396067404, rel=1e-12)


def test_lr_control_analysis():
    r = pdenet.run(CASE, write=False, overrides=['model.analyses=["lr_control"]',
                                                 "model.lr_control.runs=2000",
                                                 "model.lr_control.hjb_cells=601",
                                                 "model.lr_control.hjb_steps=500"])
    assert r.attrs["lr_switching_time"] == pytest.approx(switching_time(QuadraticSGD()))
    assert abs(r.attrs["lr_hjb_switching_time"] - r.attrs["lr_switching_time"]) <= 10.0 / 500 + 1e-12
    assert r.attrs["lr_loss_optimal_exact"] < r.attrs["lr_loss_inverse_time_exact"]
    assert r.controls["u_optimal"].shape == (100,)


def test_phase_needs_a_two_dimensional_mesh():
    with pytest.raises(CaseError, match="2-D mesh"):
        pdenet.load_case(CASE, overrides=["mesh.cells=[8]", "mesh.lower=[0.5]", "mesh.upper=[4.0]"])
    with pytest.raises(CaseError, match="not one of"):
        pdenet.load_case(CASE, overrides=['model.activation="swish"'])
