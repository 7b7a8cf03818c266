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
    if getattr(args, "suite", "network") == "training":
        from .bench_training import run_training
        run_training(size, args.repeat, args.threads)
    else:
        run_network(size, args.repeat, args.threads)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
