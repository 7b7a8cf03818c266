"""``pdenet bench petsc``: the 2-D Fokker-Planck steady state on PETSc (GMRES + GAMG
algebraic multigrid, 1 and 2 MPI ranks) against scipy's sparse direct solver, and the
``training`` measurement: one full-batch Adam iteration of the digits network with its samples
split over 1 and 2 MPI ranks (the network's ``backend = "petsc"``, :mod:`pdenet.network.distributed`).

The problem is the one of ``pdenet bench fokker-planck`` (f = |x|^2/2, D = 0.5, no-flux,
[-5, 5]^2): its steady state is the discrete Gibbs density, known in closed form, so every
contender's error is measured against it. Each contender runs in its own process with one
thread per rank; the matrix is built outside the timing, its conversion to PETSc and the
multigrid set-up are inside.

``run_explicit`` (also part of ``pdenet bench petsc``): forward-Euler steps of the same problem
on 2048x2048 (quick: 256x256): the built-in numba kernel (``explicit_steps``) and the DMDA stepper
(``pdenet.fokkerplanck.dmda``) on 1 and 2 ranks, per step, split into the ghost exchange and the
kernel pass, with the memory bandwidth achieved against a numpy copy measured in the same
process (on every rank at once, for the 2-rank figure).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import numpy as np

from .common import emit, spawn, time_rounds, worker_entry

# this module's import name, also when it runs as ``python -m`` (where __name__ is "__main__")
MODULE = __spec__.name

SIZES = {"full": 1024, "quick": 128}


def _problem(side):
    from ..fokkerplanck import FokkerPlanckOperator
    from ..mesh import Mesh

    mesh = Mesh([-5.0, -5.0], [5.0, 5.0], [side, side], "noflux")
    op = FokkerPlanckOperator(mesh, potential=lambda x, y: 0.5 * (x * x + y * y), diffusion=0.5)
    return mesh, op


def worker(kind: str, size: str, repeat: int | str) -> None:
    """One steady-state contender (scipy-lu | scipy-spsolve | petsc-gamg); rank 0 prints one JSON line."""
    repeat = int(repeat)
    side = SIZES[size]
    mesh, op = _problem(side)
    A = op.matrix()
    w = np.full(mesh.size, mesh.cell_volume)
    gibbs = op.gibbs().ravel()
    rank = 0
    info: dict[str, Any] = {"kind": kind}
    if kind == "scipy-lu":
        from solvers.linear import steady_state

        def fn():
            return steady_state(A, w, pivot=op.has_cross_terms)[0]
    elif kind == "scipy-spsolve":
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        def fn():
            # the same pinned system PETSc solves, by scipy's default sparse direct solver
            n, r = A.shape[0], int(np.argmax(np.abs(A.diagonal())))
            keep = np.ones(n)
            keep[r] = 0.0
            D = sp.diags(keep)
            M = (D @ A @ D + sp.csr_matrix(([1.0], ([r], [r])), shape=(n, n))).tocsc()
            b = -A[:, r].toarray().ravel()
            b[r] = 1.0
            p = spla.spsolve(M, b)
            return p / (w @ p)
    else:  # petsc-gamg
        from solvers import petsc_backend as pb

        from ..parallel import world

        comm = world()
        rank = comm.Get_rank()
        opts = os.environ.get("PDENET_BENCH_PETSC_OPTIONS", "")

        def fn():
            p, _, meta = pb.steady_state(A, w, comm=comm, options=opts, rtol=1e-10)
            info.update(meta)
            return p
        info["ranks"] = comm.Get_size()
    r = time_rounds(fn, repeat, warm_up=False)
    p = r.last
    info.update(median_s=r.median, times=r.times,
                max_rel_error_vs_gibbs=float(np.abs(p - gibbs).max() / gibbs.max()))
    if rank == 0:
        emit(info)


def training_worker(size: str, repeat: int | str) -> None:
    """One full-batch Adam iteration of the digits network (the problem of ``pdenet bench
    training``: cases/digits_adam.toml's network, seeded random start), samples over the ranks."""
    from solvers import Schedule, make_stepper, optim

    from ..mesh import Mesh
    from ..network import DenseOperator, Head, NetworkPDE
    from ..network.distributed import DataParallel, parallel
    from ..network.objective import NetworkObjective
    from ..parallel import world
    from .training import LR, SIZES as TSIZES, problem

    repeat = int(repeat)
    comm = world()
    iters, limit = TSIZES[size]["iterations"], TSIZES[size]["limit"]
    x, y, p0, h, tau = problem(limit)
    L = p0["a"].shape[0]
    net = NetworkPDE(Mesh([0, 0], [1, 1], [8, 8]), "tanh", p0["a"].copy(), DenseOperator(p0["b"].copy()),
                     Head("classes", "softmax", h, 64, p0["W"].copy(), p0["mu"].copy()),
                     Schedule(L, tau, L), make_stepper("euler"))
    engine = DataParallel(net, comm) if parallel(comm) else net
    obj = NetworkObjective(net, x, y, engine=engine)
    obj.loss_and_gradient()     # warm-up: numba kernels loaded, BLAS started
    first = []

    def record_first(i):
        if i == 0:
            first.append(float(engine.loss(x, y)[0]))
    r = time_rounds(lambda: optim.adam(obj, iters, LR), repeat, warm_up=False, per=iters, barrier=comm.barrier,
                    after_round=record_first)
    if comm.Get_rank() == 0:
        emit({"kind": "training", "median_s": r.median, "times": r.times,
              "ranks": comm.Get_size(), "samples": len(y), "iterations": iters,
              "first_block_loss": first[0] if first else None})


def _spawn(kind, size, repeat, ranks=1):
    if kind == "training":
        args = ("training", size, repeat)
    else:
        args = ("explicit" if kind.startswith("explicit") else "steady", kind, size, repeat)
    return spawn(MODULE, args, nprocs=ranks, kind=kind)


def run_petsc(size: str = "full", repeat: int = 1, threads: int | None = None,
              out: TextIO = sys.stdout) -> dict[str, Any]:
    """Every part of ``pdenet bench petsc``, one thread per process (``threads`` is ignored)."""
    from solvers import petsc_backend as pb

    from ..parallel import mpi_available

    side = SIZES[size]
    ok, why = pb.available()
    print(f"bench petsc: 2-D Fokker-Planck steady state {side}x{side} (N = {side * side}), f = |x|^2/2, "
          f"D = 0.5, no-flux; 1 thread per process, median of {repeat}", file=out)
    res = {"scipy-lu": _spawn("scipy-lu", size, repeat), "scipy-spsolve": _spawn("scipy-spsolve", size, repeat)}
    if ok:
        res["petsc-gamg"] = _spawn("petsc-gamg", size, repeat)
        if mpi_available()[0]:
            res["petsc-gamg-2"] = _spawn("petsc-gamg", size, repeat, ranks=2)
    else:
        print(f"  PETSc skipped: {why}", file=out)
    labels = {"scipy-lu": "pdenet built-in (splu, pinned)", "scipy-spsolve": "scipy spsolve (pinned)",
              "petsc-gamg": "PETSc GMRES+GAMG, 1 rank", "petsc-gamg-2": "PETSc GMRES+GAMG, 2 ranks"}
    for k, r in res.items():
        if "error" in r:
            print(f"  {labels[k]:<34} failed: {r['error']}", file=out)
            continue
        extra = f"  {r['iterations']} iterations" if "iterations" in r else ""
        print(f"  {labels[k]:<34} {r['median_s']:9.3f} s   max error vs Gibbs / max "
              f"{r['max_rel_error_vs_gibbs']:.1e}{extra}", file=out)
    for peer in ("scipy-spsolve", "scipy-lu"):
        for ours in ("petsc-gamg", "petsc-gamg-2"):
            if "median_s" in res.get(peer, {}) and "median_s" in res.get(ours, {}):
                print(f"  {labels[ours]} vs {labels[peer]}: "
                      f"{res[peer]['median_s'] / res[ours]['median_s']:.1f}x faster", file=out)
    if "median_s" in res.get("petsc-gamg", {}) and "median_s" in res.get("petsc-gamg-2", {}):
        print(f"  2-rank speed-up of the GAMG solve: "
              f"{res['petsc-gamg']['median_s'] / res['petsc-gamg-2']['median_s']:.2f}x", file=out)
    res["explicit"] = run_explicit(size, repeat, out)
    res.update(run_training_petsc(size, repeat, out))
    from .rows import run_rows

    small: dict[str, Any] = dict(N=512, S=16, L=4, repeat=2) if size == "quick" else {}
    res["rows"] = run_rows(out, **small)
    return res


def run_training_petsc(size: str = "full", repeat: int = 1, out: TextIO = sys.stdout) -> dict[str, Any]:
    """The ``training`` measurement: seconds per full-batch Adam iteration on 1 and 2 ranks."""
    from ..parallel import mpi_available

    ok, why = mpi_available()
    print("bench petsc training: digits network (N = 64, L = 4, dense, tanh, softmax), one full-batch "
          "Adam iteration, samples split over the ranks (backend petsc); OMP_NUM_THREADS=1 per rank, "
          f"median of {max(repeat, 5)} blocks", file=out)
    if not ok:
        print(f"  skipped: {why}", file=out)
        return {}
    res = {"training-1": _spawn("training", size, max(repeat, 5)),
           "training-2": _spawn("training", size, max(repeat, 5), ranks=2)}
    for k, r in res.items():
        if "error" in r:
            print(f"  {k}: failed: {r['error']}", file=out)
            continue
        print(f"  {r['ranks']} rank{'s' if r['ranks'] > 1 else ' '}  {1e3 * r['median_s']:8.2f} ms per iteration "
              f"({r['samples']} samples, blocks of {r['iterations']} iterations; loss after the first block "
              f"{r['first_block_loss']:.12f})", file=out)
    if all("median_s" in r for r in res.values()):
        print(f"  2-rank speed-up of a training iteration: "
              f"{res['training-1']['median_s'] / res['training-2']['median_s']:.2f}x", file=out)
    return res


# ---------------------------------------------------------------------------
# explicit steps on a DMDA: 1 and 2 ranks against the built-in kernel
EXPLICIT = {"full": dict(side=2048, steps=20), "quick": dict(side=256, steps=20)}


def _explicit_problem(side):
    mesh, op = _problem(side)
    # largest positivity-preserving step 1 / max |A_ii| from the face coefficients (no matrix)
    diag = np.zeros(mesh.cells)
    for d in range(mesh.ndim):
        n = mesh.cells[d]
        diag += (np.take(op.cR[d], np.arange(0, n), axis=d) + np.take(op.cL[d], np.arange(1, n + 1), axis=d)) \
            / mesh.spacing[d]
    dt = 0.5 / diag.max()
    x, y = mesh.centres()
    rho0 = np.exp(-((x - 1.0) ** 2 + y ** 2))
    return mesh, op, dt, rho0 / mesh.integrate(rho0)


def explicit_worker(kind: str, size: str, repeat: int | str) -> None:
    """One contender of run_explicit; prints one JSON line (rank 0)."""
    repeat = int(repeat)
    cfg = EXPLICIT[size]
    side, steps = cfg["side"], cfg["steps"]
    mesh, op, dt, rho0 = _explicit_problem(side)
    info: dict[str, Any] = {"kind": kind, "side": side, "steps": steps, "ranks": 1}
    barrier = lambda: None  # noqa: E731
    if kind == "explicit-builtin":
        op.explicit_steps(rho0, dt, 1)                      # compile / load the kernel

        def fn():
            return op.explicit_steps(rho0, dt, steps)
        nbytes = 6 * 8 * mesh.size                          # rho, 4 coefficient arrays, out
        local = mesh.size
        ref = None
    else:
        from ..fokkerplanck.dmda import DmdaEuler
        from ..parallel import world

        comm = world()
        info["ranks"] = comm.Get_size()
        barrier = comm.barrier
        st = DmdaEuler(op, comm if comm.Get_size() > 1 else None)
        st.set_state(rho0)
        st.advance(1, dt)
        local = int(np.prod(st.grid.owned_shape))
        nbytes = 8 * 8 * local                              # + the ghost exchange's copy (in, out)

        def fn():
            st.set_state(rho0)
            st.advance(steps, dt)
            return st
        # profile: the ghost exchange and the kernel pass alone
        parts = {}
        for name, f in (("ghosts", st.exchange_ghosts), ("kernel", lambda: st.kernel_pass(dt)),
                        ("vec_access", lambda: (st.grid.owned_array(st.vec), st.grid.local_array(st.loc)))):
            barrier()
            t0 = time.perf_counter()
            for _ in range(steps):
                f()
            parts[name + "_s"] = (time.perf_counter() - t0) / steps
        info.update(parts)
    r = time_rounds(fn, repeat, warm_up=False, per=steps, barrier=barrier)
    res, times = r.last, r.times
    # stream-like reference: a numpy copy of this process's share, all ranks at once
    a = np.ones(local)
    b = np.empty_like(a)
    np.copyto(b, a)
    ct = []
    for _ in range(5):
        barrier()
        t0 = time.perf_counter()
        np.copyto(b, a)
        barrier()
        ct.append(time.perf_counter() - t0)
    copy_gbs = 2 * 8 * local * info["ranks"] / min(ct) / 1e9
    step = r.median
    info.update(step_s=step, times=times, copy_GBs=copy_gbs,
                step_GBs=nbytes * info["ranks"] / step / 1e9)
    if kind == "explicit-builtin":
        whole = res
    else:
        whole = res.gather(root_only=True)
    if whole is not None:
        ref = op.explicit_steps(rho0, dt, steps) if kind != "explicit-builtin" else whole
        info["max_rel_diff_vs_builtin"] = float(np.abs(whole - ref).max() / np.abs(ref).max())
        info["mass"] = float(mesh.integrate(whole))
        emit(info)


def run_explicit(size: str = "full", repeat: int = 3, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Print the explicit-step comparison (see the module docstring); returns the results."""
    from solvers import petsc_backend as pb

    from ..parallel import mpi_available

    cfg = EXPLICIT[size]
    print(f"bench petsc explicit: forward Euler on {cfg['side']}x{cfg['side']}, {cfg['steps']} steps per "
          f"timing, median of {repeat}; 1 thread per rank", file=out)
    res = {"builtin": _spawn("explicit-builtin", size, repeat)}
    if pb.available()[0]:
        res["dmda-1"] = _spawn("explicit-dmda", size, repeat)
        if mpi_available()[0]:
            res["dmda-2"] = _spawn("explicit-dmda", size, repeat, ranks=2)
    labels = {"builtin": "built-in explicit_steps", "dmda-1": "DMDA, 1 rank", "dmda-2": "DMDA, 2 ranks"}
    for k, r in res.items():
        if "error" in r:
            print(f"  {labels[k]:<24} failed: {r['error']}", file=out)
            continue
        prof = ""
        if "kernel_s" in r:
            prof = (f"  [ghost exchange {r['ghosts_s'] * 1e3:.2f} ms, kernel {r['kernel_s'] * 1e3:.2f} ms, "
                    f"Vec array access {r['vec_access_s'] * 1e6:.0f} us]")
        print(f"  {labels[k]:<24} {r['step_s'] * 1e3:8.2f} ms/step  {r['step_GBs']:5.1f} GB/s "
              f"(numpy copy {r['copy_GBs']:5.1f} GB/s: {r['step_GBs'] / r['copy_GBs']:.0%})  "
              f"diff vs built-in {r['max_rel_diff_vs_builtin']:.1e}{prof}", file=out)
    if "step_s" in res.get("dmda-1", {}) and "step_s" in res.get("dmda-2", {}):
        print(f"  2-rank speed-up of an explicit step: {res['dmda-1']['step_s'] / res['dmda-2']['step_s']:.2f}x "
              f"(target >= 1.7x); DMDA 1 rank vs built-in: "
              f"{res['builtin']['step_s'] / res['dmda-1']['step_s']:.2f}x", file=out)
    return res


if __name__ == "__main__":
    worker_entry({"steady": worker, "training": training_worker, "explicit": explicit_worker})
