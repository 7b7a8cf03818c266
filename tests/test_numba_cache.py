"""A second run of the same case loads every numba kernel from the cache: no recompilation."""
import subprocess
import sys

from conftest import case_path

SCRIPT = """
import pdenet
from pdenet import activations
pdenet.run({case!r}, write=False, overrides=['time.stepper="cn"'])
hits = sum(sum(k.stats.cache_hits.values()) for k in activations.kernels())
misses = sum(sum(k.stats.cache_misses.values()) for k in activations.kernels())
print(hits, misses)
"""


def test_second_run_does_not_recompile(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    import os
    env = {**os.environ, **env}
    code = SCRIPT.format(case=case_path("network_depth.toml"))
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    h1, m1 = map(int, first.stdout.split())
    assert m1 > 0  # the first run compiled (and cached) the kernels it used
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    h2, m2 = map(int, second.stdout.split())
    assert m2 == 0 and h2 == m1
