"""The output lock, in the standard library alone.

A run holds ``OUT.h5.lock`` exclusively (``flock``) for its whole length
(:meth:`pdenet.io.hdf5.H5Sink.start` takes it). :func:`refuse_if_locked` probes that
lock without holding it, so that ``pdenet run`` can refuse a second run to the same
target before numpy, h5py, numba or the model are imported (a fraction of a second,
where the full start-up takes seconds). The probe is only an early answer: the lock
taken by the sink is what guarantees exclusivity.
"""
from __future__ import annotations

import fcntl
import os
import tomllib

from ..errors import OutputError


def lock_name(path: str) -> str:
    return path + ".lock"


def held_message(path: str) -> str:
    return (f"{path}: another pdenet run is writing this file (lock {lock_name(path)} is held); "
            "wait for it to finish or choose another output")


def is_locked(path: str) -> bool:
    """Whether a run holds the lock of output ``path`` now (never creates the lock file)."""
    try:
        fd = os.open(lock_name(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock this probe took
    return False


def target_of(case_path: str, output: str | None, overrides: list[str] | tuple[str, ...]) -> str | None:
    """The output path ``pdenet run CASE [-o OUTPUT] [--set ...]`` will write, found from the
    TOML alone, as :meth:`pdenet.case.Case.output_path` finds it; ``None`` where it cannot be
    told this cheaply (an override of ``case.*``/``output.*``, an unreadable or invalid case:
    the full validation then reports it)."""
    if output is not None:
        return os.fspath(output)
    if any(o.split("=", 1)[0].strip().startswith(("case.", "output.")) for o in overrides):
        return None
    try:
        with open(case_path, "rb") as fh:
            data = tomllib.load(fh)
        name = data["case"]["name"]
        path = data.get("output", {}).get("path")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if path:
        if not isinstance(path, str):
            return None
        return path if os.path.isabs(path) else os.path.join(os.path.dirname(os.path.abspath(case_path)), path)
    return f"{name}.h5" if isinstance(name, str) else None


def refuse_if_locked(case_path: str, output: str | None, overrides: list[str] | tuple[str, ...] = ()) -> None:
    """Raise the one-line :class:`OutputError` of a held lock, before any heavy import."""
    path = target_of(case_path, output, overrides)
    if path and is_locked(path):
        raise OutputError(held_message(path))
