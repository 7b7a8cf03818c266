"""The ``mean-field`` case-file model (phase diagram, maps, learning-rate control)."""
import os

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.meanfield import critical_sw2, propagate
from pdenet.meanfield.lr_control import QuadraticSGD, switching_time

CASES = os.path.join(os.path.dirname(__file__), os.pardir, "cases")
CASE = os.path.join(CASES, "meanfield_tanh_phase.toml")

#: every shipped mean-field case, with overrides that keep the test fast
SHIPPED = {
    "meanfield_tanh_phase": ["mesh.cells=[8, 3]", "model.maps.width=200", "model.maps.replicates=5",
                             "model.maps.depth=8"],
    "meanfield_maps": ["model.maps.width=200", "model.maps.replicates=5", "model.maps.depth=10"],
    "meanfield_maps_relu": ["model.maps.width=200", "model.maps.replicates=5", "model.maps.depth=10"],
    "meanfield_ntk": ["model.ntk.width=128"],
    "meanfield_residual": ["model.residual.width=200", "model.residual.replicates=10"],
    "meanfield_lr_control": ["model.lr_control.runs=500", "model.lr_control.hjb_cells=201",
                             "model.lr_control.hjb_steps=200"],
}


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


def test_every_shipped_meanfield_case_is_tested():
    shipped = {os.path.splitext(f)[0] for f in os.listdir(CASES)
               if f.startswith("meanfield_") and f.endswith(".toml")}
    assert shipped == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_case_runs_and_plots(tmp_path, name, capsys):
    from pdenet.cli import main

    out, png = tmp_path / f"{name}.h5", tmp_path / f"{name}.png"
    argv = ["run", os.path.join(CASES, f"{name}.toml"), "-o", str(out), "-q"]
    for o in SHIPPED[name]:
        argv += ["--set", o]
    assert main(argv) == 0
    assert main(["plot", str(out), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20000


def test_phase_plot_draws_the_critical_line_of_the_library():
    """The critical line drawn in the phase panel is critical_sw2 at the file's sigma_b^2, and
    the image is max(chi_1, chi_c) of the file (the data plotted, not pixels)."""
    from pdenet.meanfield.plots import figure_data, make_figure, plt

    r = pdenet.run(CASE, write=False, overrides=["mesh.cells=[6, 3]", 'model.analyses=["phase"]'])
    sb2 = r.mesh.axes[1]
    expected = [critical_sw2(b, "tanh") for b in sb2]
    data = figure_data(r)
    assert list(data) == ["phase"]
    np.testing.assert_allclose(data["phase"]["critical_sb2"], sb2, rtol=0, atol=0)
    np.testing.assert_allclose(data["phase"]["critical_sw2"], expected, rtol=1e-12)
    np.testing.assert_array_equal(data["phase"]["image"],
                                  np.maximum(r.fields["chi_1"][0], r.fields["chi_c"][0]))
    fig = make_figure(r)
    try:
        lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "critical_line"]
        assert len(lines) == 1
        np.testing.assert_allclose(lines[0].get_xdata(), expected, rtol=1e-12)
        np.testing.assert_allclose(lines[0].get_ydata(), sb2, rtol=0, atol=0)
    finally:
        plt.close(fig)
    # sigma_b^2 = 0.05 is a centre of the shipped box; the value quoted in the case and docs
    assert critical_sw2(0.05, "tanh") == pytest.approx(1.7609546396067404, rel=1e-12)


def test_plot_panels_follow_the_analyses_present():
    from pdenet.meanfield.plots import figure_data
    from pdenet.meanfield.lr_control import expected_loss_path, expected_loss_recursion, optimal_schedule

    r = pdenet.run(CASE, write=False, overrides=['model.analyses=["maps", "lr_control"]',
                                                 "model.maps.width=100", "model.maps.replicates=3",
                                                 "model.maps.depth=5", "model.lr_control.runs=100",
                                                 "model.lr_control.hjb_cells=101",
                                                 "model.lr_control.hjb_steps=100"])
    data = figure_data(r)
    assert list(data) == ["maps", "lr_control"]
    assert data["maps"]["network_q_stderr"].shape == (5,)
    p = QuadraticSGD()
    loss = data["lr_control"]["expected_loss"]["optimal"]
    assert loss.shape == (p.steps + 1,)
    assert loss[-1] == pytest.approx(r.attrs["lr_loss_optimal_exact"], rel=1e-14)
    u = optimal_schedule(np.arange(p.steps) * p.eta, p)
    assert expected_loss_path(u, p)[-1] == pytest.approx(expected_loss_recursion(u, p), rel=1e-14)


def test_plot_of_a_field_and_of_nothing(tmp_path):
    from pdenet.cli import main

    out = tmp_path / "p.h5"
    assert main(["run", CASE, "-o", str(out), "-q", "--set", "mesh.cells=[4, 2]",
                 "--set", 'model.analyses=["phase"]']) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "xi.png"), "--field", "xi_c"]) == 0
    assert (tmp_path / "xi.png").exists()
    assert main(["plot", str(out), "--field", "nope"]) != 0
