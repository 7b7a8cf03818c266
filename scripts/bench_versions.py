#!/usr/bin/env python3
"""Time one contender of a ``pdenet bench`` suite in two versions of pdenet, alternating rounds.

    python scripts/bench_versions.py OLD_TREE SUITE_MODULE "WORKER ARGS..." [--repeat 9] [--threads 1]

e.g. ``python scripts/bench_versions.py /tmp/orig grids "hamilton-jacobi pdenet full 1"`` times the
WENO5 + SSP-RK3 worker of ``pdenet bench hamilton-jacobi`` from this checkout and from OLD_TREE
(a ``git worktree add --detach /tmp/orig REV``), each in its own process with the thread counts
pinned, and prints the median of the per-round ratios old/new with their range.
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
    ap.add_argument("old")
    ap.add_argument("module", help="suite module under pdenet.bench, e.g. grids")
    ap.add_argument("worker", help="the worker's arguments, quoted")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    args = a.worker.split()
    envs = {"new": {"PYTHONPATH": ROOT}, "old": {"PYTHONPATH": os.path.abspath(a.old)}}
    old = os.path.abspath(a.old)
    # `python -m` puts the working folder first on sys.path: run the workers from a neutral one,
    # so that PYTHONPATH decides which pdenet each imports
    os.chdir(tempfile.gettempdir())
    envs["old"]["PYTHONPATH"] = old
    print(machine_line(a.threads))
    res = alternate(f"pdenet.bench.{a.module}", {"new": args, "old": args}, a.repeat, threads=a.threads, envs=envs)
    for k, r in res.items():
        print(f"  {k}: " + (r["error"] if "error" in r else f"median {r['median_s'] * 1e3:.2f} ms"))
    if all("error" not in r for r in res.values()):
        print(f"  old / new: {ratio_text(res['old'], res['new'])}")


if __name__ == "__main__":
    main()
