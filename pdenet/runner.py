"""Run a case: build the model, attach sinks, drive it, always close the output.

The HDF5 file is finished (renamed from its ``.partial``) on success, on a
numerical failure, on Ctrl-C and on SIGTERM, with ``status`` saying which, so
what was computed so far stays readable: as the output when complete, else as
``OUT.failed.h5`` / ``OUT.interrupted.h5`` (:func:`~pdenet.io.hdf5.kept_name`).
"""
from __future__ import annotations

import datetime
import signal
import sys
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from solvers.errors import NumericalError

from ._version import __version__
from .case import load_case
from .errors import Interrupted, PdenetError, SolverError
from .io import FanOut, H5Sink, MemorySink
from .io.hdf5 import kept_name
from .resources import numba_threads

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .case import Case
    from .models.base import Model


class _Interrupts:
    """Ctrl-C and SIGTERM during a run, delivered even when Python swallows them.

    SIGTERM raises KeyboardInterrupt like Ctrl-C. A KeyboardInterrupt that lands in a callback
    Python cannot raise from (a weakref or ``__del__`` callback during garbage collection, seen
    while numba compiles into a cold cache) would be printed as "Exception ignored ..." and lost;
    here it is remembered instead, silently, and raised at the next progress report or save.

    A save is atomic with respect to Ctrl-C and SIGTERM (:meth:`atomic`): a signal during a save
    is only recorded and raised when the save is complete; a second one during the same save
    aborts it at once (the HDF5 sink rolls the save back), so every saved row is whole."""

    # the handler left after an interrupted run (the command line: SIG_IGN, as it is about to exit
    # and a second Ctrl-C must not turn its one-line report into a traceback); None: restore
    after_interrupt: Any = None

    def __init__(self) -> None:
        self.pending = self.interrupted = False
        self.saving = 0    # depth of atomic() blocks
        self.signals = 0   # signals received during the current save

    def on_signal(self, signum, frame):
        self.interrupted = True
        if not self.saving:
            raise KeyboardInterrupt
        self.pending = True
        self.signals += 1
        if self.signals == 2:
            raise KeyboardInterrupt

    @contextmanager
    def atomic(self, final=False):
        """A save (or, ``final``, the closing of the output, after which nothing is raised)."""
        self.saving += 1
        try:
            yield
        finally:
            self.saving -= 1
            if not self.saving:
                self.signals = 0
        if final:
            self.pending = False
        elif not self.saving:
            self.check()

    def check(self) -> None:
        if self.pending and not self.saving:   # inside a save: raised when it completes
            self.pending = False
            raise KeyboardInterrupt

    def progress(self, update):
        def report(k):
            self.check()
            return update(k)
        return report

    @contextmanager
    def installed(self):
        def unraisable(info, default=sys.unraisablehook):
            if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
                self.pending = self.interrupted = True
            else:
                default(info)
        old_hook = sys.unraisablehook
        sys.unraisablehook = unraisable
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig == signal.SIGTERM or signal.getsignal(sig) is signal.default_int_handler:
                try:
                    old[sig] = signal.signal(sig, self.on_signal)
                except ValueError:  # not the main thread
                    pass
        try:
            yield self
        finally:
            sys.unraisablehook = old_hook
            for sig, handler in old.items():
                after = self.after_interrupt if self.interrupted else None
                signal.signal(sig, handler if after is None else after)


class _CheckedSink(FanOut):
    """The run's sinks, each write atomic with respect to interrupts and raising a remembered
    interrupt (:class:`_Interrupts`) before and after it. ``start`` is atomic too: a file is
    created with its whole layout (provenance, /mesh, an empty /time) or not at all."""

    def __init__(self, interrupts: _Interrupts, *sinks) -> None:
        super().__init__(*sinks)
        self.interrupts = interrupts

    def atomic(self):
        """Several writes that belong together (the /train records of one checkpoint) as one save."""
        return self.interrupts.atomic()

    def __getattribute__(self, name: str) -> Any:
        forward = super().__getattribute__(name)
        if name in ("start", "save", "put_field", "put_diagnostic", "write", "set_attrs", "finish"):
            interrupts = object.__getattribute__(self, "interrupts")

            def checked(*args: Any, **kwargs: Any) -> None:
                if name != "finish":
                    interrupts.check()
                with interrupts.atomic(final=name == "finish"):
                    forward(*args, **kwargs)
            return checked
        return forward


def progress_bar(total, desc, quiet):
    """A tqdm.auto bar on stderr (see :func:`pdenet.log.progress`; none with ``quiet``)."""
    from .log import progress

    return progress(total, desc, quiet)


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
    # an overflow while the model is set up (a learning rate near the float maximum) is reported
    # by the model's own checks of what it computed, in one line, not as numpy warnings
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return loaded.model_cls(loaded, comm)


def run(case, output=None, overrides=(), quiet=None, write=True, extra_sinks=(), comm=None, force=False,
        resume=None):
    """Solve a case; returns the :class:`~pdenet.io.Result`.

    ``case``: a path, TOML text or a loaded :class:`~pdenet.case.Case`.
    ``output``: HDF5 path (default: the case's ``[output] path`` or
    ``<name>.h5``); ``write=False`` keeps everything in memory only.
    ``comm``: an mpi4py communicator to spread the run over (models with a
    ``[solver] backend = "petsc"``); every rank runs this call, the state is
    gathered at each save and rank 0 alone writes the file.
    ``force``: replace an existing output that is not a pdenet HDF5 file (the case file too).
    ``quiet``: True, no progress bar; False, always one; None (default), one once the run has
    lasted 2 s (a widget in Jupyter). The ``pdenet`` logger (:mod:`pdenet.log`) reports the
    run's start and end. ``resume``: a :class:`pdenet.restart.Resume` (``pdenet run --resume``).
    A run holds a lock on its output for its whole length (a second run to the same output
    raises :class:`~pdenet.errors.OutputError` at once); a failed or interrupted run keeps
    its file as ``OUT.failed.h5`` / ``OUT.interrupted.h5`` and leaves ``OUT.h5`` alone.
    """
    model = validate(case, overrides, comm)  # everything that can be rejected is, before any file exists
    case = model.case
    rank = 0 if model.comm is None else model.comm.Get_rank()
    path = case.output_path(output) if write else None
    memory = MemorySink()
    h5 = H5Sink(path, case["output.compression"], force) if write and rank == 0 else None
    interrupts = _Interrupts()
    sink = _CheckedSink(interrupts, memory, h5, *extra_sinks)
    bar = progress_bar(model.work_units(), case.name, True if rank != 0 else quiet)
    from .log import logger

    logger.info("%s: model %s, output %s", case.source or case.name, case.model, path or "(memory only)")
    with interrupts.installed():
        try:
            sink.start(provenance(case), model.mesh)
            for key, (values, attrs) in case.input_arrays().items():   # Case.from_dict arrays/functions
                sink.write("inputs", key, values, attrs)
            # overflow is detected and reported by the solvers (non-finite state), not warned about
            if resume is not None:   # pdenet run --resume: the saves before the resumed one
                resume.replay(sink)
            with np.errstate(over="ignore", invalid="ignore"), resume.active() if resume else nullcontext(), \
                    numba_threads(model.threads):
                model.run(sink, interrupts.progress(bar.update))
        except KeyboardInterrupt:
            sink.finish("interrupted", "interrupted by the user")
            raise Interrupted(f"{case.source}: interrupted; partial results kept in {kept_name(path, 'interrupted')}"
                              if h5 is not None else f"{case.source}: interrupted") from None
        except NumericalError as exc:
            sink.finish("failed", str(exc))
            where = f" (partial results kept in {kept_name(path, 'failed')})" if h5 is not None else ""
            raise SolverError(f"{case.source}: {exc}{where}") from None
        except BaseException as exc:
            sink.finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            sink.finish("complete")
        finally:
            bar.close()
    logger.info("%s: complete%s", case.source or case.name, f", wrote {path}" if path else "")
    return memory.result(path)
