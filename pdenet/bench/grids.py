"""``pdenet bench fokker-planck`` and ``pdenet bench hamilton-jacobi``: the grid solvers against
py-pde on the same grid, equation and step, and against a memory-bandwidth bound measured in
the same run.

* fokker-planck (issue 4): 2-D no-flux Ornstein-Uhlenbeck, rho_t = div(rho grad f) + D lap rho,
  f = |x|^2/2; pdenet's explicit kernel and its implicit Euler (sparse LU) against py-pde's
  explicit and implicit Euler, single-threaded; a numpy triad as the bandwidth bound.
* hamilton-jacobi (issue 5): u_t = -|grad u|^2/2 + nu Lap u on a periodic 2-D grid, pdenet
  WENO5 + SSP-RK3 (and first-order Godunov + Euler) against py-pde's explicit Euler, and
  against a numpy ``a = b + c`` bandwidth bound.

py-pde is optional (``pip install .[bench]``): its contenders are reported as skipped without it.
"""
from __future__ import annotations

import os
import sys
import tempfile
import warnings
from typing import Any, TextIO

import numpy as np

from .common import NO_PYPDE, alternate, emit, machine_line, paired_ratio, peak_mb, ratio_text, rss_mb, spawn, time_rounds, worker_entry

# this module's import name, also when it runs as ``python -m`` (where __name__ is "__main__")
MODULE = __spec__.name


# ---------------------------------------------------------------------------
# ``pdenet bench fokker-planck``
FP_SIZES = {"full": dict(side=512, steps=200, implicit_steps=10, implicit_t=0.25),
            "quick": dict(side=64, steps=50, implicit_steps=5, implicit_t=0.5)}
FP_D = 0.5


def _fp_problem(side):
    from ..fokkerplanck import FokkerPlanckOperator
    from ..mesh import Mesh

    mesh = Mesh([-5.0, -5.0], [5.0, 5.0], [side, side], "noflux")
    op = FokkerPlanckOperator(mesh, potential=lambda x, y: 0.5 * (x * x + y * y), diffusion=FP_D)
    X, Y = mesh.centres()
    rho0 = np.exp(-((X - 1.0) ** 2 + Y ** 2) / 0.5)
    rho0 /= mesh.integrate(rho0)
    dt = 0.9 * op.max_stable_dt()
    return mesh, op, rho0, dt


def fp_worker(kind: str, size: str, repeat: int | str) -> None:
    """One contender of run_fokker_planck; prints one JSON line and saves the final density to
    ``$PDENET_BENCH_OUT/fp_<kind>.npy``."""
    repeat = int(repeat)
    side, steps, isteps, t_imp = (FP_SIZES[size][k] for k in ("side", "steps", "implicit_steps", "implicit_t"))
    mesh, op, rho0, dt = _fp_problem(side)
    t_end = steps * dt
    info: dict[str, Any] = {}
    if kind.endswith("implicit"):
        t_end = t_imp
    if kind == "pdenet-explicit":
        op.explicit_steps(rho0, dt, 2)  # compile / load outside the measurement

        def fn():
            return op.explicit_steps(rho0, dt, steps)
        info["steps"] = steps
    elif kind == "pdenet-implicit":
        from solvers.linear import LinearStepper

        A = op.matrix()

        def fn():
            # the factorisation is part of the cost
            st = LinearStepper("beuler", A, t_end / isteps, pivot=False)
            y = rho0.ravel()
            for n in range(isteps):
                y = st.step(y, n * t_end / isteps)
            return y.reshape(mesh.cells)
        info["steps"] = isteps
    elif kind in ("pypde-explicit", "pypde-implicit"):
        import pde

        warnings.simplefilter("ignore")
        grid = pde.CartesianGrid([[-5.0, 5.0], [-5.0, 5.0]], [side, side])
        field = pde.ScalarField(grid, rho0.copy())
        # the same equation expanded: div(rho grad f) + D lap rho, f = |x|^2/2
        eq = pde.PDE({"c": f"{FP_D}*laplace(c) + x*d_dx(c) + y*d_dy(c) + 2*c"}, bc={"derivative": 0})
        if kind == "pypde-explicit":
            solver, pdt = pde.EulerSolver(eq, backend="numba", adaptive=False), dt
        else:
            # py-pde's implicit Euler iterates to a fixed point, which converges only for steps
            # below the explicit limit: half of it
            solver, pdt = pde.ImplicitSolver(eq, backend="numba"), 0.5 * dt
            repeat = 1
        stepper = solver.make_stepper(field, dt=pdt)  # compiles (excluded from the timing)
        warm = field.copy()
        stepper(warm, 0.0, 2 * pdt)

        def fn():
            state = field.copy()
            stepper(state, 0.0, t_end)
            return state.data
        info["steps"] = int(round(t_end / pdt))
    else:  # memory bandwidth: numpy triad a = b + s c, in the problem's size and large
        out = {}
        for label, n in (("problem", mesh.size), ("dram", 1 << 25)):
            b, c = np.random.rand(n), np.random.rand(n)
            a = np.empty(n)

            def triad():
                np.multiply(c, 3.0, out=a)
                np.add(a, b, out=a)
            med = time_rounds(triad, max(repeat, 5)).median
            out[label] = 4 * 8 * n / med / 1e9  # read b, c, a once + write a: 4 words per element
        emit({"kind": kind, "bandwidth_gbs": out})
        return
    r = time_rounds(fn, repeat)
    final = np.asarray(fn())
    info.update({"kind": kind, "median_s": r.median, "times": r.times, "t_end": t_end,
                 "mass": float(final.sum() * mesh.cell_volume)})
    np.save(os.environ.get("PDENET_BENCH_OUT", "/tmp") + f"/fp_{kind}.npy", final)
    emit(info)


def _fp_spawn(kind, size, repeat, outdir):
    r = spawn(MODULE, ("fokker-planck", kind, size, repeat), threads=1, env={"PDENET_BENCH_OUT": outdir},
              kind=kind)
    if NO_PYPDE in r.get("error", ""):
        return {"kind": kind, "skipped": "py-pde not installed"}
    return r


def run_fokker_planck(size: str = "full", repeat: int = 3, threads: int | None = None,
                      out: TextIO = sys.stdout) -> dict[str, Any]:
    """The Fokker-Planck comparison, single-threaded (``threads`` is ignored)."""
    side, steps = FP_SIZES[size]["side"], FP_SIZES[size]["steps"]
    N = side * side
    kinds = ("pdenet-explicit", "pypde-explicit", "pdenet-implicit", "pypde-implicit", "stream")
    head = machine_line(1)
    with tempfile.TemporaryDirectory() as tmp:
        res = alternate(MODULE, {k: ("fokker-planck", k, size, repeat) for k in kinds[:4]}, repeat,
                        env={"PDENET_BENCH_OUT": tmp})
        for k in kinds[:4]:
            if NO_PYPDE in res[k].get("error", ""):
                res[k] = {"kind": k, "skipped": "py-pde not installed"}
        res["stream"] = _fp_spawn("stream", size, repeat, tmp)  # its own rounds, after the others
        finals = {k: np.load(f"{tmp}/fp_{k}.npy") for k in kinds[:4]
                  if "median_s" in res[k] and os.path.exists(f"{tmp}/fp_{k}.npy")}
    print(f"bench fokker-planck: 2-D {side}x{side} (N = {N}), rho_t = div(rho grad f) + D lap rho, "
          f"f = |x|^2/2, D = {FP_D}, no-flux, float64, median of {repeat} alternating rounds", file=out)
    print(head, file=out)
    for k in kinds[:4]:
        r = res[k]
        if "skipped" in r:
            print(f"  {k:<16} skipped ({r['skipped']})", file=out)
        elif "error" in r:
            print(f"  {k:<16} failed: {r['error']}", file=out)
        else:
            rate = N * r["steps"] / r["median_s"]
            print(f"  {k:<16} {r['median_s'] * 1e3:9.1f} ms to t = {r['t_end']:.4g} in {r['steps']:4d} steps  "
                  f"{rate / 1e6:8.1f} Mcell-steps/s   mass {r['mass']:.12f}", file=out)
    for a, b in (("pypde-explicit", "pdenet-explicit"), ("pypde-implicit", "pdenet-implicit")):
        if a in finals and b in finals:
            diff = np.sqrt(np.sum((finals[a] - finals[b]) ** 2) / np.sum(finals[b] ** 2))
            print(f"  relative L2 difference of the final densities, {a} vs {b}: {diff:.2e}", file=out)
    for ours, peer in (("pdenet-explicit", "pypde-explicit"), ("pdenet-implicit", "pypde-implicit")):
        if "median_s" in res[ours] and "median_s" in res[peer]:
            print(f"  time to solution {ours} vs {peer}: {ratio_text(res[peer], res[ours])} faster", file=out)
    if "median_s" in res["pdenet-explicit"] and "median_s" in res["pypde-explicit"]:
        per = (res["pypde-explicit"]["median_s"] / steps) / (res["pdenet-explicit"]["median_s"] / steps)
        print(f"  throughput per explicit step: {per:.2f}x py-pde's", file=out)
    bw = res["stream"].get("bandwidth_gbs")
    if bw and "median_s" in res["pdenet-explicit"]:
        # fused explicit step: reads rho and 4 face-coefficient arrays, writes rho_new (6 words/cell)
        step_s = res["pdenet-explicit"]["median_s"] / steps
        achieved = 6 * 8 * N / step_s / 1e9
        print(f"  explicit step: {step_s * 1e3:.3f} ms, {achieved:.1f} GB/s moved (6 words/cell); numpy triad "
              f"{bw['problem']:.1f} GB/s at this size, {bw['dram']:.1f} GB/s from DRAM -> "
              f"{achieved / bw['problem']:.0%} / {achieved / bw['dram']:.0%} of the bound", file=out)
    return res



# ``pdenet bench hamilton-jacobi`` (issue 5): u_t = -|grad u|^2/2 + nu Lap u on a periodic
# 2-D grid, pdenet WENO5 + SSP-RK3 (and first-order Godunov + Euler) against py-pde's explicit
# Euler on the same grid and step, and against a memory-bandwidth bound measured in the run.
HJ_SIZES = {"full": dict(side=512, steps=20), "quick": dict(side=64, steps=5)}
HJ_NU = 0.01


def _hj_initial(side):
    x = (np.arange(side) + 0.5) * (2 * np.pi / side)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return np.sin(X) * np.cos(2 * Y) + 0.3 * np.cos(3 * X + Y), 2 * np.pi / side


def _hj_dt(side):
    # one fixed step for every contender: CFL 0.4 for |grad u| <= 3.6 and the explicit
    # diffusion limit of the 4th-order Laplacian
    h = 2 * np.pi / side
    return 0.4 / (2 * 3.6 / h + HJ_NU * 2 * (16.0 / 3.0) / h ** 2 / 2.0)


def hj_worker(kind: str, size: str, repeat: int | str) -> None:
    """One contender of run_hamilton_jacobi; prints one JSON line."""
    repeat = int(repeat)
    side, steps = HJ_SIZES[size]["side"], HJ_SIZES[size]["steps"]
    u0, h = _hj_initial(side)
    dt = _hj_dt(side)
    if kind in ("pdenet", "pdenet-1st"):
        from ..hj.scheme import HJScheme
        from ..mesh import Mesh

        mesh = Mesh([0, 0], [2 * np.pi, 2 * np.pi], [side, side], "periodic")
        order, stepper = (5, "ssp-rk3") if kind == "pdenet" else (1, "euler")
        s = HJScheme(mesh, nu=HJ_NU, order=order, stepper=stepper)
        s.step(u0, 0.0, dt)  # compile / load from cache outside the measurement
        base = rss_mb()

        def fn():
            u = u0
            for n in range(steps):
                u = s.step(u, n * dt, dt)
            return u
    elif kind == "py-pde":
        import pde

        grid = pde.CartesianGrid([[0, 2 * np.pi], [0, 2 * np.pi]], [side, side], periodic=True)
        state = pde.ScalarField(grid, u0)
        eq = pde.PDE({"u": f"-0.5 * gradient_squared(u) + {HJ_NU} * laplace(u)"})
        # py-pde's own compiled right-hand side (numba), stepped by explicit Euler: solve()
        # would recompile its stepper on every call
        rhs = eq.make_pde_rhs(state, backend="numba")
        data0 = state.data.copy()
        rhs(data0, 0.0)  # compile
        base = rss_mb()

        def fn():
            u = data0
            for n in range(steps):
                u = u + dt * rhs(u, n * dt)
            return u
    else:  # memory bandwidth: a = b + c on 64 MiB arrays (24 bytes per element moved)
        n = 2 ** 23
        b, c, a = np.ones(n), np.ones(n), np.empty(n)
        base = rss_mb()

        def fn():
            np.add(b, c, out=a)
    r = time_rounds(fn, repeat)
    emit({"kind": kind, "median_s": r.median, "times": r.times, "peak_mb": peak_mb() - base})


def run_hamilton_jacobi(size: str = "full", repeat: int = 5, threads: int | None = None,
                        out: TextIO = sys.stdout) -> dict[str, Any]:
    threads = threads or 1
    side, steps = HJ_SIZES[size]["side"], HJ_SIZES[size]["steps"]
    N = side * side
    kinds = ("pdenet", "pdenet-1st", "py-pde", "bandwidth")
    head = machine_line(threads)
    res = alternate(MODULE, {k: ("hamilton-jacobi", k, size, repeat) for k in kinds}, repeat, threads=threads)
    for k in kinds:
        if NO_PYPDE in res[k].get("error", ""):
            res[k] = {"kind": k, "error": "skipped (py-pde not installed: pip install .[bench])"}
    print(f"bench hamilton-jacobi: u_t = -|grad u|^2/2 + {HJ_NU} Lap u, periodic {side}x{side}, {steps} steps of "
          f"dt = {_hj_dt(side):.3g}, float64, median of {repeat} alternating rounds", file=out)
    print(head, file=out)
    labels = {"pdenet": "pdenet WENO5 + SSP-RK3 (3 stages, Godunov, 4th-order Lap)",
              "pdenet-1st": "pdenet 1st-order Godunov + Euler (2nd-order Lap)",
              "py-pde": "py-pde explicit Euler (central gradient_squared + laplace)"}
    for k in kinds[:3]:
        r = res[k]
        if "error" in r:
            print(f"  {labels[k]:<62} {r['error']}", file=out)
            continue
        r["cell_updates_per_s"] = N * steps / r["median_s"]
        print(f"  {labels[k]:<62} {r['median_s'] * 1e3:9.1f} ms  {r['cell_updates_per_s'] / 1e6:8.2f} M cell-updates/s"
              f"   peak +{r['peak_mb']:.0f} MiB", file=out)
    bw = res["bandwidth"]
    if "error" not in bw:
        bytes_per_s = 24 * 2 ** 23 / bw["median_s"]
        bw["bytes_per_s"] = bytes_per_s
        # a full SSP-RK3 step must at least read the state and write a new one in each stage
        bound = bytes_per_s / (3 * 16)
        print(f"  memory bandwidth (a = b + c, 64 MiB arrays): {bytes_per_s / 1e9:.1f} GB/s -> bound for "
              f"SSP-RK3 (3 x 16 B per cell-update): {bound / 1e6:.0f} M cell-updates/s", file=out)
        for k in ("pdenet",):
            if "error" not in res[k]:
                print(f"  pdenet WENO5 at {res[k]['cell_updates_per_s'] / bound:.1%} of the bandwidth bound", file=out)
    if "error" not in res["pdenet"] and "error" not in res["py-pde"]:
        print(f"  per step vs py-pde: WENO5+SSP-RK3 {ratio_text(res['py-pde'], res['pdenet'])}, "
              f"1st-order+Euler {ratio_text(res['py-pde'], res['pdenet-1st'])} "
              "(same grid, dt and steps; py-pde's central scheme is neither upwind nor monotone and is "
              "cheaper per step: at equal accuracy the comparison is another one, docs/benchmarks.md)", file=out)
    return res



if __name__ == "__main__":
    worker_entry({"fokker-planck": fp_worker, "hamilton-jacobi": hj_worker})
