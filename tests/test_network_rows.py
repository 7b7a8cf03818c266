"""The network model with ``[solver] distribute = "rows"``: the dense kernel b split in row blocks over
MPI ranks (pdenet/network/distributed.py, RowDistributedDense). The operator products, gradient
blocks, Tikhonov term and norms equal the whole-kernel ones; a 2-rank run (uneven row split
included) gives the built-in backend's losses, gradients, trained controls, saved states and file
layout to round-off; unsupported combinations are one-line case errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pdenet
from pdenet.errors import CaseError
from pdenet.network.distributed import block, normal_rows

from conftest import ROOT, case_path
from test_network_mpi import HAVE_MPI4PY, agree, datasets, needs_mpi, needs_mpi4py, run_mpi, sets

ROWS = ['solver.backend="petsc"', 'solver.distribute="rows"']


# -- no MPI needed -------------------------------------------------------------------------------
def test_random_rows_are_the_serial_rows():
    """Each rank draws its rows of rng.standard_normal((K, N, N)) without forming the whole array."""
    K, N = 3, 11
    whole = np.random.default_rng(5).standard_normal((K, N, N))
    for size in (1, 2, 3, 11, 12):
        for r in range(size):
            rows = block(N, r, size)
            assert np.array_equal(normal_rows(np.random.default_rng(5), K, N, rows), whole[:, rows])


def test_rows_needs_the_petsc_backend():
    with pytest.raises(CaseError, match=r"solver.distribute: .*needs backend = \"petsc\""):
        pdenet.load_case(case_path("network_depth.toml"), ['solver.distribute="rows"'])


@needs_mpi4py
@pytest.mark.petsc
@pytest.mark.parametrize("extra, message", [
    (['model.kernel.kind="lowrank"', 'model.kernel.init="random"'], "splits a dense kernel; kernel kind is 'lowrank'"),
    (['model.kernel.kind="convolution"'], "kernel kind is 'convolution'"),
    (['train.method="pam"'], "gd or adam only; pam needs the whole kernel"),
    (['train.method="msa"', "train.box_a=[-1, 1]", 'time.stepper="euler"'], "gd or adam only; msa"),
    (["model.analysis=true"], "model.analysis needs the whole kernel"),
])
def test_bad_combinations_are_one_line(extra, message):
    with pytest.raises(CaseError) as info:
        pdenet.load_case(case_path("network_depth.toml"), [*ROWS, *extra])
    text = str(info.value)
    assert "solver.distribute" in text and message in text and "\n" not in text, text


@needs_mpi4py
@pytest.mark.petsc
def test_one_process_is_the_builtin_path():
    over = ['train.method="adam"', "train.iterations=2"]
    ref = pdenet.run(case_path("network_depth.toml"), overrides=over, write=False)
    got = pdenet.run(case_path("network_depth.toml"), overrides=[*over, *ROWS], write=False)
    assert got.attrs["petsc_ranks"] == 1
    agree(got, ref, tol=0.0)


# -- two ranks -----------------------------------------------------------------------------------
OPERATOR_SCRIPT = r"""
import numpy as np
from mpi4py import MPI
from pdenet.mesh import Mesh
from pdenet.network import DenseOperator, Head, NetworkPDE
from pdenet.network.distributed import RowDistributedDense, block
from pdenet.network.pde import default_schedule
from solvers import make_stepper

comm = MPI.COMM_WORLD
rng = np.random.default_rng(7)
K, N, S = 2, 7, 3                       # 7 rows on 2 ranks: 4 + 3
b = rng.standard_normal((K, N, N))
f, w = rng.standard_normal((S, N)), rng.standard_normal((S, N))
rows = block(N, comm.rank, comm.size)
whole, split = DenseOperator(b), RowDistributedDense(b[:, rows].copy(), N, comm)
out = {}
for k in range(K):
    out[f"raw{k}"] = np.abs(split.raw(f, k) - whole.raw(f, k)).max() / np.abs(whole.raw(f, k)).max()
    out[f"raw_T{k}"] = np.abs(split.raw_T(w, k) - whole.raw_T(w, k)).max() / np.abs(whole.raw_T(w, k)).max()
    out[f"matrix{k}"] = np.abs(split.matrix(k, 0.5) - whole.matrix(k, 0.5)).max()
G, g = {"b": np.zeros((K, N, N))}, {"b": np.zeros(split.b.shape)}
for fresh in (True, False):
    whole.add_grad(G, 1, w, f, -0.3, fresh)
    split.add_grad(g, 1, w, f, -0.3, fresh)
out["grad_block"] = np.abs(g["b"] - G["b"][:, rows]).max() / np.abs(G["b"]).max()
gathered = split.gather(g["b"])
out["gather"] = 0.0 if comm.rank else float(np.abs(gathered - G["b"]).max())
assert (gathered is None) == (comm.rank != 0)
# the network: Tikhonov term and norms add the b blocks over ranks
mesh = Mesh([0.0], [1.0], [N], "none")
sched = default_schedule(4, 1.0, K)
a = rng.standard_normal((K, N))
nets = [NetworkPDE(mesh, "tanh", a.copy(), op, Head("identity", "l2", mesh.cell_volume, N), sched, make_stepper("rk4"), 0.3)
        for op in (whole, split)]
out["regulariser"] = abs(nets[1].regulariser() - nets[0].regulariser()) / nets[0].regulariser()
target = rng.standard_normal((S, N))
(J0, g0, _, fT0), (J1, g1, _, fT1) = (n.loss_and_gradient(f, target) for n in nets)
out["loss"] = abs(J1 - J0) / abs(J0)
out["fT"] = np.abs(fT1 - fT0).max() / np.abs(fT0).max()
out["grad_a"] = np.abs(g1["a"] - g0["a"]).max() / np.abs(g0["a"]).max()
out["grad_b"] = np.abs(g1["b"] - g0["b"][:, rows]).max() / np.abs(g0["b"]).max()
out["sqnorm"] = abs(nets[1].sqnorm(g1) - nets[0].sqnorm(g0)) / nets[0].sqnorm(g0)
worst = comm.allreduce(max(out.values()), op=MPI.MAX)
if comm.rank == 0:
    print("WORST", worst, {k: float(v) for k, v in out.items()})
"""


@needs_mpi
@pytest.mark.petsc
def test_operator_pieces_match_the_whole_kernel(tmp_path):
    """raw, raw_T, add_grad, matrix, gather, the Tikhonov term, the gradient norm and a whole
    forward + adjoint solve (rk4, Tikhonov) with b in uneven row blocks against DenseOperator."""
    script = tmp_path / "rows.py"
    script.write_text(OPERATOR_SCRIPT)
    from pdenet.parallel import mpiexec_command

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(mpiexec_command(2, [str(script)]), capture_output=True, text=True, timeout=120, env=env,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    worst = float(p.stdout.split("WORST")[1].split()[0])
    assert worst < 1e-13, p.stdout


@needs_mpi
@pytest.mark.petsc
@pytest.mark.parametrize("name, overrides", [
    # 33 label cells: 17 + 16 rows; Adam with a Tikhonov term, saved f, u, r; expression kernel
    ("network_depth.toml", ['train.method="adam"', "train.iterations=3", "train.lr=0.05", "model.tikhonov=0.05",
                            "mesh.cells=[33]"]),
    # implicit stepper: the state is whole on every rank, so Newton agrees to round-off here
    ("network_depth.toml", ['time.stepper="cn"', 'train.method="gd"', "train.iterations=2",
                            'model.kernel.init="random"', "model.kernel.scale=0.5"]),
    # 2-D digits, random kernel and W, seeded mini-batches, held-out evaluation, softmax
    ("digits_adam.toml", ["train.iterations=4", "data.limit=60", 'model.kernel.init="random"',
                          "model.kernel.scale=0.5", 'model.output.init="random"', "train.batch_size=16",
                          "model.tikhonov=0.01", "train.eval_every=2"]),
])
def test_two_ranks_match_builtin(tmp_path, name, overrides):
    ref_path = tmp_path / "serial.h5"
    ref = pdenet.run(case_path(name), output=str(ref_path), overrides=overrides)
    out = tmp_path / "rows.h5"
    p = run_mpi(["run", case_path(name), "-o", str(out), *sets([*overrides, *ROWS])], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("wrote ") == 1
    got = pdenet.open(out)
    assert got.status == "complete" and got.attrs["petsc_ranks"] == 2
    agree(got, ref, 1e-10)
    assert datasets(out) == datasets(ref_path)


@needs_mpi
@pytest.mark.petsc
def test_bench_rows_runs_and_agrees():
    """The benchmark's workers (pdenet/bench/rows.py), tiny: 1 and 2 ranks give the same loss."""
    import io

    from pdenet.bench.rows import run_rows

    buf = io.StringIO()
    res = run_rows(buf, N=65, S=4, L=2, K=2, repeat=1)
    assert all("median_s" in r for r in res.values()), buf.getvalue()
    assert res[2]["loss"] == pytest.approx(res[1]["loss"], rel=1e-12)
    assert res[2]["b_block_mb"] < res[1]["b_block_mb"]
    assert "2-rank speed-up" in buf.getvalue()
