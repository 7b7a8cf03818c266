"""The hj/hjb cases through the command line: validate, run, plot, errors, numba cache."""
import os
import re

import pytest

from conftest import CASES, case_path, run_cli

SHIPPED = sorted(f for f in os.listdir(CASES) if f.startswith(("hj_", "hjb_")))


def test_shipped_cases_validate():
    assert len(SHIPPED) >= 7
    for name in SHIPPED:
        p = run_cli("validate", case_path(name))
        assert p.returncode == 0 and "ok" in p.stdout, (name, p.stderr)


def test_bad_key_is_one_line_with_file_and_key(tmp_path):
    p = run_cli("run", case_path("hjb_double_well.toml"), "--set", "time.steps=10", "-o", str(tmp_path / "x.h5"))
    assert p.returncode == 2
    line = p.stderr.strip()
    assert "\n" not in line and "hjb_double_well.toml" in line and "time.steps" in line


def test_run_plot_and_second_run_loads_kernels_from_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    out = str(tmp_path / "k.h5")
    args = ("run", case_path("hj_kink_1d.toml"), "-o", out, "-q", "-v", "--set", "mesh.cells=[40]")

    def stats(p):
        assert p.returncode == 0, p.stderr
        m = re.search(r"numba kernels: (\d+) loaded from cache, (\d+) compiled", p.stdout)
        return int(m.group(1)), int(m.group(2))
    hits1, compiled1 = stats(run_cli(*args, env=env))
    assert compiled1 > 0 and hits1 == 0
    hits2, compiled2 = stats(run_cli(*args, env=env))
    assert compiled2 == 0 and hits2 == compiled1
    p = run_cli("plot", out, "-o", str(tmp_path / "k.png"))
    assert p.returncode == 0 and (tmp_path / "k.png").stat().st_size > 10000


@pytest.mark.slow
def test_bench_quick():
    p = run_cli("bench", "hamilton-jacobi", "--quick", "--repeat", "1")
    assert p.returncode == 0, p.stderr
    assert "M cell-updates/s" in p.stdout and "bandwidth" in p.stdout
