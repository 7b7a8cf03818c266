"""``pdenet bench network``: forward + co-state + gradient of the dense explicit-Euler network.

Problem (issue 2): label mesh 32x32 (N = 1024), S = 256 samples, L = 16 steps
(one layer per step), relu, L2 loss, float64. Measured in one run, each in a
fresh subprocess with the same thread count:

* ``pdenet``: NetworkPDE.loss_and_gradient;
* ``torch``: PyTorch autograd on the equivalent ResNet z <- z + tau relu(a_l - h z b_l^T);
* ``gemm``: numpy's matmul doing just the GEMMs the computation needs
  (per step: f b^T, w b and w^T f), the floor for any implementation.

Reported: median wall time of ``repeat`` runs, ratios, GEMM rate, and the peak
resident-memory increase of each process over its state before the first run.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = {"full": dict(side=32, samples=256, steps=16), "quick": dict(side=8, samples=32, steps=4)}


def _problem(side, samples, steps, seed=0):
    rng = np.random.default_rng(seed)
    N = side * side
    h = 1.0 / N
    a = 0.1 * rng.standard_normal((steps, N))
    b = rng.standard_normal((steps, N, N)) / (h * np.sqrt(N))
    f0 = rng.standard_normal((samples, N))
    target = rng.standard_normal((samples, N))
    return a, b, f0, target, h, 1.0 / steps


def _rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn, repeat):
    fn()  # warm up (numba compilation, allocator)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def worker(kind, size, repeat, threads):
    side, samples, steps = SIZES[size]["side"], SIZES[size]["samples"], SIZES[size]["steps"]
    a, b, f0, target, h, tau = _problem(side, samples, steps)
    if kind == "pdenet":
        from pdenet.mesh import Mesh
        from pdenet.network import DenseOperator, Head, NetworkPDE
        from solvers import Schedule, make_stepper

        mesh = Mesh([0, 0], [1, 1], [side, side])
        net = NetworkPDE(mesh, "relu", a, DenseOperator(b), Head("identity", "l2", h, side * side),
                         Schedule(steps, tau, steps), make_stepper("euler"))
        net.loss_and_gradient(f0[:2], target[:2])  # compile outside the measurement
        base = _rss_mb()

        def fn():
            return net.loss_and_gradient(f0, target)
    elif kind == "torch":
        import torch

        torch.set_num_threads(threads)
        ta = torch.tensor(a, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tf, tt = torch.tensor(f0), torch.tensor(target)
        base = _rss_mb()

        def fn():
            ta.grad = None
            tb.grad = None
            z = tf
            for n in range(steps):
                z = z + tau * torch.relu(ta[n] - h * (z @ tb[n].T))
            J = 0.5 * h * torch.sum((z - tt) ** 2) / samples
            J.backward()
            return J.item()
    else:  # the GEMMs alone
        w = np.random.default_rng(1).standard_normal(f0.shape)
        G = np.empty_like(b[0])
        P = np.empty_like(f0)
        base = _rss_mb()

        def fn():
            for n in range(steps):
                np.matmul(f0, b[n].T, out=P)
            for n in range(steps):
                np.matmul(w, b[n], out=P)
                np.matmul(w.T, f0, out=G)
    med, times = _time(fn, repeat)
    print(json.dumps({"kind": kind, "median_s": med, "times": times, "peak_mb": _peak_mb() - base}))


def _spawn(kind, size, repeat, threads, module="pdenet.bench"):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    p = subprocess.run([sys.executable, "-m", module, "_worker", kind, size, str(repeat), str(threads)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"kind": kind, "error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_network(size="full", repeat=5, threads=None, out=sys.stdout):
    threads = threads or os.cpu_count()
    side, samples, steps = (SIZES[size][k] for k in ("side", "samples", "steps"))
    N = side * side
    flops = 3 * steps * 2.0 * samples * N * N
    res = {k: _spawn(k, size, repeat, threads) for k in ("pdenet", "torch", "gemm")}
    print(f"bench network: dense explicit Euler, N = {N} ({side}x{side}), S = {samples}, L = {steps}, relu, "
          f"float64, {threads} thread(s), median of {repeat}", file=out)
    for k in ("pdenet", "torch", "gemm"):
        r = res[k]
        if "error" in r:
            print(f"  {k:<7} unavailable: {r['error']}", file=out)
        else:
            print(f"  {k:<7} {r['median_s'] * 1e3:9.1f} ms   {flops / r['median_s'] / 1e9:6.1f} GFlop/s "
                  f"(GEMM-equivalent)   peak +{r['peak_mb']:.0f} MiB", file=out)
    ours = res["pdenet"]
    if "error" not in ours:
        if "error" not in res["torch"]:
            print(f"  speed vs PyTorch:   {res['torch']['median_s'] / ours['median_s']:.2f}x "
                  f"(target >= 1)   memory vs PyTorch: {ours['peak_mb'] / max(res['torch']['peak_mb'], 1e-9):.2f}x "
                  f"(target <= 1)", file=out)
        if "error" not in res["gemm"]:
            print(f"  fraction of the GEMM rate: {res['gemm']['median_s'] / ours['median_s']:.0%} (target >= 60%)",
                  file=out)
    return res


def main(args):
    size = "quick" if args.quick else "full"
    suite = getattr(args, "suite", "network")
    if suite == "training":
        from .bench_training import run_training
        run_training(size, args.repeat, args.threads)
    elif suite == "fokker-planck":
        run_fokker_planck(size, min(args.repeat, 5))
    else:
        run_network(size, args.repeat, args.threads)
    return 0



# ---------------------------------------------------------------------------
# ``pdenet bench fokker-planck``
FP_SIZES = {"full": dict(side=512, steps=200, implicit_steps=10, implicit_t=0.25),
            "quick": dict(side=64, steps=50, implicit_steps=5, implicit_t=0.5)}
FP_D = 0.5


def _fp_problem(side):
    from pdenet.fokkerplanck import FokkerPlanckOperator
    from pdenet.mesh import Mesh

    mesh = Mesh([-5.0, -5.0], [5.0, 5.0], [side, side], "noflux")
    op = FokkerPlanckOperator(mesh, potential=lambda x, y: 0.5 * (x * x + y * y), diffusion=FP_D)
    X, Y = mesh.centres()
    rho0 = np.exp(-((X - 1.0) ** 2 + Y ** 2) / 0.5)
    rho0 /= mesh.integrate(rho0)
    dt = 0.9 * op.max_stable_dt()
    return mesh, op, rho0, dt


def fp_worker(kind, size, repeat):
    side, steps, isteps, t_imp = (FP_SIZES[size][k] for k in ("side", "steps", "implicit_steps", "implicit_t"))
    mesh, op, rho0, dt = _fp_problem(side)
    t_end = steps * dt
    info = {}
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
        import warnings

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
            med, _ = _time(triad, max(repeat, 5))
            out[label] = 4 * 8 * n / med / 1e9  # read b, c, a once + write a: 4 words per element
        print(json.dumps({"kind": kind, "bandwidth_gbs": out}))
        return
    med, times = _time(fn, repeat)
    final = np.asarray(fn())
    info.update({"kind": kind, "median_s": med, "times": times, "t_end": t_end,
                 "mass": float(final.sum() * mesh.cell_volume)})
    np.save(os.environ.get("PDENET_BENCH_OUT", "/tmp") + f"/fp_{kind}.npy", final)
    print(json.dumps(info))


def _fp_spawn(kind, size, repeat, outdir):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    env["PDENET_BENCH_OUT"] = outdir
    p = subprocess.run([sys.executable, "-m", "pdenet.bench", "_fp_worker", kind, size, str(repeat)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["failed"])[-1]
        if "No module named 'pde'" in last:
            return {"kind": kind, "skipped": "py-pde not installed"}
        return {"kind": kind, "error": last}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_fokker_planck(size="full", repeat=3, out=sys.stdout):
    import tempfile

    side, steps = FP_SIZES[size]["side"], FP_SIZES[size]["steps"]
    N = side * side
    kinds = ("pdenet-explicit", "pypde-explicit", "pdenet-implicit", "pypde-implicit", "stream")
    with tempfile.TemporaryDirectory() as tmp:
        res = {k: _fp_spawn(k, size, repeat, tmp) for k in kinds}
        finals = {k: np.load(f"{tmp}/fp_{k}.npy") for k in kinds[:4]
                  if "median_s" in res[k] and os.path.exists(f"{tmp}/fp_{k}.npy")}
    print(f"bench fokker-planck: 2-D {side}x{side} (N = {N}), rho_t = div(rho grad f) + D lap rho, "
          f"f = |x|^2/2, D = {FP_D}, no-flux, float64, 1 thread, median of {repeat}", file=out)
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
            print(f"  time to solution {ours} vs {peer}: {res[peer]['median_s'] / res[ours]['median_s']:.2f}x "
                  f"faster (target >= 2)", file=out)
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_fp_worker":
        fp_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
