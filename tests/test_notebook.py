"""Issue 17, part 2: pdenet in a notebook.

Loading and running a case leaves matplotlib's backend as it was; every plotter returns a
``matplotlib.figure.Figure`` (``pdenet plot`` saves it); Result, Case and Mesh have informative
reprs; ``from pdenet import *`` does not shadow ``open``; the ``pdenet`` logger reports runs.
"""
import io
import json
import logging
import os
import subprocess
import sys

import pytest

import pdenet
from conftest import CASES, ROOT

# a small run of every model that has a plotter (and heat, which uses the generic one)
PLOTTED = {
    "network": ("network_depth.toml", ["time.steps=4", "mesh.cells=[8]"]),
    "network (trained)": ("toy_msa.toml", []),
    "network-hjb": ("network_reduced_hjb.toml", ["mesh.cells=[16, 16]", "model.open_loop=false", "time.steps=8"]),
    "fokker-planck": ("fp_ou_1d.toml", ["mesh.cells=[32]", "time.steps=20"]),
    "hamilton-jacobi": ("hj_quadratic_1d.toml", ["mesh.cells=[32]"]),
    "hjb": ("hjb_double_well.toml", ["mesh.cells=[32]"]),
    "mean-field": ("meanfield_maps.toml", []),
    "heat": ("heat_1d.toml", []),
}

SCRIPT = r"""
import json, sys
import matplotlib
matplotlib.use("svg")                      # the user's choice, e.g. a notebook's inline backend
before = matplotlib.get_backend()
import pdenet
from matplotlib.figure import Figure
from pdenet.models import PLOTTERS, get_plotter
from pdenet.plot import plot_figure, plot_result, plot_convergence
from pdenet.network.plots import plot_training
plan = json.loads(sys.argv[1])
out = {"backends": [], "figures": {}}
for label, (case, overrides) in plan.items():
    c = pdenet.load_case(ROOT + "/cases/" + case, overrides=overrides)
    out["backends"].append(matplotlib.get_backend())
    r = pdenet.run(c, write=False, quiet=True)
    out["backends"].append(matplotlib.get_backend())
    fig = plot_figure(r)
    out["figures"][label] = "Figure" if isinstance(fig, Figure) else repr(fig)
    model = r.attrs["model"]
    if model in PLOTTERS:   # the registered plotter itself, called directly
        assert isinstance(get_plotter(model)(r), Figure)
    assert isinstance(plot_result(r) if r.fields else Figure(), Figure)
    if label == "network (trained)":
        assert isinstance(plot_training([r], ["msa"]), Figure)
    out["backends"].append(matplotlib.get_backend())
from pdenet.converge import converge
study = converge(ROOT + "/cases/heat_1d.toml", "mesh.cells", [16, 32])
assert isinstance(plot_convergence(study), Figure)
out["before"] = before
out["after"] = matplotlib.get_backend()
out["pyplot"] = "matplotlib.pyplot" in sys.modules
print(json.dumps(out))
"""


def test_backend_untouched_and_every_plotter_returns_a_figure():
    from pdenet.models import PLOTTERS

    assert {k.split(" ")[0] for k in PLOTTED} >= set(PLOTTERS)
    p = subprocess.run([sys.executable, "-c", SCRIPT.replace("ROOT", repr(ROOT)), json.dumps(PLOTTED)],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["before"] == "svg" and out["after"] == "svg"
    assert set(out["backends"]) == {"svg"}
    assert out["figures"] == {k: "Figure" for k in PLOTTED}
    assert not out["pyplot"]   # no pyplot: no global figure manager, no backend resolution


def test_pdenet_plot_saves_the_figure(tmp_path):
    from conftest import run_cli

    h5 = tmp_path / "h.h5"
    pdenet.run(os.path.join(CASES, "heat_1d.toml"), output=str(h5))
    p = run_cli("plot", str(h5), "-o", str(tmp_path / "h.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reprs(tmp_path):
    case = pdenet.load_case(os.path.join(CASES, "network_depth.toml"), overrides=["time.steps=4", "mesh.cells=[8]"])
    text = repr(case)
    assert text.startswith("Case(") and "model='network'" in text and "mesh.cells=[8]" in text
    assert "time.steps=4" in text and "network_depth.toml" in text
    r = pdenet.run(case, output=str(tmp_path / "n.h5"))
    for res in (r, pdenet.open(tmp_path / "n.h5")):
        text = repr(res)
        assert text.startswith("<pdenet.Result") and "object at 0x" not in text
        for part in ("network", "complete", "[8] cells", "f (2, 3, 8)", "lyapunov", "controls", "a, b"):
            assert part in text, (part, text)
        html = res._repr_html_()
        assert html.startswith("<div>") and "<table>" in html and "lyapunov" in html
    assert str(tmp_path / "n.h5") in repr(pdenet.open(tmp_path / "n.h5"))
    from pdenet.plot import plot_figure
    png = plot_figure(r)._repr_png_()      # what Jupyter shows for a figure that is a cell's value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    m = pdenet.Mesh([0, 0], [1, 2], [4, 8], "periodic")
    assert repr(m) == "Mesh(lower=[0, 0], upper=[1, 2], cells=[4, 8], boundary='periodic')"


def test_star_import_keeps_builtin_open():
    ns = {}
    exec("from pdenet import *", ns)
    assert "open" not in ns and "run" in ns and "load_case" in ns
    assert pdenet.open is not None and "open" not in pdenet.__all__


def test_logger_reports_runs(tmp_path):
    from pdenet.log import logger, verbose

    stream = io.StringIO()
    old = logger.level
    try:
        verbose(logging.INFO, stream)
        pdenet.run(os.path.join(CASES, "heat_1d.toml"), output=str(tmp_path / "h.h5"))
    finally:
        logger.setLevel(old)
        verbose(logging.WARNING, sys.stderr)
    text = stream.getvalue()
    assert "heat_1d.toml: model heat" in text and f"wrote {tmp_path / 'h.h5'}" in text


def test_cli_verbose_logs(tmp_path):
    from conftest import run_cli

    p = run_cli("run", os.path.join(CASES, "heat_1d.toml"), "-o", str(tmp_path / "h.h5"), "-v")
    assert p.returncode == 0
    assert "pdenet: " in p.stderr and "model heat" in p.stderr
    q = run_cli("run", os.path.join(CASES, "heat_1d.toml"), "-o", str(tmp_path / "g.h5"), "-q")
    assert q.returncode == 0 and q.stderr == ""


def test_progress_bar_is_tqdm_auto(monkeypatch):
    import tqdm.auto

    from pdenet.log import progress

    seen = []

    class Bar(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    for quiet in (True, False, None):
        progress(10, "x", quiet).close()
    assert [k["disable"] for k in seen] == [True, None, None]   # None: tqdm shows it on a terminal / in Jupyter
    assert [k["delay"] for k in seen] == [0.0, 0.0, 2.0]        # the Python API's default: after 2 s
