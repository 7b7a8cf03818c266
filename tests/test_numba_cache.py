"""A second `pdenet run` of the same case loads every numba kernel from the cache."""
import re

from conftest import case_path, run_cli


def _stats(p):
    assert p.returncode == 0, p.stderr
    m = re.search(r"numba kernels: (\d+) loaded from cache, (\d+) compiled", p.stdout)
    assert m, p.stdout
    return int(m.group(1)), int(m.group(2))


def test_second_run_does_not_recompile(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # an empty cache: the first run must compile
    args = ("run", case_path("network_depth.toml"), "-o", str(tmp_path / "o.h5"), "-q", "-v",
            "--set", 'time.stepper="cn"')
    hits1, compiled1 = _stats(run_cli(*args, env=env))
    assert compiled1 > 0 and hits1 == 0
    hits2, compiled2 = _stats(run_cli(*args, env=env))
    assert compiled2 == 0 and hits2 == compiled1
