"""pdenet sweep: the Cartesian product of grids, one file per case, a summary that records a
failed case without stopping the others, serially and spread over 2 MPI ranks."""
import os

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.parallel import mpi_available, mpiexec_command
from pdenet.sweep import load_summary, output_names, parse_grids

from conftest import ROOT, case_path, run_cli

# 4 steppers x 2 meshes of the 1-D Ornstein-Uhlenbeck case at dt = 0.1: the explicit stepper is
# stable on 20 cells (largest step ~0.2) but not on 40 (0.051), which the model rejects -- the one
# broken case of the eight.
GRID = ["--grid", "time.stepper=beuler,bdf2,cn,explicit", "--grid", "mesh.cells=[20],[40]"]
SETS = ["--set", "time.steps=10", "--set", "time.save_every=5"]
BROKEN = (3, 1)  # (stepper index, cells index)


def check_sweep(out, ranks):
    names = sorted(f for f in os.listdir(out) if f != "summary.h5")  # a failed case: <name>.failed.h5
    assert len(names) == 8
    recs = load_summary(os.path.join(out, "summary.h5"))
    assert len(recs) == 8
    steppers = ["beuler", "bdf2", "cn", "explicit"]
    for i, rec in enumerate(recs):
        s, c = divmod(i, 2)  # product order: the first grid varies slowest
        assert rec["values"] == {"time.stepper": steppers[s], "mesh.cells": ["[20]", "[40]"][c]}
        assert os.path.exists(rec["path"])
        r = pdenet.open(rec["path"])
        assert rec["status"] == r.status
        if (s, c) == BROKEN:
            assert rec["status"] == "failed"
            assert "time.dt" in rec["message"] and "explicit step" in rec["message"]
            assert rec["attrs"] == {} and r.attrs["message"] == rec["message"]
        else:
            assert rec["status"] == "complete", rec["message"]
            assert r.attrs["stepper"] == steppers[s] and tuple(r.mesh.cells) == ((20,), (40,))[c]
            # the headline attributes are the run's own
            for k in ("mass", "free_energy", "error_rho_l2", "error_rho_max"):
                assert rec["attrs"][k] == pytest.approx(r.attrs[k], rel=1e-15), k
            assert abs(rec["attrs"]["mass"] - 1) < 1e-12
    assert sorted({rec["rank"] for rec in recs}) == list(range(ranks))
    assert all(rec["rank"] == rec["index"] % ranks for rec in recs)
    summary = pdenet.open(os.path.join(out, "summary.h5"))
    assert summary.status == "failed" and summary.attrs["n_complete"] == 7
    assert summary.attrs["n_failed"] == 1 and summary.attrs["ranks"] == ranks
    assert [v.decode() for v in summary.sweep["values/mesh.cells"]] == ["[20]", "[40]"] * 4
    return recs


def test_sweep_serial(tmp_path):
    out = tmp_path / "s"
    p = run_cli("sweep", case_path("fp_ou_1d.toml"), *GRID, *SETS, "-o", str(out))
    assert p.returncode == 1, p.stderr  # one case failed
    recs = check_sweep(str(out), 1)
    lines = p.stdout.splitlines()
    assert "7 complete, 1 failed of 8 cases" in lines
    assert any(l.startswith("[7] failed:") and "time.dt" in l for l in lines)
    # the finer mesh is closer to the exact solution
    err = {tuple(r["values"].values()): r["attrs"].get("error_rho_l2") for r in recs}
    assert err[("cn", "[40]")] < err[("cn", "[20]")]


def test_sweep_all_complete_exits_zero(tmp_path):
    p = run_cli("sweep", case_path("fp_ou_1d.toml"), "--grid", "model.diffusion=0.5,0.25", *SETS,
                "--set", 'time.stepper="cn"', "-o", str(tmp_path / "d"), "-q")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    recs = load_summary(str(tmp_path / "d" / "summary.h5"))
    assert [r["values"]["model.diffusion"] for r in recs] == [0.5, 0.25]
    assert sorted(os.listdir(tmp_path / "d")) == ["fp_ou_1d_diffusion-0.25.h5", "fp_ou_1d_diffusion-0.5.h5",
                                                  "summary.h5"]


@pytest.mark.petsc
@pytest.mark.skipif(not mpi_available()[0], reason=f"MPI sweep needs mpiexec and mpi4py: "
                    f"{mpi_available()[1]}")
def test_sweep_on_two_ranks(tmp_path):
    import subprocess

    out = tmp_path / "m"
    cmd = mpiexec_command(2, ["-m", "pdenet.cli", "sweep", case_path("fp_ou_1d.toml"), *GRID, *SETS,
                              "-o", str(out)])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert p.returncode != 0, p.stdout
    assert "7 complete, 1 failed of 8 cases" in p.stdout.splitlines(), p.stdout + p.stderr
    assert p.stdout.count("of 8 cases") == 1  # only rank 0 prints
    check_sweep(str(out), 2)


def test_grid_parsing():
    g = parse_grids(["mesh.cells=[20, 20],[40,40]", "time.stepper=cn,\"beuler\"", "model.diffusion=0.1,1"])
    assert g[0] == ("mesh.cells", [("[20, 20]", [20, 20]), ("[40,40]", [40, 40])])
    assert [v for _, v in g[1][1]] == ["cn", "beuler"]
    assert [v for _, v in g[2][1]] == [0.1, 1]
    names = output_names("c", g[:2], [(a, b) for a in g[0][1] for b in g[1][1]])
    assert names[0] == "c_cells-20_20_stepper-cn.h5" and len(set(names)) == 4
    for bad, what in [(["time.steps"], "key=v1,v2"), (["a.b=1", "a.b=2"], "two --grid"),
                      (["a.b=1,,2"], "empty value"), ([], "at least one")]:
        with pytest.raises(CaseError, match=what):
            parse_grids(bad)
    # two keys with the same last part are named in full
    g = parse_grids(["model.x=1,2", "sgd.x=3"])
    assert output_names("c", g, [(a, b) for a in g[0][1] for b in g[1][1]])[0] == "c_model-x-1_sgd-x-3.h5"


def test_sweep_invalid_base_case_is_one_line(tmp_path):
    p = run_cli("sweep", case_path("fp_ou_1d.toml"), "--grid", "model.diffusion=1,2", "--set",
                "mesh.cells=[-3]", "-o", str(tmp_path / "x"))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "mesh.cells" in p.stderr
    assert not (tmp_path / "x").exists()
