"""``pdenet bench training``: training throughput of the digits network against PyTorch.

Problem (issue 3): the ``cases/digits_adam.toml`` network -- 8x8 label mesh
(N = 64), dense kernel, L = 4 explicit-Euler steps (one layer per step), tanh,
softmax over 10 classes, full batch of the 1438 training digits, float64 --
and one Adam iteration = loss + exact gradient + update. Each side runs in a
fresh subprocess with the same thread count:

* ``pdenet``: ``solvers.optim.adam`` on :class:`pdenet.network.objective.NetworkObjective`;
* ``torch``: the same explicit-Euler ResNet z <- z + tau tanh(a_l - h z b_l^T), logits
  h z W^T + mu, cross-entropy, autograd and ``torch.optim.Adam`` (same lr, betas, eps).

Reported: samples per second per iteration (median over ``repeat`` blocks of
``iterations`` iterations) and the ratio; both sides start from the same
parameters, and the loss after the first block of iterations is printed to show they
computed the same thing (our ``adam`` call restarts its moments each block and
evaluates one extra gradient at the start of each block, counted in its time).
"""
from __future__ import annotations

import os
import sys
from typing import Any, TextIO

import numpy as np

from .common import alternate, emit, machine_line, ratio_text, time_rounds, worker_entry

# this module's import name, also when it runs as ``python -m`` (where __name__ is "__main__")
MODULE = __spec__.name

SIZES = {"full": dict(iterations=20, limit=0), "quick": dict(iterations=3, limit=200)}
LR = 0.05


def problem(limit: int):
    """The digits inputs (S x 64), labels, seeded random start ``{a, b, W, mu}``, h and tau
    (also the problem of ``pdenet bench petsc``'s training part)."""
    from ..network.data import load_digits

    d = load_digits(0.2, seed=0, limit=limit or None)
    x = d.inputs.reshape(len(d.labels), 64)
    rng = np.random.default_rng(0)
    N, L, M = 64, 4, 10
    h = 1.0 / N
    params = {"a": 0.1 * rng.standard_normal((L, N)), "b": rng.standard_normal((L, N, N)) / (h * np.sqrt(N)),
              "W": rng.standard_normal((M, N)) / (h * np.sqrt(N)), "mu": np.zeros(M)}
    return x, d.labels, params, h, 1.0 / L


def worker(kind: str, size: str, repeat: int | str, threads: int | str) -> None:
    """One side (pdenet | torch); prints one JSON line."""
    repeat, threads = int(repeat), int(threads)
    iters, limit = SIZES[size]["iterations"], SIZES[size]["limit"]
    x, y, p0, h, tau = problem(limit)
    L = p0["a"].shape[0]
    if kind == "pdenet":
        from solvers import Schedule, make_stepper, optim

        from ..mesh import Mesh
        from ..network import DenseOperator, Head, NetworkPDE
        from ..network.objective import NetworkObjective

        mesh = Mesh([0, 0], [1, 1], [8, 8])
        net = NetworkPDE(mesh, "tanh", p0["a"].copy(), DenseOperator(p0["b"].copy()),
                         Head("classes", "softmax", h, 64, p0["W"].copy(), p0["mu"].copy()),
                         Schedule(L, tau, L), make_stepper("euler"))
        obj = NetworkObjective(net, x, y)
        state = {}

        def fn():
            state["hist"] = optim.adam(obj, iters, LR)
        final = lambda: float(net.loss(x, y)[0])  # noqa: E731
    else:
        import torch

        torch.set_num_threads(threads)
        t = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
        tx, ty = torch.tensor(x), torch.tensor(y)
        opt = torch.optim.Adam(list(t.values()), lr=LR, betas=(0.9, 0.999), eps=1e-8)

        def loss():
            z = tx
            for n in range(L):
                z = z + tau * torch.tanh(t["a"][n] - h * (z @ t["b"][n].T))
            logits = h * (z @ t["W"].T) + t["mu"]
            return torch.nn.functional.cross_entropy(logits, ty)

        def fn():
            for _ in range(iters):
                opt.zero_grad()
                J = loss()
                J.backward()
                opt.step()
        final = lambda: float(loss().item())  # noqa: E731
    fn()                      # the first block from the common start: both sides must agree here
    first = final()
    r = time_rounds(fn, repeat)
    emit({"kind": kind, "median_s": r.median, "times": r.times, "samples": len(y), "iterations": iters,
          "first_block_loss": first})


def run_training(size: str = "full", repeat: int = 5, threads: int | None = None,
                 out: TextIO = sys.stdout) -> dict[str, Any]:
    threads = threads or 1
    head = machine_line(threads)
    res = alternate(MODULE, {k: ("training", k, size, repeat, threads) for k in ("pdenet", "torch")}, repeat,
                    threads=threads)
    print(f"bench training: digits network (N = 64, L = 4, dense, tanh, softmax), Adam, full batch, float64, "
          f"median of {repeat} alternating rounds of {SIZES[size]['iterations']} iterations", file=out)
    print(head, file=out)
    for k in ("pdenet", "torch"):
        r = res[k]
        if "error" in r:
            print(f"  {k:<7} unavailable: {r['error']}", file=out)
            continue
        per_it = r["median_s"] / r["iterations"]
        print(f"  {k:<7} {per_it * 1e3:8.2f} ms/iteration   {r['samples'] / per_it:10.0f} samples/s   "
              f"loss after the first {r['iterations']} iterations {r['first_block_loss']:.10f}", file=out)
    if all("error" not in r for r in res.values()):
        print(f"  throughput vs PyTorch: {ratio_text(res['torch'], res['pdenet'])}", file=out)
    return res


if __name__ == "__main__":
    worker_entry({"training": worker})
