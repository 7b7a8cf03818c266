"""What a case needs against what the machine has: memory, read before anything is allocated.

``total_memory()`` (physical memory) is the same on every rank of a homogeneous job and bounds
what any mesh can hold; ``available_memory()`` (``MemAvailable`` of ``/proc/meminfo``) is what a
run can use now. Both return None where the platform does not say, and the checks are then
skipped.
"""
from __future__ import annotations

import os

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def format_bytes(n: float) -> str:
    """``8e15`` -> ``'8.0 PB'`` (decimal units, one decimal)."""
    n = float(min(n, 10 ** 300))  # a count beyond any machine (and beyond float range)
    for unit in _UNITS:
        if abs(n) < 1000.0 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} {_UNITS[-1]}"  # pragma: no cover


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name == field:
                    parts = rest.split()
                    return int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf(pages: str) -> int | None:
    try:
        n, size = os.sysconf(pages), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return n * size if n > 0 and size > 0 else None


def total_memory() -> int | None:
    """Physical memory of this machine in bytes (None if unknown)."""
    return _meminfo("MemTotal") or _sysconf("SC_PHYS_PAGES")


def available_memory() -> int | None:
    """Memory a new computation can use now, in bytes (None if unknown)."""
    return _meminfo("MemAvailable") or _sysconf("SC_AVPHYS_PAGES")


def thread_limit() -> int:
    """The most threads numba's parallel kernels may use in this process (``NUMBA_NUM_THREADS``,
    by default the machine's cores)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def check_threads(case, key: str = "solver.threads", ranks: int = 1) -> int:
    """The numba threads of a run: ``[solver] threads`` (1 .. :func:`thread_limit`, else a
    one-line error naming the key), else ``NUMBA_NUM_THREADS`` when the environment sets it,
    else 1 -- and 1 per rank when ``ranks`` > 1 and the case does not say. Parallel kernels are
    opt-in: on a shared machine a thread that waits for a busy core makes every parallel region
    wait (measured: a 512^2 Fokker-Planck step took 1.4 ms on one thread and 17 ms on two, at a
    load average of 5 on 2 cores)."""
    n = case.get(key)
    if n is None:
        env = os.environ.get("NUMBA_NUM_THREADS", "")
        return int(env) if env.isdigit() and int(env) > 0 and ranks == 1 else 1
    most = thread_limit()
    if not 1 <= n <= most:
        raise case.error(f"threads = {n}: this process allows 1 to {most} (NUMBA_NUM_THREADS={most}; "
                         "set that variable to allow more)", key=key)
    return int(n)


class numba_threads:
    """``with numba_threads(n):`` numba's parallel kernels use ``n`` threads inside (None: leave
    the setting alone; more than NUMBA_NUM_THREADS allows: that many); the previous count is
    restored after."""

    def __init__(self, n: int | None) -> None:
        self.n, self.before = n, None

    def __enter__(self) -> "numba_threads":
        if self.n is not None:
            import numba

            self.before = numba.get_num_threads()
            numba.set_num_threads(min(self.n, thread_limit()))
        return self

    def __exit__(self, *exc) -> None:
        if self.before is not None:
            import numba

            numba.set_num_threads(self.before)
