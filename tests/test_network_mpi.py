"""The network model with ``[solver] backend = "petsc"``: samples split over MPI ranks (data
parallel) give the built-in backend's losses, gradients, trained controls and saved states, to
round-off (the sum over ranks changes only the order of additions); the file written under
``mpiexec -n 2`` has the serial layout; an error on one rank ends all ranks with a one-line
message instead of a hang."""
import os
import subprocess

import h5py
import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.network.distributed import block, counts
from pdenet.parallel import mpi_available, mpiexec_command

from conftest import ROOT, case_path, hide_module

HAVE_MPI, MPI_WHY = mpi_available()
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason=f"network under MPI: {MPI_WHY}")
try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi4py = pytest.mark.skipif(not HAVE_MPI4PY, reason="mpi4py is not installed (scripts/setup-petsc.sh)")
PETSC = 'solver.backend="petsc"'
DIGITS = ["train.iterations=5", "data.limit=101"]       # 101 training samples: 51 + 50 on 2 ranks
# the depth case (3 samples: 2 + 1 on 2 ranks) trained by PAM with a Tikhonov term, fields saved
DEPTH = ['train.method="pam"', "train.iterations=2", "train.inner_maxiter=5", "model.tikhonov=0.01"]


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def datasets(path):
    """{name: shape} of every dataset in an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
    return out


def agree(got, ref, tol=1e-10):
    """Every control, gradient, training-history row, saved field and diagnostic agree to ``tol``."""
    for group in ("controls", "gradients", "train"):
        assert set(got.groups.get(group, {})) == set(ref.groups.get(group, {})), group
        for name, v in ref.groups.get(group, {}).items():
            w = got.groups[group][name]
            assert w.shape == v.shape, (group, name)
            finite = np.isfinite(v)
            assert np.array_equal(finite, np.isfinite(w)), (group, name)
            if finite.any():
                assert rel(w[finite], v[finite]) <= tol, (group, name, rel(w[finite], v[finite]))
    for name, v in ref.groups["analysis"].items():
        assert rel(got.groups["analysis"][name], v) <= tol, name
    assert set(got.fields) == set(ref.fields)
    for name, v in ref.fields.items():
        assert rel(got.fields[name], v) <= tol, name
    for name, v in ref.diagnostics.items():
        assert rel(got.diagnostics[name], v) <= tol, name
    for key in ("loss", "gradient_norm", "accuracy", "test_loss", "test_accuracy", "final_loss"):
        if key in ref.attrs:
            assert got.attrs[key] == pytest.approx(ref.attrs[key], rel=tol, abs=1e-14), key


# -- no MPI needed -------------------------------------------------------------------------------
def test_blocks_cover_the_samples_in_order():
    for n, size in [(101, 2), (3, 2), (7, 3), (4, 4), (2, 3)]:
        c = counts(n, size)
        assert c.sum() == n and c.max() - c.min() <= 1
        idx = np.concatenate([np.arange(n)[block(n, r, size)] for r in range(size)])
        assert np.array_equal(idx, np.arange(n))


@pytest.mark.parametrize("name, sets", [("digits_adam.toml", ["data.limit=31", "model.tikhonov=0.1",
                                                             "model.output.init=\"random\""]),
                                        ("network_depth.toml", ["model.tikhonov=0.05"])])
def test_split_loss_and_gradient_sum_to_the_whole(name, sets):
    """The reduction the ranks do, done in one process: the blocks' J and gradients with the global
    1/S, summed, plus the Tikhonov term once, are the whole-sample J and gradient."""
    model = pdenet.load_case(case_path(name), sets).model_cls(pdenet.load_case(case_path(name), sets))
    net, X, Y = model.net, model.inputs, model.targets
    S = X.shape[0]
    net.a += 0.1 * np.random.default_rng(1).standard_normal(net.a.shape)  # away from a symmetric start
    J, grad, metrics, _ = net.loss_and_gradient(X, Y)
    for size in (2, 3):
        Js, gs, ms = 0.0, {k: np.zeros_like(v) for k, v in grad.items()}, {k: 0.0 for k in metrics}
        for r in range(size):
            sl = block(S, r, size)
            j, g, m, _ = net.loss_and_gradient(X[sl], Y[sl], samples=S, regularise=False)
            Js += j
            for k in gs:
                gs[k] += g[k]
            for k in ms:
                ms[k] += m[k] * (sl.stop - sl.start) / S
        Js += 0.5 * net.tikhonov * net.regulariser()
        net._add_regulariser_grad(gs)
        assert Js == pytest.approx(J, rel=1e-12)
        for k in grad:
            assert rel(gs[k], grad[k]) < 1e-12, k
        for k in metrics:
            assert ms[k] == pytest.approx(metrics[k], rel=1e-12)


def test_missing_mpi4py_is_one_line(monkeypatch):
    hide_module(monkeypatch, "mpi4py")
    with pytest.raises(CaseError, match=r"solver.backend: mpi4py is not installed.*scripts/setup-petsc.sh"):
        pdenet.load_case(case_path("digits_adam.toml"), [PETSC])


class _FakeComm:
    """Just enough of a communicator of ``size`` ranks for the constructor's checks."""

    def __init__(self, size):
        self.size = size

    def Get_size(self):
        return self.size

    def Get_rank(self):
        return 0

    def allgather(self, value):  # the memory check compares every rank's available memory
        return [value] * self.size


def test_more_ranks_than_samples_is_rejected_while_constructing(monkeypatch):
    """The model is given its communicator: too many ranks for the samples is a one-line error
    from the constructor (before any output file exists), not from run."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "mpi4py" else real(name, *a))
    case = pdenet.load_case(case_path("network_width.toml"), [PETSC])
    with pytest.raises(CaseError, match=r"solver.backend: 2 samples cannot be split over 4 MPI ranks") as info:
        case.model_cls(case, comm=_FakeComm(4))
    assert "\n" not in str(info.value)
    case.model_cls(case, comm=_FakeComm(2))          # one sample per rank: fine


# -- one rank ----------------------------------------------------------------------------------
@needs_mpi4py
@pytest.mark.petsc
def test_one_rank_is_the_builtin_path():
    ref = pdenet.run(case_path("network_depth.toml"), overrides=DEPTH, write=False)
    got = pdenet.run(case_path("network_depth.toml"), overrides=[*DEPTH, PETSC], write=False)
    assert got.attrs["petsc_ranks"] == 1
    agree(got, ref, tol=0.0)   # one process takes exactly the built-in code path


# -- two ranks ---------------------------------------------------------------------------------
def run_mpi(args, cwd, timeout=300):
    cmd = mpiexec_command(2, ["-m", "pdenet.cli", *args])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(cwd))


def sets(overrides):
    return [a for s in overrides for a in ("--set", s)]


@needs_mpi
@pytest.mark.petsc
@pytest.mark.parametrize("name, overrides, tol", [
    ("digits_adam.toml", DIGITS, 1e-10),                                    # full-batch Adam, softmax
    ("digits_adam.toml", ['train.method="gd"', "train.iterations=4", "train.batch_size=7",
                          "train.lr=0.5", "data.limit=41", "train.eval_every=2"], 1e-10),  # odd mini-batches
    ("network_depth.toml", DEPTH, 1e-10),                                   # PAM, l2, saved f, u, r
    # implicit stepper: Newton-Krylov's stopping test sees the rank's samples only, so the
    # agreement is to the Newton tolerance (1e-12 per step), not round-off
    ("network_depth.toml", ['time.stepper="cn"', 'train.method="adam"', "train.iterations=3",
                            "train.lr=0.05"], 1e-8),
])
def test_two_ranks_match_builtin(tmp_path, name, overrides, tol):
    ref_path = tmp_path / "serial.h5"
    ref = pdenet.run(case_path(name), output=str(ref_path), overrides=overrides)
    out = tmp_path / "two.h5"
    p = run_mpi(["run", case_path(name), "-o", str(out), *sets([*overrides, PETSC])], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("wrote ") == 1        # rank 0 reports and writes
    got = pdenet.open(out)
    assert got.status == "complete" and got.attrs["petsc_ranks"] == 2
    agree(got, ref, tol)
    # the same layout as the serial file: every dataset, with its shape
    assert datasets(out) == datasets(ref_path)


@needs_mpi
@pytest.mark.petsc
def test_error_on_one_rank_aborts_all(tmp_path):
    """Sample 2 (rank 1's only sample) overflows: rank 1 fails while rank 0 waits in a collective;
    both must end (no hang), non-zero, with one error line."""
    bad = [PETSC, 'data.inputs=["sin(pi*y)", "y*(1 - y)", "1e300*cos(3*y)"]', 'model.activation="identity"',
           'model.kernel.expression="-50"']
    p = run_mpi(["run", case_path("network_depth.toml"), "-q", "-o", str(tmp_path / "bad.h5"), *sets(bad)],
                tmp_path, timeout=120)
    assert p.returncode != 0
    # one error line, from the failing rank (rank 0, stopped by the abort's SIGTERM, may add that it
    # was interrupted and kept its partial file)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("pdenet: error:")]
    assert len(lines) == 1 and "(rank 1)" in lines[0] and "non-finite state" in lines[0], p.stderr
    # (msa/emsa run on several ranks since issue 15: tests/test_replicas_mpi.py)
