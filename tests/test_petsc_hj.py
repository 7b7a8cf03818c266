"""The hamilton-jacobi model on PETSc (pdenet.hj.petsc, solvers.petsc_grid_ts): the padded-array
kernels equal the serial line kernels on any box decomposition; SSP-RK3 through TS agrees with the
built-in backend to round-off on 1 and 2 ranks; TS arkimex converges to the exact (Cole-Hopf)
solution like the built-in IMEX and agrees across rank counts to the Krylov tolerance; options
reach the TS; unsupported combinations are one-line case errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.hj import kernels as K
from pdenet.hj.scheme import HJScheme
from pdenet.mesh import Mesh
from pdenet.parallel import mpi_available, mpiexec_command
from solvers import petsc_backend as pb

from conftest import ROOT, case_path, run_cli, hide_module

HAVE_PETSC, PETSC_WHY = pb.available()
needs_petsc = pytest.mark.skipif(not HAVE_PETSC, reason=f"PETSc backend: {PETSC_WHY}")
PETSC = 'solver.backend="petsc"'
CASE1 = case_path("hj_quadratic_1d.toml")
CASE2 = case_path("hj_quadratic_2d.toml")
SETS1 = ["mesh.cells=[40]"]
SETS2 = ["mesh.cells=[16,16]", "time.outputs=2", "time.t_end=0.2"]
IMEX = 'time.stepper="imex"'


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# -- no PETSc needed ---------------------------------------------------------------------
def _padded_block(u, owned, g, periodic):
    """The owned box of ``u`` with g padding cells per side as a rank sees it after the ghost
    exchange: neighbours' values and periodic wraps filled, NaN beyond a physical boundary."""
    idx, inside = [], []
    for s, n, per in zip(owned, u.shape, periodic):
        j = np.arange(s.start - g, s.stop + g)
        inside.append((j >= 0) & (j < n) | per)
        idx.append(j % n)
    block = u[np.ix_(*idx)].copy()
    mask = np.ones(block.shape, bool)
    for d, ok in enumerate(inside):
        shape = [1] * u.ndim
        shape[d] = -1
        mask &= ok.reshape(shape)
    block[~mask] = np.nan
    return block


@pytest.mark.parametrize("cells,boundary,order", [
    ((24,), "extrapolate", 5), ((24,), "periodic", 1),
    ((12, 10), ["periodic", "extrapolate"], 5), ((12, 10), "extrapolate", 1),
    ((8, 6, 7), ["extrapolate", "periodic", "extrapolate"], 5)])
def test_padded_kernels_equal_serial_kernels_on_every_block(cells, boundary, order):
    nd = len(cells)
    mesh = Mesh([-1.0] * nd, [1.5] * nd, list(cells), boundary)
    scheme = HJScheme(mesh, nu=0.1, order=order)
    rng = np.random.default_rng(3)
    u = rng.standard_normal(cells) + sum(np.meshgrid(*[np.linspace(0, 2, n) ** 2 for n in cells], indexing="ij"))
    dm, dp, lap = (a.copy() for a in scheme.derivatives(u))
    g = K.ghost_width(order, scheme.lap_order)
    # split every axis in two unequal blocks (each end block owns >= 3 cells)
    cuts = [(0, max(3, n // 2 - 1), n) for n in cells]
    for corner in np.ndindex(*(2,) * nd):
        owned = tuple(slice(c[k], c[k + 1]) for c, k in zip(cuts, corner))
        block = _padded_block(u, owned, g, scheme.periodic)
        for d in range(nd):
            lo = owned[d].start == 0 and not scheme.periodic[d]
            hi = owned[d].stop == cells[d] and not scheme.periodic[d]
            if lo or hi:
                K.extrapolate_padding(K.as3(block, d), g, lo, hi)
        own = tuple(s.stop - s.start for s in owned)
        own3 = (1,) * (3 - nd) + own
        bdm = np.empty((nd,) + own3)
        bdp = np.empty((nd,) + own3)
        blap = np.empty(own3)
        K.padded_derivatives(block.reshape((1,) * (3 - nd) + block.shape), g, np.asarray(mesh.spacing),
                             order, scheme.lap_order, bdm, bdp, blap)
        want = lambda a: a.reshape((-1,) + tuple(cells))[(slice(None),) + owned]  # noqa: E731
        # the same arithmetic on the same values: equal, not merely close (and no NaN corner read)
        assert np.array_equal(bdm.reshape((nd,) + own), want(dm)), corner
        assert np.array_equal(bdp.reshape((nd,) + own), want(dp)), corner
        assert np.array_equal(blap.reshape(own), want(lap)[0]), corner


def test_unsupported_combinations_are_one_line_case_errors():
    with pytest.raises(CaseError, match=r"solver.backend: backend petsc runs the steppers ssp-rk3, euler, imex"):
        pdenet.load_case(CASE1, [PETSC, 'time.stepper="imex-euler"'])
    with pytest.raises(CaseError, match="backend petsc runs the quadratic Hamiltonian"):
        pdenet.load_case(CASE1, [PETSC, 'model.hamiltonian="general"', 'model.H="p^2/2"'])
    p = run_cli("validate", CASE1, "--set", PETSC, "--set", 'time.stepper="imex-euler"')
    assert p.returncode != 0 and p.stderr.strip().count("\n") == 0 and "imex-euler" in p.stderr


def test_missing_petsc_is_one_line(monkeypatch):
    hide_module(monkeypatch, "petsc4py")
    with pytest.raises(CaseError, match=r"solver.backend: petsc4py is not installed.*scripts/setup-petsc.sh"):
        pdenet.load_case(CASE1, [PETSC])


# -- one rank -----------------------------------------------------------------------------
@needs_petsc
@pytest.mark.petsc
@pytest.mark.parametrize("case,sets", [(CASE1, SETS1), (CASE1, SETS1 + ["model.order=5"]), (CASE2, SETS2)])
def test_ssp_rk3_on_ts_matches_builtin(case, sets):
    ref = pdenet.run(case, overrides=sets, write=False)
    got = pdenet.run(case, overrides=sets + [PETSC], write=False)
    assert got.attrs["petsc_solver"] == "python/shu-osher-rk3" and got.attrs["petsc_ranks"] == 1
    assert got.attrs["steps"] == ref.attrs["steps"]          # the same CFL steps
    assert np.allclose(got.time, ref.time, rtol=0, atol=1e-15)
    for k in range(len(ref.time)):
        assert rel(got.fields["u"][k], ref.fields["u"][k]) < 1e-12, k
    assert got.attrs["final_error_u_max"] == pytest.approx(ref.attrs["final_error_u_max"], rel=1e-9)


@needs_petsc
@pytest.mark.petsc
def test_arkimex_converges_like_builtin_imex():
    # first-order scheme: both IMEX methods converge at first order to the Cole-Hopf closed form,
    # with errors within a few per cent of each other (different tableaux, same space discretisation)
    errs = {}
    for n in (20, 40, 80):
        for be in ("builtin", "petsc"):
            r = pdenet.run(CASE1, overrides=[f"mesh.cells=[{n}]", IMEX, f'solver.backend="{be}"'], write=False)
            errs[be, n] = r.attrs["final_error_u_max"]
            if be == "petsc":
                assert r.attrs["petsc_solver"].startswith("arkimex/") and r.attrs["krylov_iterations"] > 0
    for be in ("builtin", "petsc"):
        assert errs[be, 20] / errs[be, 40] > 1.8 and errs[be, 40] / errs[be, 80] > 1.8, errs
    for n in (20, 40, 80):
        assert abs(errs["petsc", n] - errs["builtin", n]) < 0.05 * errs["builtin", n], errs


@needs_petsc
@pytest.mark.petsc
def test_options_from_case_and_command_line(tmp_path):
    # PETSc's own SSP(4,3) (Ketcheson) instead of Shu-Osher: a different third-order method with the
    # same steps, so it agrees with the built-in backend to the time-discretisation error only
    ref = pdenet.run(CASE1, overrides=SETS1, write=False)
    got = pdenet.run(CASE1, overrides=SETS1 + [PETSC, 'solver.petsc_options="-ts_type ssp -ts_ssp_type rks3"'],
                     write=False)
    assert got.attrs["petsc_solver"] == "ssp/rks3"
    assert 1e-12 < rel(got.fields["u"][-1], ref.fields["u"][-1]) < 1e-3
    # the command line wins over the case file; nothing stays behind for the next run
    out = tmp_path / "o.h5"
    p = run_cli("run", CASE1, "-q", "-o", str(out), *[a for s in SETS1 + [PETSC, IMEX] for a in ("--set", s)],
                "--set", 'solver.petsc_options="-ts_arkimex_type 2e -pc_type jacobi"', "--petsc", "-pc_type", "none")
    assert p.returncode == 0, p.stderr
    assert pdenet.open(out).attrs["petsc_solver"] == "arkimex/2e gmres/none"
    r = pdenet.run(CASE1, overrides=SETS1 + [PETSC, IMEX], write=False)
    assert r.attrs["petsc_solver"] == "arkimex/3 gmres/ilu"


# -- two ranks ----------------------------------------------------------------------------
@needs_petsc
@pytest.mark.petsc
@pytest.mark.parametrize("ranks", [1, 2])
def test_ranks_match_builtin(ranks, tmp_path):
    if ranks > 1 and not mpi_available()[0]:
        pytest.skip(mpi_available()[1])
    script = os.path.join(ROOT, "tests", "mpi", "hj_check.py")
    out = tmp_path / "hj.npz"
    runs = [(CASE1, SETS1), (CASE2, SETS2), (CASE1, SETS1 + [IMEX]), (CASE2, SETS2 + [IMEX])]
    args = [str(out)]
    for case, sets in runs:
        args += [case, *[a for s in sets for a in ("--set", s)], "--"]
    cmd = [sys.executable, script, *args] if ranks == 1 else mpiexec_command(ranks, [script, *args])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == f"OK {ranks}"
    got = np.load(out)
    for k, (case, sets) in enumerate(runs[:2]):                       # SSP-RK3: the built-in answers
        ref = pdenet.run(case, overrides=sets, write=False)
        assert int(got[f"ranks{k}"]) == ranks
        assert rel(got[f"u{k}"], ref.fields["u"]) < 1e-12, case
    for k, (case, sets) in enumerate(runs[2:], start=2):              # arkimex: PETSc on one rank
        one = pdenet.run(case, overrides=sets + [PETSC], write=False)
        assert int(got[f"ranks{k}"]) == ranks
        assert rel(got[f"u{k}"], one.fields["u"]) < 1e-10, case
        assert float(got[f"error{k}"]) == pytest.approx(one.attrs["final_error_u_max"], rel=1e-8)
