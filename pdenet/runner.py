"""Run a case: build the model, attach sinks, drive it, always close the output.

The HDF5 file is finished (renamed from ``.partial``) on success, on a
numerical failure, on Ctrl-C and on SIGTERM, with ``status`` saying which, so
what was computed so far stays readable.
"""
from __future__ import annotations

import datetime
import signal
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from solvers.errors import NumericalError

from ._version import __version__
from .case import load_case
from .errors import PdenetError, SolverError
from .io import FanOut, H5Sink, MemorySink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .case import Case
    from .models.base import Model


class Interrupted(PdenetError):
    """Ctrl-C or SIGTERM during a run (partial output kept)."""


@contextmanager
def _sigterm_as_interrupt():
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def progress_bar(total, desc, quiet):
    """A tqdm bar on stderr (silent with ``quiet`` or when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False,
                disable=True if quiet else None, dynamic_ncols=True)


def provenance(case):
    return {
        "pdenet_version": __version__,
        "model": case.model,
        "case": case.text,
        "case_name": case.name,
        "case_source": case.source,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def validate(case: str | Case, overrides: Sequence[str] = (), comm: Any = None) -> Model:
    """The validation phase of :func:`run`, alone: load ``case`` (a path, TOML text or a
    :class:`~pdenet.case.Case`) with ``overrides`` and construct its model, which checks
    everything the run would reject (keys, expressions evaluated on the mesh, memory, stability
    limits). Returns the model; raises :class:`~pdenet.errors.CaseError` (or
    :class:`~pdenet.errors.ExpressionError`) with the one-line message ``run`` would give.
    Writes nothing. ``pdenet validate`` and :func:`run` both call it."""
    loaded = load_case(case, overrides)
    return loaded.model_cls(loaded, comm)


def run(case, output=None, overrides=(), quiet=True, write=True, extra_sinks=(), comm=None):
    """Solve a case; returns the :class:`~pdenet.io.Result`.

    ``case``: a path, TOML text or a loaded :class:`~pdenet.case.Case`.
    ``output``: HDF5 path (default: the case's ``[output] path`` or
    ``<name>.h5``); ``write=False`` keeps everything in memory only.
    ``comm``: an mpi4py communicator to spread the run over (models with a
    ``[solver] backend = "petsc"``); every rank runs this call, the state is
    gathered at each save and rank 0 alone writes the file.
    """
    model = validate(case, overrides, comm)  # everything that can be rejected is, before any file exists
    case = model.case
    rank = 0 if model.comm is None else model.comm.Get_rank()
    path = case.output_path(output) if write else None
    memory = MemorySink()
    h5 = H5Sink(path, case["output.compression"]) if write and rank == 0 else None
    sink = FanOut(memory, h5, *extra_sinks)
    bar = progress_bar(model.work_units(), case.name, quiet or rank != 0)
    with _sigterm_as_interrupt():
        try:
            sink.start(provenance(case), model.mesh)
            # overflow is detected and reported by the solvers (non-finite state), not warned about
            with np.errstate(over="ignore", invalid="ignore"):
                model.run(sink, bar.update)
        except KeyboardInterrupt:
            sink.finish("interrupted", "interrupted by the user")
            raise Interrupted(f"{case.source}: interrupted; partial results kept in {path}"
                              if h5 is not None else f"{case.source}: interrupted") from None
        except NumericalError as exc:
            sink.finish("failed", str(exc))
            where = f" (partial results kept in {path})" if h5 is not None else ""
            raise SolverError(f"{case.source}: {exc}{where}") from None
        except BaseException as exc:
            sink.finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            sink.finish("complete")
        finally:
            bar.close()
    return memory.result(path)
