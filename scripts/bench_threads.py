#!/usr/bin/env python3
"""Speed-up of numba's parallel kernels on 2 threads against 1, in alternating rounds.

    python scripts/bench_threads.py [--repeat 9]

Times the Hamilton-Jacobi WENO5 + SSP-RK3 worker and the Fokker-Planck explicit worker of
``pdenet bench`` (512^2) with NUMBA_NUM_THREADS = 1 and 2, each in its own process, and prints
the median of the per-round ratios with their range (docs/benchmarks.md, "Issue 18").
"""
import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pdenet.bench.common import alternate, machine_line, ratio_text  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    a = ap.parse_args()
    out = tempfile.mkdtemp()
    os.chdir(out)   # python -m puts the working folder first on sys.path
    print(machine_line(1))
    for args in (("hamilton-jacobi", "pdenet", "full", 1), ("fokker-planck", "pdenet-explicit", "full", 1)):
        res = alternate("pdenet.bench.grids", {"1 thread": args, "2 threads": args}, a.repeat, threads=1,
                        env={"PDENET_BENCH_OUT": out, "PYTHONPATH": ROOT},
                        envs={"2 threads": {"NUMBA_NUM_THREADS": "2"}})
        for k, r in res.items():
            print(f"  {args[0]} {args[1]}, {k}: " + (r.get("error") or f"median {r['median_s'] * 1e3:.2f} ms"))
        if all("error" not in r for r in res.values()):
            print(f"  speed-up on 2 threads: {ratio_text(res['1 thread'], res['2 threads'])}")


if __name__ == "__main__":
    main()
