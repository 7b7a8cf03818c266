"""Elastic-SGD and Parle with their replicas split over 2 MPI ranks (backend petsc) equal the serial run
(the replicas are exchanged by an allgather and summed in replica order, so to round-off of the final
data-parallel evaluation only)."""
import time

import numpy as np
import pytest

import pdenet
from conftest import case_path
from test_network_mpi import HAVE_MPI, MPI_WHY, PETSC, agree, run_mpi, sets

needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason=f"replicas under MPI: {MPI_WHY}")
COMMON = ["data.limit=101", "train.batch_size=16", 'train.metric="l2"', "train.eval_every=2", "train.lr=1",
          "train.coupling=10"]


@needs_mpi
@pytest.mark.petsc
@pytest.mark.parametrize("overrides", [
    ['train.method="elastic"', "train.iterations=6", "train.replicas=2"],            # one replica per rank
    ['train.method="parle"', "train.iterations=3", "train.replicas=3", "train.langevin_steps=3",
     "train.langevin_lr=1", "train.langevin_noise=1e-6"],                             # 2 + 1 replicas, noise
])
def test_replicas_on_two_ranks_equal_the_serial_run(tmp_path, overrides):
    overrides = [*COMMON, *overrides]
    ref = pdenet.run(case_path("digits_adam.toml"), output=str(tmp_path / "serial.h5"), overrides=overrides)
    out = tmp_path / "two.h5"
    p = run_mpi(["run", case_path("digits_adam.toml"), "-o", str(out), *sets([*overrides, PETSC])], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    got = pdenet.open(out)
    assert got.attrs["petsc_ranks"] == 2
    agree(got, ref, 1e-10)
    # the training history itself is the serial one to round-off (every rank sums the replicas
    # alike; a norm such as `step` may differ in its last bit when BLAS runs another thread count
    # in the serial process than in the ranks)
    for name, v in ref.train.items():
        np.testing.assert_allclose(got.train[name], v, rtol=1e-13, atol=1e-300, err_msg=name)
    assert ref.train["gradient_evaluations"][-1] > 0


# -- MSA / E-MSA with the samples over the ranks ------------------------------------------------------
@needs_mpi
@pytest.mark.petsc
@pytest.mark.parametrize("name, overrides, tol", [
    # E-MSA as in cases/digits_emsa.toml: a, b and the output layer, mini-batches of 20 split 10 + 10
    ("digits_emsa.toml", ["data.limit=61", "train.iterations=2", "train.batch_size=20", "train.inner_maxiter=3",
                          "train.inner_tol=1e-14", "train.eval_every=1"], 1e-10),
    # plain MSA, a only (tanh, box): the per-cell search of a flat maximum fixes the maximiser only to
    # ~sqrt(round-off) (the per-sample states differ by round-off between block sizes), so 1e-6
    ("digits_emsa.toml", ['train.method="msa"', 'train.controls=["a"]', "train.box_a=[-1, 1]", "data.limit=41",
                          "train.iterations=2", "train.batch_size=0", "train.eval_every=1"], 1e-6),
    # the toy: two samples, one per rank, bang-bang cycle of MSA
    ("toy_msa.toml", ['data.inputs=["0", "0.1"]', 'data.targets=["0.5"]'], 1e-10),
    # E-MSA with the Tikhonov term (the running cost in each interval's maximisation), full batch
    ("digits_emsa.toml", ["data.limit=41", "train.iterations=2", "train.batch_size=0", "train.inner_maxiter=3",
                          "train.inner_tol=1e-14", "model.tikhonov=1e-3", "train.eval_every=1"], 1e-10),
])
def test_msa_emsa_on_two_ranks_equal_one_rank(tmp_path, name, overrides, tol):
    ref = pdenet.run(case_path(name), output=str(tmp_path / "serial.h5"), overrides=overrides)
    out = tmp_path / "two.h5"
    p = run_mpi(["run", case_path(name), "-o", str(out), *sets([*overrides, PETSC])], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    got = pdenet.open(out)
    assert got.attrs["petsc_ranks"] == 2
    agree(got, ref, tol)
    assert len(ref.train["loss"]) > 2
