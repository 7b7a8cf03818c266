"""The explicit Fokker-Planck stepper on a PETSc DMDA (pdenet.fokkerplanck.dmda) gives the
built-in backend's numbers to round-off on 1 rank and under mpiexec -n 2: shipped cases with
no-flux, periodic and absorbing boundaries, an absorbing set; mass conserved on 2 ranks."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.parallel import mpi_available, mpiexec_command

from conftest import ROOT, case_path

try:
    from solvers import petsc_backend as pb
    HAVE_PETSC, WHY = pb.available()
except ImportError as exc:  # pragma: no cover
    HAVE_PETSC, WHY = False, str(exc)

PETSC = 'solver.backend="petsc"'
#: shipped cases run with the explicit stepper (short): no-flux 2-D, no-flux 2-D with a drift,
#: periodic 2-D with a rotating drift, 1-D absorbing boundary, 2-D absorbing set
CASES = {
    "fp_gibbs_double_well.toml": ["time.t_end=0.4", "time.save_every=50"],
    "fp_ou_2d.toml": ['time.stepper="explicit"', "time.t_end=0.2", "time.steps=400", "time.save_every=100"],
    "fp_circulating.toml": ['time.stepper="explicit"', 'mesh.boundary="periodic"', "time.t_end=0.1",
                            "time.dt=0.001", "time.save_every=25"],
    "fp_kramers.toml": ['time.stepper="explicit"', "time.t_end=0.5", "time.dt=5e-4",
                        "time.save_every=250", "particles.count=0"],
    "fp_ou_1d.toml": ['time.stepper="explicit"', "time.t_end=0.2", "time.steps=400", "time.save_every=100",
                      'model.absorbing="x > 1.5"'],
}

needs_petsc = pytest.mark.skipif(not HAVE_PETSC, reason=f"PETSc backend: {WHY}")


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def reference(name):
    return pdenet.run(case_path(name), overrides=CASES[name], write=False)


def check_same(got, ref, ranks):
    assert got.attrs["petsc_solver"] == "dmda/explicit" and got.attrs["petsc_ranks"] == ranks
    assert np.allclose(got.time, ref.time) and got.fields["rho"].shape == ref.fields["rho"].shape
    for k in range(len(ref.time)):
        assert rel(got.fields["rho"][k], ref.fields["rho"][k]) < 1e-12, k
    for d in ("mass", "free_energy", "survival"):
        if d in ref.diagnostics:
            assert np.allclose(got.diagnostics[d], ref.diagnostics[d], rtol=1e-12, atol=1e-15), d


@needs_petsc
@pytest.mark.petsc
@pytest.mark.parametrize("name", list(CASES))
def test_one_rank_matches_builtin(name):
    ref = reference(name)
    got = pdenet.run(case_path(name), overrides=[*CASES[name], PETSC], write=False)
    check_same(got, ref, 1)
    assert got.attrs["steps"] == ref.attrs["steps"] >= 100


@needs_petsc
@pytest.mark.petsc
def test_cross_terms_are_a_one_line_error():
    with pytest.raises(CaseError, match=r"model.diffusion: backend petsc runs the explicit stepper "
                                        r"without cross terms") as err:
        pdenet.run(case_path("fp_nonisotropic.toml"), overrides=[PETSC, 'time.stepper="explicit"', 'model.initial="1"',
                                                                 "time.t_end=0.1"], write=False)
    assert "\n" not in str(err.value)


@needs_petsc
@pytest.mark.petsc
def test_two_ranks_match_builtin(tmp_path):
    if not mpi_available()[0]:
        pytest.skip(mpi_available()[1])
    script = os.path.join(ROOT, "tests", "mpi", "fp_explicit_check.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(mpiexec_command(2, [script, str(tmp_path)]), capture_output=True, text=True,
                       timeout=600, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip().endswith("OK 2"), p.stdout
    for name in CASES:
        got = pdenet.open(tmp_path / name.replace(".toml", ".h5"))
        assert got.status == "complete"
        ref = reference(name)
        check_same(got, ref, 2)
        if name in ("fp_gibbs_double_well.toml", "fp_ou_2d.toml", "fp_circulating.toml"):
            assert np.abs(np.asarray(got.diagnostics["mass"]) - 1).max() < 1e-13  # no-flux/periodic
        else:  # absorbing: mass decreases
            assert np.all(np.diff(got.diagnostics["mass"]) <= 1e-15)


@needs_petsc
@pytest.mark.petsc
def test_bench_explicit_quick():
    from pdenet.bench.petsc import run_explicit

    import io
    buf = io.StringIO()
    res = run_explicit("quick", 1, out=buf)
    assert "error" not in res["builtin"] and "error" not in res["dmda-1"], buf.getvalue()
    assert res["dmda-1"]["max_rel_diff_vs_builtin"] < 1e-12
    assert res["dmda-1"]["kernel_s"] > 0 and res["dmda-1"]["step_GBs"] > 0
    if mpi_available()[0]:
        assert res["dmda-2"]["ranks"] == 2 and res["dmda-2"]["max_rel_diff_vs_builtin"] < 1e-12, buf.getvalue()
        assert "2-rank speed-up of an explicit step" in buf.getvalue()
