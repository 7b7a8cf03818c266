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
import json
import sys

import numpy as np

from .bench import _spawn, _time

SIZES = {"full": dict(iterations=20, limit=0), "quick": dict(iterations=3, limit=200)}
LR = 0.05


def _problem(limit):
    from pdenet.network.data import load_digits

    d = load_digits(0.2, seed=0, limit=limit or None)
    x = d.inputs.reshape(len(d.labels), 64)
    rng = np.random.default_rng(0)
    N, L, M = 64, 4, 10
    h = 1.0 / N
    params = {"a": 0.1 * rng.standard_normal((L, N)), "b": rng.standard_normal((L, N, N)) / (h * np.sqrt(N)),
              "W": rng.standard_normal((M, N)) / (h * np.sqrt(N)), "mu": np.zeros(M)}
    return x, d.labels, params, h, 1.0 / L


def worker(kind, size, repeat, threads):
    iters, limit = SIZES[size]["iterations"], SIZES[size]["limit"]
    x, y, p0, h, tau = _problem(limit)
    L = p0["a"].shape[0]
    if kind == "pdenet":
        from pdenet.mesh import Mesh
        from pdenet.network import DenseOperator, Head, NetworkPDE
        from pdenet.network.objective import NetworkObjective
        from solvers import Schedule, make_stepper, optim

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
    med, times = _time(fn, repeat)
    print(json.dumps({"kind": kind, "median_s": med, "times": times, "samples": len(y), "iterations": iters,
                      "first_block_loss": first}))


def run_training(size="full", repeat=5, threads=None, out=sys.stdout):
    import os

    threads = threads or os.cpu_count()
    res = {k: _spawn(k, size, repeat, threads, module="pdenet.bench_training") for k in ("pdenet", "torch")}
    print(f"bench training: digits network (N = 64, L = 4, dense, tanh, softmax), Adam, full batch, float64, "
          f"{threads} thread(s), median of {repeat} blocks of {SIZES[size]['iterations']} iterations", file=out)
    for k in ("pdenet", "torch"):
        r = res[k]
        if "error" in r:
            print(f"  {k:<7} unavailable: {r['error']}", file=out)
            continue
        per_it = r["median_s"] / r["iterations"]
        print(f"  {k:<7} {per_it * 1e3:8.2f} ms/iteration   {r['samples'] / per_it:10.0f} samples/s   "
              f"loss after the first {r['iterations']} iterations {r['first_block_loss']:.10f}", file=out)
    if all("error" not in r for r in res.values()):
        print(f"  throughput vs PyTorch: {res['torch']['median_s'] / res['pdenet']['median_s']:.2f}x "
              f"(target >= 1)", file=out)
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
