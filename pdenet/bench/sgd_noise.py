"""Benchmark: Sigma_D of a network with ~10^6 parameters by the operator path (issue 14).

    PYTHONPATH=. python -m pdenet.bench.sgd_noise [--cells 1000] [--samples 64] [--k 20]

A dense kernel on N cells, one control interval: P = N^2 + N + (M N + M) parameters. The P x P
matrix (8 P^2 bytes: 8 TB at P = 10^6) is never formed: per-sample gradients (S, P) by the
exact adjoint, then Lanczos (scipy eigsh) on v -> (1/S) Gc^T (Gc v). Prints the time of each
part and the peak resident memory (ru_maxrss) of the process.
"""
import argparse
import resource
import sys
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args(argv)

    from pdenet.mesh import Mesh
    from pdenet.network import DenseOperator, Head, NetworkPDE
    from pdenet.network.sgd_noise import NoiseCovariance, per_sample_gradients
    from solvers import Schedule, make_stepper

    rng = np.random.default_rng(0)
    N, S, M = args.cells, args.samples, 10
    mesh = Mesh([0.0], [1.0], [N])
    h = mesh.cell_volume
    op = DenseOperator(rng.standard_normal((1, N, N)) / (h * np.sqrt(N)))
    head = Head("classes", "softmax", h, N, rng.standard_normal((M, N)), np.zeros(M))
    net = NetworkPDE(mesh, "tanh", 0.5 * rng.standard_normal((1, N)), op, head,
                     Schedule(args.steps, 1.0 / args.steps, 1), make_stepper("euler"))
    f0 = rng.standard_normal((S, N))
    labels = rng.integers(0, M, S)
    P = sum(p.size for p in net.params.values())
    print(f"P = {P} parameters, S = {S} samples; dense Sigma_D would take {8 * P * P / 1e12:.1f} TB, "
          f"the per-sample gradients take {8 * S * P / 1e9:.2f} GB")
    t0 = time.perf_counter()
    G = per_sample_gradients(net, f0, labels)
    t1 = time.perf_counter()
    cov = NoiseCovariance(G)
    ev, _ = cov.top(args.k, "lanczos")
    t2 = time.perf_counter()
    tr = cov.trace()
    rank = cov.rank(1e-8)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6    # kB on Linux -> GB
    print(f"per-sample gradients {t1 - t0:.2f} s ({(t1 - t0) / S * 1e3:.1f} ms/sample), "
          f"Lanczos top {args.k} {t2 - t1:.2f} s, trace + rank (Gram) {t3 - t2:.2f} s")
    print(f"lambda_1..3 = {ev[:3]}, trace = {tr:.6g}, rank(1e-8) = {rank} of {P} "
          f"({100 * rank / P:.3f} %), peak RSS {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
