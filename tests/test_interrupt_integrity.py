"""Ctrl-C / SIGTERM at random moments of a run that saves at every step (issue 12): every run
stops with exit 130 and leaves a consistent file (/time, /fields/*, /diagnostics/* of one length)
that pdenet.open reads without a warning. A save is atomic: a signal during it is raised when it
completes; a second signal during the same save aborts it and the save is rolled back."""
import glob
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np
import pytest

import pdenet
from conftest import ROOT, case_path
from pdenet.io.result import InconsistentFileWarning

# a save at every step of a fine mesh: most of the run's time is spent saving
ARGS = ["run", case_path("fp_ou_1d.toml"), "-q", "--set", "mesh.cells=[4000]", "--set", "time.steps=100000",
        "--set", "time.t_end=100.0", "--set", "time.save_every=1"]


def _rows(path):
    with h5py.File(path, "r") as fh:
        rows = {"time": fh["time"].shape[0]}
        for g in ("fields", "diagnostics"):
            for k, v in fh.get(g, {}).items():
                rows[f"{g}/{k}"] = v.shape[0]
        return rows, fh.attrs["status"]


def _trial(tmp, rng):
    out = os.path.join(tmp, "o.h5")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "pdenet.cli", *ARGS, "-o", out], cwd=tmp, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.listdir(tmp) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)   # the output file exists: saves have started (or are about to)
        time.sleep(rng.uniform(0.0, 0.4))
        sig = rng.choice([signal.SIGINT, signal.SIGINT, signal.SIGTERM])
        proc.send_signal(sig)
        if rng.random() < 0.3:   # a second signal, often inside the same save: abort it at once
            time.sleep(rng.uniform(0.0, 0.01))
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    files = glob.glob(os.path.join(tmp, "o*.h5"))
    return proc.returncode, err, files


def _check(n_trials, tmp_path, seed):
    rng = random.Random(seed)
    failures = []
    for k in range(n_trials):
        tmp = tmp_path / f"t{k}"
        tmp.mkdir()
        rc, err, files = _trial(str(tmp), rng)
        problem = None
        if rc != 130:
            problem = f"exit {rc}"
        elif len(files) != 1:
            problem = f"output files {files}"
        elif len(err.strip().splitlines()) != 1 or "Traceback" in err:
            problem = "not one line"
        else:
            rows, status = _rows(files[0])
            if len(set(rows.values())) != 1 or status != "interrupted":
                problem = f"inconsistent {status} {rows}"
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", InconsistentFileWarning)
                    r = pdenet.open(files[0])
                assert np.all(np.diff(r.time) > 0)
        if problem:
            failures.append(f"trial {k}: {problem}: {err.strip()[-1500:]}")
    assert not failures, f"{len(failures)} of {n_trials} trials: " + "\n".join(failures)


def test_ten_interrupts_leave_consistent_files(tmp_path):
    _check(10, tmp_path, seed=12)


@pytest.mark.slow
def test_fifty_interrupts_leave_consistent_files(tmp_path):
    _check(50, tmp_path, seed=50)


# -- the same, deterministic and in-process -------------------------------------------------------
RUN = dict(overrides=["time.steps=20", "time.save_every=1", "mesh.cells=[50]"])


def _signal_in_save(monkeypatch, at_save, signals):
    """Send ``signals`` (SIGINT, SIGTERM, ...) to this process from inside the H5 sink's save
    ``at_save``, between writing its fields and its /time row."""
    real = pdenet.io.H5Sink._field
    seen = []

    def field(self, name, *args, **kwargs):
        dset = real(self, name, *args, **kwargs)
        seen.append(self.n_saves)
        if self.n_saves == at_save + 1 and seen.count(self.n_saves) == 1:
            for sig in signals:
                os.kill(os.getpid(), sig)
        return dset
    monkeypatch.setattr(pdenet.io.H5Sink, "_field", field)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_save_waits_for_it(tmp_path, monkeypatch, sig):
    _signal_in_save(monkeypatch, 3, [sig])
    out = tmp_path / "o.h5"
    with pytest.raises(pdenet.runner.Interrupted):
        pdenet.run(case_path("fp_ou_1d.toml"), output=str(out), **RUN)
    (path,) = glob.glob(str(tmp_path / "o*.h5"))
    rows, status = _rows(path)
    assert status == "interrupted" and set(rows.values()) == {4}, rows   # save 3 completed


def test_a_second_signal_aborts_the_save_and_rolls_it_back(tmp_path, monkeypatch):
    _signal_in_save(monkeypatch, 3, [signal.SIGINT, signal.SIGINT])
    out = tmp_path / "o.h5"
    with pytest.raises(pdenet.runner.Interrupted):
        pdenet.run(case_path("fp_ou_1d.toml"), output=str(out), **RUN)
    (path,) = glob.glob(str(tmp_path / "o*.h5"))
    rows, status = _rows(path)
    assert status == "interrupted" and set(rows.values()) == {3}, rows   # save 3 rolled back


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGTERM, signal.SIGTERM]])
def test_a_signal_while_the_file_is_created_leaves_its_whole_layout(tmp_path, monkeypatch, signals):
    """Found by 300 random trials (1 failure, trial 106): a Ctrl-C between the file's creation and
    its empty /time left an interrupted file without /time. The start is atomic now (one signal
    waits for it), and a second signal's abort is completed by finish: /time exists, 0 rows."""
    real = pdenet.io.H5Sink.set_attrs

    def set_attrs(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if "time" not in self.fh:  # inside start, after the file exists
            for sig in signals:
                os.kill(os.getpid(), sig)
    monkeypatch.setattr(pdenet.io.H5Sink, "set_attrs", set_attrs)
    with pytest.raises(pdenet.runner.Interrupted):
        pdenet.run(case_path("fp_ou_1d.toml"), output=str(tmp_path / "o.h5"), **RUN)
    rows, status = _rows(_output_of(tmp_path))
    assert status == "interrupted" and rows == {"time": 0}, rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentFileWarning)
        assert len(pdenet.open(_output_of(tmp_path)).time) == 0


def test_open_warns_about_an_inconsistent_file_and_reads_the_whole_saves(tmp_path):
    out = tmp_path / "o.h5"
    pdenet.run(case_path("fp_ou_1d.toml"), output=str(out), **RUN)
    with h5py.File(out, "a") as fh:   # what an interrupted save of older versions left
        fh["time"].resize((22,))
        fh["time"][21] = 0.0
    with pytest.warns(InconsistentFileWarning, match=r"o.h5: inconsistent file, rows per save differ: /time 22, "
                                                     r"/fields/current_1 and 10 more 21 .*reading the first 21 saves"):
        r = pdenet.open(out)
    assert len(r.time) == 21 and r.fields["rho"].shape[0] == 21 and r.time[-1] == 1.0
    assert all(len(v) == 21 for v in r.diagnostics.values())


def test_the_training_records_of_a_checkpoint_are_written_together(tmp_path, monkeypatch):
    """A Ctrl-C while the /train records of a checkpoint are written waits for all of them."""
    real = pdenet.io.H5Sink.write
    sent = []

    def write(self, group, name, *args, **kwargs):
        if group == "train" and not sent:
            sent.append(name)
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, group, name, *args, **kwargs)
    monkeypatch.setattr(pdenet.io.H5Sink, "write", write)
    with pytest.raises(pdenet.runner.Interrupted):
        pdenet.run(case_path("toy_msa.toml"), output=str(tmp_path / "o.h5"))
    with h5py.File(_output_of(tmp_path), "r") as fh:
        lengths = {k: v.shape[0] for k, v in fh["train"].items()}
    assert len(lengths) == 6 and len(set(lengths.values())) == 1, lengths


def _output_of(tmp_path):
    (path,) = glob.glob(str(tmp_path / "o*.h5"))
    return path
