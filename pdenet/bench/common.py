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
# set in a worker that :func:`alternate` runs: :func:`time_rounds` then times one round per
# "go" line on stdin instead of its own ``repeat`` rounds
SERVE = "PDENET_BENCH_SERVE"
PROTOCOL = "@bench "


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
    if os.environ.get(SERVE) and barrier is None:
        return _served_rounds(fn, warm_up, per, after_round)
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


def _served_rounds(fn: Callable[[], Any], warm_up: bool, per: float,
                   after_round: Callable[[int], Any] | None) -> Rounds:
    """The worker's side of :func:`alternate`: warm up, say ready, then time one call of ``fn``
    per "go" line read from stdin (answering with its time), until "done"."""
    if warm_up:
        fn()
    print(f"{PROTOCOL}ready", flush=True)
    times: list[float] = []
    last = None
    for line in sys.stdin:
        if line.strip() != "go":
            break
        last = None
        t0 = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t0) / per)
        if after_round is not None:
            after_round(len(times) - 1)
        print(f"{PROTOCOL}{times[-1]!r}", flush=True)
    return Rounds(times, last)


class _Contender:
    """One worker process of :func:`alternate`, kept alive between its rounds."""

    def __init__(self, module: str, worker_args: Sequence[Any], threads: int, env: dict[str, str] | None,
                 errlog: Any) -> None:
        self.errlog = errlog
        self.proc = subprocess.Popen([sys.executable, "-m", module, "_worker", *map(str, worker_args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, text=True,
                                     env=pinned_env(threads, **{SERVE: "1", **(env or {})}))
        self.lines: list[str] = []   # stdout lines that are not protocol lines (the final JSON)

    def _answer(self) -> str | None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL):
                return line[len(PROTOCOL):].strip()
            self.lines.append(line)
        return None   # the worker ended (an error, or it does not time in rounds)

    def ready(self) -> bool:
        return self._answer() == "ready"

    def round(self) -> float | None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        answer = self._answer()
        return float(answer) if answer is not None else None

    def finish(self, on_error: dict[str, Any]) -> dict[str, Any]:
        try:
            # a worker that has ended is not written to
            out, _ = self.proc.communicate(input="done\n" if self.proc.poll() is None else None, timeout=600)
        except (BrokenPipeError, ValueError):
            out, _ = self.proc.communicate(timeout=600)
        lines = self.lines + (out or "").splitlines()
        if self.proc.returncode != 0 or not lines:
            self.errlog.seek(0)
            err = self.errlog.read().strip().splitlines() or ["failed"]
            return {**on_error, "error": err[-1]}
        return json.loads(lines[-1])


def alternate(module: str, contenders: dict[str, Sequence[Any]], repeat: int, *, threads: int = 1,
              env: dict[str, str] | None = None,
              envs: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, Any]]:
    """Time ``contenders`` (name -> worker arguments of ``python -m module _worker ...``) in
    alternating rounds: every worker process starts and warms up first (numba compilation,
    PyTorch's allocator), then round r times one call of each contender in turn, the order
    rotating from round to round, so that a change of the machine's load touches every
    contender alike. Returns name -> the worker's final JSON (``times`` are its rounds, in the
    order of the others') or ``{"kind": name, "error": ...}``. ``envs``: extra variables per
    contender (e.g. PYTHONPATH, to time two versions of pdenet against each other). Workers that do not time through
    :func:`time_rounds` (a bandwidth probe) simply run to their end."""
    import tempfile

    import signal
    import threading

    procs: dict[str, _Contender] = {}
    logs = {name: tempfile.TemporaryFile("w+") for name in contenders}
    # a write to a worker that has died must come back as BrokenPipeError, not as SIGPIPE: a
    # library in this process may have installed a handler for it (PETSc's aborts the process)
    main = threading.current_thread() is threading.main_thread()
    old_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN) if main else None
    try:
        for name, args in contenders.items():
            procs[name] = _Contender(module, args, threads, {**(env or {}), **(envs or {}).get(name, {})},
                                     logs[name])
        live = [name for name in contenders if procs[name].ready()]
        for r in range(repeat):
            k = r % max(len(live), 1)
            for name in live[k:] + live[:k]:
                if procs[name].round() is None:
                    live.remove(name)
        return {name: procs[name].finish({"kind": name}) for name in contenders}
    finally:
        for c in procs.values():
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        for fh in logs.values():
            fh.close()
        if old_pipe is not None:
            signal.signal(signal.SIGPIPE, old_pipe)


def paired_ratio(slow: dict[str, Any], fast: dict[str, Any]) -> tuple[float, float, float]:
    """Median and range (min, max) of the per-round ratios slow/fast of two contenders timed by
    :func:`alternate` (round i of one against round i of the other); from the medians when the
    rounds do not pair up."""
    a, b = np.asarray(slow.get("times", [])), np.asarray(fast.get("times", []))
    if a.size and a.size == b.size:
        r = a / b
        return float(np.median(r)), float(r.min()), float(r.max())
    m = slow["median_s"] / fast["median_s"]
    return m, m, m


def ratio_text(slow: dict[str, Any], fast: dict[str, Any]) -> str:
    """``1.23x (rounds 1.10-1.31)``: :func:`paired_ratio` as text."""
    m, lo, hi = paired_ratio(slow, fast)
    return f"{m:.2f}x (rounds {lo:.2f}-{hi:.2f})"


def machine_line(threads: int) -> str:
    """The conditions of a measurement: threads per contender, the load average before it,
    numpy's BLAS and its core type (threadpoolctl), with a warning when OPENBLAS_CORETYPE forces
    an older kernel set."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    blas = "BLAS: threadpoolctl not installed"
    try:
        import threadpoolctl

        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            blas = f"BLAS: {i.get('internal_api')} {i.get('version')} core type {i.get('architecture')}"
    except ImportError:
        pass
    forced = os.environ.get("OPENBLAS_CORETYPE")
    warn = f"  WARNING: OPENBLAS_CORETYPE={forced} forces the BLAS kernels" if forced else ""
    return f"  {threads} thread(s) per contender; load average {load} (1/5/15 min); {blas}; {os.cpu_count()} cores{warn}"
