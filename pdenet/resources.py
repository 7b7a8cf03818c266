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
