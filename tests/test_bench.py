"""The benchmark package's shared launcher (pdenet/bench/common.py) and suite table."""
import importlib
import sys

import pytest

from pdenet.bench import SUITES
from pdenet.bench import common


def test_every_suite_resolves_to_a_runner():
    for suite, (module, runner, most) in SUITES.items():
        mod = importlib.import_module(f"pdenet.bench.{module}")
        assert callable(getattr(mod, runner)), suite
        assert mod.MODULE == f"pdenet.bench.{module}"
        assert most is None or most > 0


def test_time_rounds_warm_up_per_barrier_and_after_round():
    calls, fences, after = [], [], []
    r = common.time_rounds(lambda: calls.append(1) or len(calls), 3, per=2, barrier=lambda: fences.append(1),
                           after_round=after.append)
    assert len(calls) == 4 and r.last == 4           # one warm-up call, then 3 timed rounds
    assert len(fences) == 6 and after == [0, 1, 2]
    assert len(r.times) == 3 and r.median >= 0
    r = common.time_rounds(lambda: 7, 2, warm_up=False)
    assert r.last == 7 and len(r.times) == 2


def test_pinned_env_sets_every_thread_variable():
    env = common.pinned_env(3, EXTRA="x")
    assert all(env[v] == "3" for v in common.THREAD_VARS) and env["EXTRA"] == "x"


def test_spawn_reads_the_last_json_line_or_reports_the_error(tmp_path, monkeypatch):
    (tmp_path / "fake_bench_worker.py").write_text(
        "import json, os, sys\n"
        "from pdenet.bench.common import emit, worker_entry\n"
        "def ok(x):\n    print('noise'); emit({'x': int(x), 'omp': os.environ['OMP_NUM_THREADS']})\n"
        "def bad():\n    raise RuntimeError('broken worker')\n"
        "if __name__ == '__main__':\n    worker_entry({'ok': ok, 'bad': bad})\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")
    assert common.spawn("fake_bench_worker", ("ok", 5), threads=2) == {"x": 5, "omp": "2"}
    r = common.spawn("fake_bench_worker", ("bad",), kind="k")
    assert r == {"kind": "k", "error": "RuntimeError: broken worker"}


def test_worker_entry_ignores_other_command_lines():
    assert common.worker_entry({}, ["4096", "64"]) is False
    seen = []
    assert common.worker_entry({"w": lambda *a: seen.append(a)}, ["_worker", "w", "1", "x"]) is True
    assert seen == [("1", "x")]


def test_bench_help_lists_the_suites(capsys):
    from pdenet.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert all(s in out for s in SUITES)


WORKER = '''
import os, sys, time
from pdenet.bench.common import emit, time_rounds, worker_entry

def work(name, pause, log):
    if name == "broken":
        raise SystemExit("broken: no such peer")
    def fn():
        with open(log, "a") as fh:
            fh.write(name + "\\n")
        time.sleep(float(pause))
    r = time_rounds(fn, 99)   # under alternate the parent decides the number of rounds
    emit({"kind": name, "median_s": r.median, "times": r.times})

if __name__ == "__main__":
    worker_entry({"w": work})
'''


def test_alternate_runs_contenders_in_rotating_rounds_and_pairs_their_ratios(tmp_path):
    """Every contender warms up first, then round r times each once, the order rotating; the
    per-round ratios pair round i with round i; a worker that fails reports its last stderr line."""
    (tmp_path / "fakebench.py").write_text(WORKER)
    log = tmp_path / "log"
    env = {"PYTHONPATH": str(tmp_path) + ":" + ":".join(sys.path)}
    res = common.alternate("fakebench", {"slow": ("w", "slow", 0.04, log), "fast": ("w", "fast", 0.01, log),
                                         "broken": ("w", "broken", 0, log)}, 4, env=env)
    assert res["broken"] == {"kind": "broken", "error": "broken: no such peer"}
    order = log.read_text().split()
    assert sorted(order[:2]) == ["fast", "slow"]          # the two warm-up calls
    assert order[2:] == ["slow", "fast", "fast", "slow", "slow", "fast", "fast", "slow"]
    assert len(res["slow"]["times"]) == len(res["fast"]["times"]) == 4
    m, lo, hi = common.paired_ratio(res["slow"], res["fast"])
    assert lo <= m <= hi and 1.5 < m < 6, (m, res)
    assert "x (rounds " in common.ratio_text(res["slow"], res["fast"])


def test_machine_line_names_threads_load_and_blas(monkeypatch):
    line = common.machine_line(1)
    assert "1 thread(s) per contender" in line and "load average" in line and "BLAS" in line
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert "WARNING: OPENBLAS_CORETYPE=Haswell" in common.machine_line(1)
