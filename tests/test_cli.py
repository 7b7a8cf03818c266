"""The command line: happy paths and one-line errors with non-zero exit codes."""
import os

import h5py
import numpy as np
import pytest

from conftest import case_path, run_cli
import pdenet

GOOD = """
[case]
name = "good"
model = "network"
[mesh]
lower = [0.0]
upper = [1.0]
cells = [8]
[model.kernel]
expression = "exp(-(y-z)^2)"
[data]
inputs = ["sin(pi*y)", "y"]
targets = ["0", "1"]
[time]
t_end = 1.0
steps = 4
"""


def test_run_info_plot_validate(tmp_path):
    out = tmp_path / "o.h5"
    p = run_cli("run", case_path("network_depth.toml"), "-o", str(out), "--quiet", "--set", "time.steps=8")
    assert p.returncode == 0, p.stderr
    assert out.exists() and not os.path.exists(str(out) + ".partial")
    r = pdenet.open(out)
    assert r.attrs["steps"] == 8 and r.status == "complete"
    p = run_cli("info", str(out))
    assert p.returncode == 0 and "/fields/f" in p.stdout and "status complete" in p.stdout
    p = run_cli("plot", str(out), "-o", str(tmp_path / "p.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    p = run_cli("validate", case_path("network_depth.toml"))
    assert p.returncode == 0 and "ok" in p.stdout


def test_converge_cli(tmp_path):
    p = run_cli("converge", case_path("network_depth.toml"), "--key", "time.steps", "--values", "8,16,32,64",
                "--set", 'time.stepper="rk4"', "-o", str(tmp_path / "c.h5"), "-q")
    assert p.returncode == 0, p.stderr
    assert "order" in p.stdout
    with h5py.File(tmp_path / "c.h5") as fh:
        orders = fh["convergence/orders"][()]
        assert fh.attrs["convergence_key"] == "time.steps"
    assert orders[2] == pytest.approx(4, abs=0.1)
    assert (tmp_path / "c.png").exists()


BAD = [
    ("unknown model", ('model = "network"', 'model = "netwrok"'), "case.model"),
    ("negative cells", ("cells = [8]", "cells = [-8]"), "mesh.cells"),
    ("undefined function", ('expression = "exp(-(y-z)^2)"', 'expression = "expp(y)"'), "model.kernel.expression"),
    ("attribute access", ('expression = "exp(-(y-z)^2)"', 'expression = "y.__class__"'), "model.kernel.expression"),
    ("wrong shape: target count", ('targets = ["0", "1"]', 'targets = ["0", "1", "2"]'), "data.targets"),
    ("wrong shape: mesh dims", ("upper = [1.0]", "upper = [1.0, 2.0]"), "mesh: lower, upper and cells have 1, 2 and 1"),
    ("unknown key", ("steps = 4", "steps = 4\nstepz = 3"), "time.stepz"),
    ("wrong type", ("steps = 4", 'steps = "four"'), "time.steps"),
    ("labels for classes", ("[time]", "[model.output]\nkind = \"classes\"\nloss = \"softmax\"\n[time]"),
     "data.labels"),
]


@pytest.mark.parametrize("what,edit,key", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_error(tmp_path, what, edit, key):
    path = tmp_path / "bad.toml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(edit[0], edit[1], 1))
    for command in ("validate", "run"):
        p = run_cli(command, str(path), "-o", str(tmp_path / "x.h5")) if command == "run" else \
            run_cli(command, str(path))
        assert p.returncode == 2, (what, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert str(path) in lines[0] and key in lines[0], lines[0]
        assert "Traceback" not in p.stderr
    assert not (tmp_path / "x.h5").exists()


def test_bad_set_and_missing_files(tmp_path):
    p = run_cli("run", case_path("network_depth.toml"), "--set", "time.stepz=3")
    assert p.returncode == 2 and "did you mean 'steps'" in p.stderr
    p = run_cli("run", str(tmp_path / "none.toml"))
    assert p.returncode == 2 and "no such file" in p.stderr
    p = run_cli("info", str(tmp_path / "none.h5"))
    assert p.returncode == 1 and "no such file" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    (tmp_path / "junk.h5").write_text("not hdf5")
    p = run_cli("info", str(tmp_path / "junk.h5"))
    assert p.returncode == 1 and "not a readable HDF5" in p.stderr


def test_blow_up_keeps_partial_output(tmp_path):
    path = tmp_path / "blow.toml"
    path.write_text(GOOD.replace("[data]", '[model]\nactivation = "identity"\n[model.bias]\nexpression = "1e308"\n[data]')
                    + "save_every = 1\n")
    out = tmp_path / "blow.h5"
    p = run_cli("run", str(path), "-o", str(out))
    assert p.returncode == 1
    assert "non-finite" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "blow.failed.h5" in p.stderr and not out.exists()  # issue 12: kept beside the target
    r = pdenet.open(tmp_path / "blow.failed.h5")
    assert r.status == "failed" and "non-finite" in r.attrs["message"]
    assert len(r.time) >= 1 and np.all(np.isfinite(r.fields["f"]))


def test_interrupt_keeps_readable_output(tmp_path):
    from pdenet.io.sink import Sink
    from pdenet.runner import Interrupted

    class CtrlC(Sink):
        saves = 0

        def save(self, t, fields, diagnostics):
            self.saves += 1
            if self.saves == 3:
                raise KeyboardInterrupt

    out = tmp_path / "int.h5"
    with pytest.raises(Interrupted, match="partial results kept in .*int.interrupted.h5"):
        pdenet.run(case_path("network_depth.toml"), output=str(out), extra_sinks=[CtrlC()])
    r = pdenet.open(tmp_path / "int.interrupted.h5")  # issue 12: never under the target name
    assert r.status == "interrupted"
    assert len(r.time) == 3 and r.fields["f"].shape[0] == 3


def test_sigint_from_outside(tmp_path):
    """A real Ctrl-C (SIGINT) on a running process: exit 130, file complete and readable."""
    import signal
    import subprocess
    import sys
    import time

    # compile the kernels first (a cold numba cache, as in CI, would otherwise spend the first
    # seconds compiling, before the first save: the Ctrl-C would then leave a file with no save)
    warm = subprocess.run([sys.executable, "-m", "pdenet.cli", "run", case_path("network_depth.toml"),
                           "-o", str(tmp_path / "warm.h5"), "-q", "--set", "time.steps=8",
                           "--set", "mesh.cells=[64]"], capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr
    out = tmp_path / "long.h5"
    proc = subprocess.Popen([sys.executable, "-m", "pdenet.cli", "run", case_path("network_depth.toml"),
                             "-o", str(out), "-q", "--set", "time.steps=400000", "--set", "time.save_every=1000",
                             "--set", "mesh.cells=[64]"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(f.endswith(".partial") for f in os.listdir(tmp_path)):
        time.sleep(0.1)
    time.sleep(1.0)
    # one Ctrl-C is enough when the process is in Python code; on a loaded machine (or while numba
    # compiles into a cold cache) it can land inside a C call that swallows it (seen once), so
    # press again as a user would -- but only after waiting long enough for the first one to
    # finish the file: a press during the interpreter's shutdown prints its own traceback
    for _ in range(8):
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()  # an interrupted run keeps its file as long.interrupted.h5 (issue 12)
    r = pdenet.open(tmp_path / "long.interrupted.h5")
    assert r.status == "interrupted" and len(r.time) >= 1


def test_python_dash_m_pdenet_is_the_cli():
    """``python -m pdenet`` runs the same command line as the ``pdenet`` script (pdenet/__main__.py)."""
    import subprocess
    import sys

    codes = {}
    for args in (("validate", case_path("fp_ou_1d.toml")), ("--version",), ("no-such-command",)):
        got = subprocess.run([sys.executable, "-m", "pdenet", *args], capture_output=True, text=True, timeout=600)
        ref = run_cli(*args)
        assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout), (args, got.stderr)
        codes[args[0]] = got.returncode
    assert codes["validate"] == 0 and codes["--version"] == 0 and codes["no-such-command"] == 2
