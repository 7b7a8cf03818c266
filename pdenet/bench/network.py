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
from __future__ import annotations

import os
import sys
from typing import Any, TextIO

import numpy as np

from .common import alternate, emit, machine_line, paired_ratio, peak_mb, ratio_text, rss_mb, time_rounds, worker_entry

# this module's import name, also when it runs as ``python -m`` (where __name__ is "__main__")
MODULE = __spec__.name

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


def worker(kind: str, size: str, repeat: int | str, threads: int | str) -> None:
    """One contender (pdenet | torch | gemm); prints one JSON line."""
    repeat, threads = int(repeat), int(threads)
    side, samples, steps = SIZES[size]["side"], SIZES[size]["samples"], SIZES[size]["steps"]
    a, b, f0, target, h, tau = _problem(side, samples, steps)
    if kind == "pdenet":
        from solvers import Schedule, make_stepper

        from ..mesh import Mesh
        from ..network import DenseOperator, Head, NetworkPDE

        mesh = Mesh([0, 0], [1, 1], [side, side])
        net = NetworkPDE(mesh, "relu", a, DenseOperator(b), Head("identity", "l2", h, side * side),
                         Schedule(steps, tau, steps), make_stepper("euler"))
        net.loss_and_gradient(f0[:2], target[:2])  # compile outside the measurement
        base = rss_mb()

        def fn():
            return net.loss_and_gradient(f0, target)
    elif kind == "torch":
        import torch

        torch.set_num_threads(threads)
        ta = torch.tensor(a, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tf, tt = torch.tensor(f0), torch.tensor(target)
        base = rss_mb()

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
        base = rss_mb()

        def fn():
            for n in range(steps):
                np.matmul(f0, b[n].T, out=P)
            for n in range(steps):
                np.matmul(w, b[n], out=P)
                np.matmul(w.T, f0, out=G)
    r = time_rounds(fn, repeat)
    emit({"kind": kind, "median_s": r.median, "times": r.times, "peak_mb": peak_mb() - base})


def run_network(size: str = "full", repeat: int = 5, threads: int | None = None,
                out: TextIO = sys.stdout) -> dict[str, Any]:
    threads = threads or 1
    side, samples, steps = (SIZES[size][k] for k in ("side", "samples", "steps"))
    N = side * side
    flops = 3 * steps * 2.0 * samples * N * N
    head = machine_line(threads)
    res = alternate(MODULE, {k: ("network", k, size, repeat, threads) for k in ("pdenet", "torch", "gemm")},
                    repeat, threads=threads)
    print(f"bench network: dense explicit Euler, N = {N} ({side}x{side}), S = {samples}, L = {steps}, relu, "
          f"float64, median of {repeat} alternating rounds", file=out)
    print(head, file=out)
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
            print(f"  speed vs PyTorch:   {ratio_text(res['torch'], ours)}   memory vs PyTorch: "
                  f"{ours['peak_mb'] / max(res['torch']['peak_mb'], 1e-9):.2f}x", file=out)
        if "error" not in res["gemm"]:
            m, lo, hi = paired_ratio(res["gemm"], ours)
            print(f"  fraction of the GEMM rate: {m:.0%} (rounds {lo:.0%}-{hi:.0%})", file=out)
    return res


if __name__ == "__main__":
    worker_entry({"network": worker})
