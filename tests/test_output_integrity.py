"""Issue 12, item 1: atomic, exclusive output.

A run holds a lock on its target name for its whole length (a second run to the same target
fails at once), writes a temporary file of its own, and replaces the target only when it
completes; a failed or interrupted run keeps its file as OUT.failed.h5 / OUT.interrupted.h5.
Nothing that is not a pdenet file (a text file, the case file) is replaced without force; a
case file's [output] path stays inside its folder; names with control characters are rejected."""
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import pdenet
from conftest import ROOT, case_path, run_cli
from pdenet.errors import CaseError, OutputError
from pdenet.io.sink import Sink
from pdenet.runner import Interrupted

FP = case_path("fp_ou_1d.toml")
QUICK = ["time.steps=20", "time.save_every=5"]

# a process that runs the same case to OUT once per line read on stdin, printing "done STATUS"
WORKER = """
import sys
import pdenet
out, steps = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    r = pdenet.run(sys.argv[3], output=out, overrides=["time.steps=" + steps, "time.save_every=" + str(int(steps) // 10),
                                                      "mesh.cells=[400]"])
    print("done", r.status, len(r.time), flush=True)
"""


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _partials(folder):
    return [f for f in os.listdir(folder) if f.endswith(".partial")]


def _leftovers(folder):
    return [f for f in os.listdir(folder) if f.endswith((".partial", ".lock"))]


def test_two_concurrent_runs_to_one_target_20_trials(tmp_path):
    out = tmp_path / "o.h5"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pdenet.validate(FP, QUICK)  # this process's imports: the timing is of the refusal alone
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(out), "10000", FP], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    refusals, times = 0, []
    try:
        for trial in range(20):
            worker.stdin.write("go\n")
            worker.stdin.flush()
            deadline = time.time() + 120
            while not _partials(tmp_path) and time.time() < deadline and worker.poll() is None:
                time.sleep(0.005)
            assert _partials(tmp_path), f"trial {trial}: the first run never started ({worker.stderr.read()})"
            start = time.perf_counter()
            with pytest.raises(OutputError, match="another pdenet run is writing this file"):
                pdenet.run(FP, output=str(out), overrides=QUICK)
            times.append(time.perf_counter() - start)
            assert _partials(tmp_path), f"trial {trial}: the first run ended before the second was refused"
            refusals += 1
            line = worker.stdout.readline().split()
            assert line[:3] == ["done", "complete", "11"], (trial, line, worker.stderr.read())
            r = pdenet.open(out)  # the first run's file: intact and complete
            assert r.status == "complete" and len(r.time) == 11 and r.fields["rho"].shape[0] == 11
            assert np.all(np.isfinite(r.fields["rho"])) and abs(r.diagnostics["mass"][-1] - 1) < 1e-10
            assert not _leftovers(tmp_path)
    finally:
        worker.stdin.close()
        worker.wait(timeout=60)
    print(f"refused {refusals} of 20, slowest refusal {max(times):.4f} s")
    assert refusals == 20 and max(times) < 1.0, times


def test_second_cli_run_fails_at_once_with_one_line(tmp_path):
    out = tmp_path / "o.h5"
    from pdenet.io.hdf5 import H5Sink

    holder = H5Sink(str(out))
    holder.start({"pdenet_version": "x"}, None)  # another run, holding the target
    try:
        p = run_cli("run", FP, "-o", str(out), "--set", "time.steps=20")
        assert p.returncode == 1
        assert p.stderr.strip().splitlines() == [
            f"pdenet: error: {out}: another pdenet run is writing this file (lock {out}.lock is held); "
            "wait for it to finish or choose another output"]
    finally:
        holder.finish("complete")
    assert pdenet.open(out).status == "complete" and not _leftovers(tmp_path)


REFUSE = """
import sys, time
start = time.perf_counter()
import pdenet.cli
code = pdenet.cli.main(sys.argv[1:])
heavy = sorted(m for m in ("numpy", "h5py", "numba", "scipy", "pdenet.runner") if m in sys.modules)
print(code, f"{time.perf_counter() - start:.4f}", ",".join(heavy) or "-")
"""


@pytest.mark.parametrize("how", ["-o", "case", "case-output-path"])
def test_the_cli_refuses_a_held_target_before_the_heavy_imports(tmp_path, how):
    """The command line answers a held target before numpy, h5py, numba or the model are
    imported: the refusal costs the interpreter's start-up and a TOML read (~0.1 s), not the
    seconds of a full start. The target is found as the run would find it: -o, the case's
    [output] path (relative to the case file), or <name>.h5 in the working folder."""
    from pdenet.io.hdf5 import H5Sink

    case = tmp_path / "c.toml"
    text = open(FP).read()
    if how == "case-output-path":
        text += '\n[output]\npath = "sub/r.h5"\n'
        (tmp_path / "sub").mkdir()
    case.write_text(text)
    name = pdenet.load_case(str(case)).name
    out = {"-o": tmp_path / "o.h5", "case": tmp_path / f"{name}.h5",
           "case-output-path": tmp_path / "sub" / "r.h5"}[how]
    shown = f"{name}.h5" if how == "case" else str(out)  # <name>.h5 is named relative to the working folder
    holder = H5Sink(str(out))
    holder.start({"pdenet_version": "x"}, None)
    try:
        args = ["run", str(case)] + (["-o", str(out)] if how == "-o" else [])
        times = []
        for _ in range(5):
            p = subprocess.run([sys.executable, "-c", REFUSE, *args], capture_output=True, text=True,
                               cwd=tmp_path, timeout=120)
            code, _wall, heavy = p.stdout.split()
            assert code == "1" and heavy == "-", p.stdout
            assert p.stderr.strip() == (f"pdenet: error: {shown}: another pdenet run is writing this file "
                                        f"(lock {shown}.lock is held); wait for it to finish or choose another output")
            times.append(float(_wall))
        assert max(times) < 1.0, times
    finally:
        holder.finish("complete")


class _FailAt(Sink):
    def __init__(self, exc):
        self.exc, self.saves = exc, 0

    def save(self, t, fields, diagnostics):
        self.saves += 1
        if self.saves == 3:
            raise self.exc


def test_failed_and_interrupted_reruns_never_replace_a_complete_file(tmp_path):
    from solvers.errors import NumericalError

    out = tmp_path / "o.h5"
    pdenet.run(FP, output=str(out), overrides=QUICK)
    good = _digest(out)
    with pytest.raises(pdenet.SolverError, match=r"partial results kept in .*o\.failed\.h5"):
        pdenet.run(FP, output=str(out), overrides=QUICK, extra_sinks=[_FailAt(NumericalError("boom"))])
    with pytest.raises(Interrupted, match=r"partial results kept in .*o\.interrupted\.h5"):
        pdenet.run(FP, output=str(out), overrides=QUICK, extra_sinks=[_FailAt(KeyboardInterrupt())])
    assert _digest(out) == good and pdenet.open(out).status == "complete"
    assert pdenet.open(tmp_path / "o.failed.h5").status == "failed"
    r = pdenet.open(tmp_path / "o.interrupted.h5")
    assert r.status == "interrupted" and len(r.time) == 3  # the third save reached the file first
    assert sorted(os.listdir(tmp_path)) == ["o.failed.h5", "o.h5", "o.interrupted.h5"]
    # a complete re-run replaces the complete file
    pdenet.run(FP, output=str(out), overrides=["time.steps=40", "time.save_every=5"])
    assert len(pdenet.open(out).time) == 9


def test_a_text_file_or_the_case_file_is_not_replaced_without_force(tmp_path):
    text = tmp_path / "thesis.h5"
    text.write_text("three years of work\n")
    case = tmp_path / "c.toml"
    case.write_text(open(FP).read())
    for target, content in ((text, "three years of work\n"), (case, open(FP).read())):
        with pytest.raises(OutputError, match="is not a pdenet output file; refusing to replace it"):
            pdenet.run(str(case), output=str(target), overrides=QUICK)
        assert target.read_text() == content
        assert not _leftovers(tmp_path)
    dev = "/dev/null"
    with pytest.raises(OutputError, match="is not a regular file"):
        pdenet.run(str(case), output=dev, overrides=QUICK, force=True)
    p = run_cli("run", str(case), "-o", str(text), "--set", "time.steps=20", "-q")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and "--force" in p.stderr
    assert text.read_text() == "three years of work\n"
    p = run_cli("run", str(case), "-o", str(text), "--set", "time.steps=20", "-q", "--force")
    assert p.returncode == 0, p.stderr
    assert pdenet.open(text).status == "complete"
    pdenet.run(str(case), output=str(case), overrides=QUICK, force=True)
    assert pdenet.open(case).status == "complete"


@pytest.mark.parametrize("path", ["../x.h5", "sub/../../x.h5", "/tmp/pdenet-elsewhere.h5", "."])
def test_a_case_files_output_path_stays_in_its_folder(tmp_path, path):
    (tmp_path / "x.h5").write_text("not yours\n")
    (tmp_path / "cases").mkdir()
    case = tmp_path / "cases" / "c.toml"
    case.write_text(open(FP).read() + f'\n[output]\npath = "{path}"\n')
    for call in (pdenet.validate, pdenet.run):
        with pytest.raises(CaseError, match=r"output\.path: .* is not a file inside the case file's folder"):
            call(str(case), overrides=QUICK)
    assert (tmp_path / "x.h5").read_text() == "not yours\n"
    assert not os.path.exists("/tmp/pdenet-elsewhere.h5")
    p = run_cli("validate", str(case))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_a_path_inside_the_case_folder_or_given_by_the_user_is_allowed(tmp_path):
    (tmp_path / "cases").mkdir()
    case = tmp_path / "cases" / "c.toml"
    case.write_text(open(FP).read() + '\n[output]\npath = "results/../results/r.h5"\n')
    assert pdenet.run(str(case), overrides=QUICK).path == str(tmp_path / "cases" / "results/../results/r.h5")
    assert pdenet.open(tmp_path / "cases" / "results" / "r.h5").status == "complete"
    pdenet.run(str(case), output=str(tmp_path / "cases" / ".." / "mine.h5"), overrides=QUICK)
    assert pdenet.open(tmp_path / "mine.h5").status == "complete"


@pytest.mark.parametrize("key, line", [("case.name", 'name = "a\\u0000b"'), ("case.name", 'name = "a\\u001bc"'),
                                       ("output.path", '[output]\npath = "r\\u0000.h5"'),
                                       ("output.path", '[output]\npath = "r\\n.h5"')])
def test_control_characters_in_names_are_rejected(tmp_path, key, line):
    text = open(FP).read()
    text = text.replace('name = "fp_ou_1d"', line) if key == "case.name" else text + "\n" + line + "\n"
    case = tmp_path / "c.toml"
    case.write_text(text)
    for call in (pdenet.validate, pdenet.run):
        # a NUL is caught by the check of every string key (case.py), other control characters by
        # the check of names and paths: both one line naming the key
        with pytest.raises(CaseError, match=key.replace(".", r"\.") + r": (contains a control character \(U\+00"
                                            r"|must not contain a NUL character)"):
            call(str(case), overrides=QUICK)
    assert os.listdir(tmp_path) == ["c.toml"]
    with pytest.raises(CaseError, match=r"output: output file name contains a control character \(U\+0000\)"):
        pdenet.run(FP, output=str(tmp_path / "x\0.h5"), overrides=QUICK)
