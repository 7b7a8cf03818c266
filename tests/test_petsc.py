"""The PETSc backend of the fokker-planck model agrees with the built-in one (sparse LU) to the
Krylov tolerance, on 1 rank and under mpiexec -n 2; options from the case file and the command
line reach PETSc; a missing PETSc is a one-line error naming the set-up script."""
import os
import subprocess

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.parallel import mpi_available, mpiexec_command
from solvers import petsc_backend as pb

from conftest import ROOT, case_path, run_cli, hide_module

HAVE_PETSC, PETSC_WHY = pb.available()
needs_petsc = pytest.mark.skipif(not HAVE_PETSC, reason=f"PETSc backend: {PETSC_WHY}")
needs_mpi = pytest.mark.skipif(not (HAVE_PETSC and mpi_available()[0]),
                               reason=f"PETSc under MPI: {PETSC_WHY if not HAVE_PETSC else mpi_available()[1]}")
PETSC = 'solver.backend="petsc"'


def both(name, *sets):
    ref = pdenet.run(case_path(name), overrides=list(sets), write=False)
    got = pdenet.run(case_path(name), overrides=[*sets, PETSC], write=False)
    return ref, got


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# -- no PETSc needed ---------------------------------------------------------------------
def test_parse_options():
    assert pb.parse_options("-ksp_type cg -ksp_monitor -ksp_atol -1e-3 --pc_type gamg") == [
        ("ksp_type", "cg"), ("ksp_monitor", None), ("ksp_atol", "-1e-3"), ("pc_type", "gamg")]
    with pytest.raises(ValueError, match="expected an option"):
        pb.parse_options("cg -ksp_type")


def test_missing_petsc_is_one_line(monkeypatch):
    hide_module(monkeypatch, "petsc4py")
    with pytest.raises(CaseError, match=r"solver.backend: petsc4py is not installed.*scripts/setup-petsc.sh"):
        pdenet.load_case(case_path("fp_ou_1d.toml"), [PETSC])


@needs_petsc
@pytest.mark.petsc
def test_every_stepper_is_a_petsc_stepper():
    # validation checks that petsc4py is installed; explicit runs on a DMDA (tests/test_petsc_fp_explicit.py), the others through KSP
    for stepper in ("explicit", "steady"):
        case = pdenet.load_case(case_path("fp_gibbs_double_well.toml"), [PETSC, f'time.stepper="{stepper}"'])
        assert case["solver.backend"] == "petsc" and case["time.stepper"] == stepper


# -- one rank -----------------------------------------------------------------------------
@needs_petsc
@pytest.mark.petsc
@pytest.mark.parametrize("stepper", ["beuler", "bdf2", "cn"])
def test_steppers_match_builtin_1d(stepper):
    ref, got = both("fp_ou_1d.toml", f'time.stepper="{stepper}"', "time.steps=20", "time.save_every=5")
    assert got.attrs["petsc_ranks"] == 1 and got.attrs["petsc_solver"].startswith("gmres/")
    assert got.attrs["krylov_iterations"] > 0
    assert np.allclose(got.time, ref.time) and got.fields["rho"].shape == ref.fields["rho"].shape
    for k in range(len(ref.time)):
        assert rel(got.fields["rho"][k], ref.fields["rho"][k]) < 1e-10, k
    assert abs(got.attrs["mass"] - 1) < 1e-10
    assert got.attrs["error_rho_l2"] == pytest.approx(ref.attrs["error_rho_l2"], rel=1e-8)


@needs_petsc
@pytest.mark.petsc
def test_cn_matches_builtin_2d():
    ref, got = both("fp_ou_2d.toml", "time.steps=10", "time.save_every=5")
    assert rel(got.fields["rho"][-1], ref.fields["rho"][-1]) < 1e-10
    for d in ("mean_1", "cov_22", "free_energy"):
        assert np.allclose(got.diagnostics[d], ref.diagnostics[d], rtol=1e-9, atol=1e-12), d


@needs_petsc
@pytest.mark.petsc
def test_steady_state_gamg_matches_builtin_and_gibbs():
    # default relative tolerance 1e-10: the density (20 decades) agrees to ~1e-10 of its maximum
    ref, got = both("fp_gibbs_double_well.toml", 'time.stepper="steady"')
    assert got.attrs["petsc_solver"] == "gmres/gamg"
    assert rel(got.fields["rho"][0], ref.fields["rho"][0]) < 1e-8
    assert got.attrs["steady_gibbs_max_rel_error"] < 1e-8
    assert abs(got.attrs["mass"] - 1) < 1e-12
    assert got.attrs["krylov_iterations"] < 50
    # a rotating (non-gradient) drift and a full diffusion tensor
    for name in ("fp_circulating.toml", "fp_nonisotropic.toml"):
        ref, got = both(name, 'time.stepper="steady"')
        assert rel(got.fields["rho"][0], ref.fields["rho"][0]) < 1e-8, name
    # tighter through the case file's options: agreement follows the tolerance
    ref, got = both("fp_gibbs_double_well.toml", 'time.stepper="steady"',
                    'solver.petsc_options="-ksp_rtol 1e-13"')
    assert rel(got.fields["rho"][0], ref.fields["rho"][0]) < 1e-10
    assert got.attrs["steady_residual"] < 1e-12


@needs_petsc
@pytest.mark.petsc
def test_options_from_case_and_command_line(tmp_path):
    r = pdenet.run(case_path("fp_ou_1d.toml"), write=False, overrides=[
        PETSC, "time.steps=4", 'solver.petsc_options="-ksp_type bcgs -pc_type jacobi"'])
    assert r.attrs["petsc_solver"] == "bcgs/jacobi"
    # the command line wins over the case file; the options do not leak into the next run
    out = tmp_path / "o.h5"
    p = run_cli("run", case_path("fp_ou_1d.toml"), "-q", "-o", str(out), "--set", PETSC, "--set", "time.steps=4",
                "--set", 'solver.petsc_options="-ksp_type bcgs -pc_type jacobi"', "--petsc", "-ksp_type", "gmres")
    assert p.returncode == 0, p.stderr
    assert pdenet.open(out).attrs["petsc_solver"] == "gmres/jacobi"
    r = pdenet.run(case_path("fp_ou_1d.toml"), write=False, overrides=[PETSC, "time.steps=4"])
    assert r.attrs["petsc_solver"] == "gmres/ilu"  # neither bcgs nor jacobi stayed behind
    # a Krylov method that cannot converge is a one-line failure
    p = run_cli("run", case_path("fp_ou_1d.toml"), "-q", "-o", str(tmp_path / "f.h5"), "--set", PETSC,
                "--set", "time.steps=4", "--petsc", "-ksp_type", "richardson", "-pc_type", "none",
                "-ksp_max_it", "2")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "did not converge" in p.stderr


# -- two ranks ----------------------------------------------------------------------------
def run_mpi(args, cwd):
    cmd = mpiexec_command(2, ["-m", "pdenet.cli", *args])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=str(cwd))


@needs_mpi
@pytest.mark.petsc
def test_two_ranks_match_builtin(tmp_path):
    sets = ["time.steps=10", "time.save_every=5"]
    out = tmp_path / "cn2.h5"
    p = run_mpi(["run", case_path("fp_ou_2d.toml"), "-o", str(out), *[a for s in sets + [PETSC] for a in ("--set", s)]],
                tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("wrote ") == 1  # rank 0 reports, rank 0 writes
    got = pdenet.open(out)
    assert got.attrs["petsc_ranks"] == 2 and got.status == "complete"
    ref = pdenet.run(case_path("fp_ou_2d.toml"), overrides=sets, write=False)
    for k in range(len(ref.time)):
        assert rel(got.fields["rho"][k], ref.fields["rho"][k]) < 1e-10
    out = tmp_path / "steady2.h5"
    p = run_mpi(["run", case_path("fp_gibbs_double_well.toml"), "-o", str(out), "--set", PETSC,
                 "--set", 'time.stepper="steady"'], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    got = pdenet.open(out)
    ref = pdenet.run(case_path("fp_gibbs_double_well.toml"), overrides=['time.stepper="steady"'], write=False)
    assert got.attrs["petsc_ranks"] == 2
    assert rel(got.fields["rho"][0], ref.fields["rho"][0]) < 1e-8


@needs_petsc
@pytest.mark.petsc
def test_implicit_steppers_run_as_ts():
    """beuler and cn are PETSc TS of that type (TS options reach them); bdf2 runs its own KSP loop."""
    for stepper, ts in (("beuler", "beuler"), ("cn", "cn"), ("bdf2", "none")):
        r = pdenet.run(case_path("fp_ou_1d.toml"), write=False,
                       overrides=[PETSC, "time.steps=4", f'time.stepper="{stepper}"'])
        assert r.attrs["petsc_ts"] == ts
    # -ts_type from the case file changes the scheme: beuler under TS cn matches the built-in cn
    sets = ["time.steps=4", 'time.stepper="beuler"']
    got = pdenet.run(case_path("fp_ou_1d.toml"), write=False,
                     overrides=[*sets, PETSC, 'solver.petsc_options="-ts_type cn"'])
    cn = pdenet.run(case_path("fp_ou_1d.toml"), write=False, overrides=["time.steps=4", 'time.stepper="cn"'])
    be = pdenet.run(case_path("fp_ou_1d.toml"), write=False, overrides=sets)
    assert got.attrs["petsc_ts"] == "cn"
    assert rel(got.fields["rho"][-1], cn.fields["rho"][-1]) < 1e-10
    assert rel(got.fields["rho"][-1], be.fields["rho"][-1]) > 1e-6
