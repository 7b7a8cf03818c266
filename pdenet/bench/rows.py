"""The row-distributed dense kernel (``[solver] distribute = "rows"``) on 1 and 2 MPI ranks.

One forward + co-state (gradient) evaluation of a wide dense network: N label cells on [0, 1],
S random samples, L explicit Euler steps, K control intervals, tanh, identity head with the l2
loss, a seeded random kernel (each rank draws only its rows, :func:`normal_rows`). Each rank
count runs in its own ``mpiexec`` with one thread per rank; reported: the median seconds per
evaluation, the per-rank peak resident memory (``ru_maxrss``, which includes the interpreter,
numpy and MPI, so the figure is the peak minus the resident size before the network is built)
next to the size of the rank's block of b, and the loss (the same on every rank count, a
correctness check).

``run_rows(out=sys.stdout, N=4096, S=64, L=8, K=1, repeat=5, ranks=(1, 2))`` is the entry
point (the lead may call it from ``pdenet bench petsc``);
``python -m pdenet.bench.rows [N S L K repeat]`` runs it.
"""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import numpy as np

from .common import emit, peak_mb, spawn, time_rounds, worker_entry

# this module's import name, also when it runs as ``python -m`` (where __name__ is "__main__")
MODULE = __spec__.name


def worker(N: int | str, S: int | str, L: int | str, K: int | str, repeat: int | str) -> None:
    """One rank count (this process's MPI world); rank 0 prints one JSON line."""
    from solvers import Schedule, make_stepper

    from ..mesh import Mesh
    from ..network import DenseOperator, Head, NetworkPDE
    from ..network.distributed import RowDistributedDense, block, normal_rows, parallel
    from ..parallel import world

    N, S, L, K, repeat = (int(v) for v in (N, S, L, K, repeat))
    comm = world()
    base = peak_mb()
    mesh = Mesh([0.0], [1.0], [N], "none")
    h = mesh.cell_volume
    rows = block(N, comm.Get_rank(), comm.Get_size())
    t0 = time.perf_counter()
    b = normal_rows(np.random.default_rng(0), K, N, rows)
    b /= h * np.sqrt(N)
    init_s = time.perf_counter() - t0
    op = RowDistributedDense(b, N, comm) if parallel(comm) else DenseOperator(b)
    rng = np.random.default_rng(1)
    a = 0.1 * rng.standard_normal((K, N))
    x, y = rng.standard_normal((S, N)), rng.standard_normal((S, N))
    net = NetworkPDE(mesh, "tanh", a, op, Head("identity", "l2", h, N), Schedule(L, 1.0 / L, K),
                     make_stepper("euler"))
    # one untimed warm-up (numba kernels, BLAS), then barrier-fenced rounds
    r = time_rounds(lambda: net.loss_and_gradient(x, y), repeat, barrier=comm.barrier)
    J, grad, _, _ = r.last
    peak = comm.gather(peak_mb() - base, root=0)
    gnorm = float(np.sqrt(net.sqnorm(grad)))
    if comm.Get_rank() == 0:
        emit({"ranks": comm.Get_size(), "median_s": r.median, "times": r.times,
              "peak_rss_mb": peak, "b_block_mb": b.nbytes / 2 ** 20, "init_s": init_s,
              "loss": float(J), "grad_norm": gnorm})


def _spawn(ranks, N, S, L, K, repeat):
    return spawn(MODULE, ("rows", N, S, L, K, repeat), nprocs=ranks, ranks=ranks)


def run_rows(out: TextIO = sys.stdout, N: int = 4096, S: int = 64, L: int = 8, K: int = 1, repeat: int = 5,
             ranks: tuple[int, ...] = (1, 2)) -> dict[int, dict[str, Any]]:
    """Seconds per forward + gradient evaluation and per-rank peak memory, rows split over ranks."""
    from ..parallel import mpi_available

    print(f"bench rows: dense network N = {N}, S = {S}, L = {L} Euler steps, K = {K}, tanh, l2; one forward + "
          f"co-state evaluation, b's rows split over the ranks; OMP_NUM_THREADS=1 per rank, median of {repeat}",
          file=out)
    ok, why = mpi_available()
    res = {}
    for P in ranks:
        if P > 1 and not ok:
            print(f"  {P} ranks skipped: {why}", file=out)
            continue
        r = res[P] = _spawn(P, N, S, L, K, repeat)
        if "error" in r:
            print(f"  {P} rank(s): failed: {r['error']}", file=out)
            continue
        print(f"  {P} rank{'s' if P > 1 else ' '}  {r['median_s']:8.3f} s per evaluation  (min {min(r['times']):.3f})"
              f"  b block {r['b_block_mb']:7.1f} MB/rank  peak RSS growth per rank "
              f"{', '.join(f'{m:.0f}' for m in r['peak_rss_mb'])} MB  loss {r['loss']:.15g}", file=out)
    if 1 in res and "median_s" in res[1]:
        for P, r in res.items():
            if P > 1 and "median_s" in r:
                print(f"  {P}-rank speed-up: {res[1]['median_s'] / r['median_s']:.2f}x; loss relative difference "
                      f"{abs(r['loss'] - res[1]['loss']) / abs(res[1]['loss']):.1e}", file=out)
    return res


if __name__ == "__main__":
    if not worker_entry({"rows": worker}):
        sizes: dict[str, Any] = dict(zip(("N", "S", "L", "K", "repeat"), map(int, sys.argv[1:])))
        run_rows(**sizes)
