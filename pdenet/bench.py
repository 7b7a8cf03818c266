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


def _spawn(kind, size, repeat, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    p = subprocess.run([sys.executable, "-m", "pdenet.bench", "_worker", kind, size, str(repeat), str(threads)],
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


# ---------------------------------------------------------------------------
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


def hj_worker(kind, size, repeat):
    side, steps = HJ_SIZES[size]["side"], HJ_SIZES[size]["steps"]
    u0, h = _hj_initial(side)
    dt = _hj_dt(side)
    if kind in ("pdenet", "pdenet-1st"):
        from pdenet.hj.scheme import HJScheme
        from pdenet.mesh import Mesh

        mesh = Mesh([0, 0], [2 * np.pi, 2 * np.pi], [side, side], "periodic")
        order, stepper = (5, "ssp-rk3") if kind == "pdenet" else (1, "euler")
        s = HJScheme(mesh, nu=HJ_NU, order=order, stepper=stepper)
        s.step(u0, 0.0, dt)  # compile / load from cache outside the measurement
        base = _rss_mb()

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
        base = _rss_mb()

        def fn():
            u = data0
            for n in range(steps):
                u = u + dt * rhs(u, n * dt)
            return u
    else:  # memory bandwidth: a = b + c on 64 MiB arrays (24 bytes per element moved)
        n = 2 ** 23
        b, c, a = np.ones(n), np.ones(n), np.empty(n)
        base = _rss_mb()

        def fn():
            np.add(b, c, out=a)
    med, times = _time(fn, repeat)
    print(json.dumps({"kind": kind, "median_s": med, "times": times, "peak_mb": _peak_mb() - base}))


def _spawn_hj(kind, size, repeat, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    p = subprocess.run([sys.executable, "-m", "pdenet.bench", "_hj_worker", kind, size, str(repeat)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["failed"])[-1]
        if "No module named 'pde'" in last:
            return {"kind": kind, "error": "skipped (py-pde not installed: pip install .[bench])"}
        return {"kind": kind, "error": last}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_hamilton_jacobi(size="full", repeat=5, threads=None, out=sys.stdout):
    threads = threads or os.cpu_count()
    side, steps = HJ_SIZES[size]["side"], HJ_SIZES[size]["steps"]
    N = side * side
    kinds = ("pdenet", "pdenet-1st", "py-pde", "bandwidth")
    res = {k: _spawn_hj(k, size, repeat, threads) for k in kinds}
    print(f"bench hamilton-jacobi: u_t = -|grad u|^2/2 + {HJ_NU} Lap u, periodic {side}x{side}, {steps} steps of "
          f"dt = {_hj_dt(side):.3g}, float64, {threads} thread(s), median of {repeat}", file=out)
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
        print(f"  speed vs py-pde: WENO5+SSP-RK3 {res['py-pde']['median_s'] / res['pdenet']['median_s']:.2f}x, "
              f"1st-order+Euler {res['py-pde']['median_s'] / res['pdenet-1st']['median_s']:.2f}x "
              "(same grid, dt and steps; py-pde's scheme is neither upwind nor monotone)", file=out)
    return res


def main(args):
    if getattr(args, "suite", "network") == "hamilton-jacobi":
        run_hamilton_jacobi("quick" if args.quick else "full", args.repeat, args.threads)
        return 0
    run_network("quick" if args.quick else "full", args.repeat, args.threads)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_hj_worker":
        hj_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
