"""What every benchmark suite shares: one worker process per contender, timing in rounds,
peak resident memory and one JSON line of results.

A suite module (``pdenet.bench.<suite>``) has a ``run_*`` function that prints the report and
returns the results, and one or more worker functions that measure one contender in a fresh
process. :func:`spawn` starts ``python -m pdenet.bench.<suite> _worker ARGS...`` (under
``mpiexec -n P`` for P ranks) with the BLAS/OpenMP/numba thread counts pinned, and returns the
JSON object the worker printed last (:func:`emit`), or ``{**on_error, "error": last stderr
line}`` when the worker failed. :func:`worker_entry` is the ``__main__`` side of that.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
NO_PYPDE = "No module named 'pde'"


def pinned_env(threads: int, **extra: str) -> dict[str, str]:
    """This process's environment with every thread-count variable set to ``threads``."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env.update(extra)
    return env


def spawn(module: str, worker_args: Sequence[Any], *, threads: int = 1, nprocs: int = 1,
          env: dict[str, str] | None = None, **on_error: Any) -> dict[str, Any]:
    """Run ``python -m module _worker *worker_args`` (``mpiexec -n nprocs`` when nprocs > 1) with
    ``threads`` threads per process (``env``: extra variables); the JSON object of its last stdout
    line, or ``{**on_error, "error": last stderr line}`` when it fails."""
    args = ["-m", module, "_worker", *map(str, worker_args)]
    if nprocs > 1:
        from ..parallel import mpiexec_command

        cmd = mpiexec_command(nprocs, args)
    else:
        cmd = [sys.executable, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=pinned_env(threads, **(env or {})))
    if p.returncode != 0:
        return {**on_error, "error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result: one JSON line (the last line of stdout is what :func:`spawn` reads)."""
    print(json.dumps(result))


def worker_entry(workers: dict[str, Callable[..., None]], argv: Sequence[str] | None = None) -> bool:
    """``python -m pdenet.bench.<suite> _worker NAME ARGS...``: call ``workers[NAME](*ARGS)`` (the
    worker converts its string arguments); False when argv is not a worker call. :func:`spawn`'s
    ``worker_args`` start with NAME."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "_worker":
        return False
    workers[argv[1]](*argv[2:])
    return True


def rss_mb() -> float:
    """Resident memory of this process now (MiB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_mb() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Rounds:
    """The timings of :func:`time_rounds`: ``median`` and ``times`` (seconds, divided by ``per``)
    and ``last``, what the last round returned."""

    def __init__(self, times: list[float], last: Any):
        self.times, self.last = times, last
        self.median = float(np.median(times))


def time_rounds(fn: Callable[[], Any], repeat: int, *, warm_up: bool = True, per: float = 1,
                barrier: Callable[[], Any] | None = None,
                after_round: Callable[[int], Any] | None = None) -> Rounds:
    """Call ``fn`` ``repeat`` times, timing each call (divided by ``per``, e.g. the steps in one
    round). ``warm_up``: one untimed call first (numba compilation, allocator). ``barrier``
    (MPI): called before and after each timed call, inside the timing. ``after_round(i)``: called
    after round ``i``'s timing (e.g. to record a loss), not timed."""
    if warm_up:
        fn()
    times, last = [], None
    for i in range(repeat):
        if barrier is not None:
            barrier()
        last = None  # the previous result is freed before the next call (peak memory of one call)
        t0 = time.perf_counter()
        last = fn()
        if barrier is not None:
            barrier()
        times.append((time.perf_counter() - t0) / per)
        if after_round is not None:
            after_round(i)
    return Rounds(times, last)
