"""HDF5 sink: the self-describing output file of PRODUCT.md section 3.

Crash safety and exclusivity: :meth:`H5Sink.start` takes an exclusive lock on the
target name (``flock`` on ``OUT.h5.lock``, held until :meth:`H5Sink.finish`; a second
writer of the same target fails at once), refuses to replace anything that is not a
pdenet HDF5 file unless ``force``, and writes a temporary file of its own beside the
target (``OUT.h5.<pid>-<random>.partial``). :meth:`H5Sink.finish`, which the runner calls
on success, on a Python error and on Ctrl-C/SIGTERM (``status`` attribute: complete |
interrupted | failed), renames it atomically: to ``OUT.h5`` only when complete,
otherwise to ``OUT.failed.h5`` / ``OUT.interrupted.h5`` (:func:`kept_name`), so a
complete ``OUT.h5`` is never replaced by a failed, interrupted or half-written run.
Each save is flushed, so even a killed process leaves a ``.partial`` file that HDF5
can read up to the last flush.

Layout: root attributes (pdenet_version, model, case, created, status, ...);
``/mesh`` with attributes and cell-centre coordinates ``x1..xn`` as dimension
scales; ``/time`` (dimension scale of the saved times); ``/fields/<name>``
(n_saved, [samples,] *cells), chunked one save per chunk and compressed;
``/diagnostics/<name>`` (n_saved,); ``/train``, ``/controls``, ``/gradients``,
``/convergence`` groups of per-run arrays.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import h5py
import numpy as np
import numpy.typing as npt

from ..errors import OutputError
from .lock import held_message, lock_name
from .netcdf import dim_names, label_file
from .sink import Sink

if TYPE_CHECKING:
    from ..mesh import Mesh

CHUNK_BYTES = 1 << 20
IO_ERRORS = (OSError, RuntimeError, ValueError, KeyError)   # what h5py raises for a failed write


def _reason(exc: BaseException) -> str:
    """One line for a failed write: the errno and its meaning where the error carries one
    (h5py puts ``errno = 28`` inside a multi-line message), else the message's first line."""
    code = getattr(exc, "errno", None)
    found = re.search(r"errno = (\d+)", str(exc))
    code = code or (int(found.group(1)) if found else None)
    if code:
        return f"errno {code}: {os.strerror(code)}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _chunks(shape: Sequence[int], itemsize: int = 8) -> tuple[int, ...]:
    """One save per chunk; split the leading non-time axes until a chunk is <= 1 MiB."""
    chunk = [1] + list(shape)
    axis = 1
    while np.prod(chunk) * itemsize > CHUNK_BYTES and axis < len(chunk):
        if chunk[axis] > 1:
            chunk[axis] = max(1, chunk[axis] // 2)
        else:
            axis += 1
    return tuple(int(c) for c in chunk)


def kept_name(path: str, status: str = "complete") -> str:
    """Where a run's file is kept: ``path`` when complete, else ``OUT.<status>.h5`` beside it."""
    if status == "complete":
        return path
    root, ext = os.path.splitext(path)
    if ext.lower() not in (".h5", ".hdf5", ".he5"):
        root, ext = path, ".h5"
    return f"{root}.{status}{ext}"


def is_pdenet_file(path: str) -> bool:
    """A regular HDF5 file with pdenet's provenance (``pdenet_version``) -- one a run may replace."""
    if not os.path.isfile(path):
        return False
    try:
        with h5py.File(path, "r", locking=False) as fh:
            return "pdenet_version" in fh.attrs
    except Exception:  # not HDF5, unreadable, truncated: not ours to replace
        return False


class H5Sink(Sink):
    """The crash-safe HDF5 output file of a run (module docstring): locked, written to a ``.partial`` file, renamed by :meth:`finish`; netCDF-4 dimensions (:mod:`pdenet.io.netcdf`)."""
    def __init__(self, path: str | os.PathLike[str], compression: str = "gzip", force: bool = False,
                 keep_apart: bool = True) -> None:
        self.path = os.fspath(path)
        self.keep_apart = keep_apart  # False: every status ends under path (an index such as summary.h5)
        self.partial = ""  # the temporary file, named by start
        self.force = force
        self.lock_fd: int | None = None
        self.compression = {"gzip": "gzip", "lzf": "lzf", "none": None}[compression]
        self.fh: Any = None   # the open h5py.File between start and finish
        self.mesh: Mesh | None = None
        self.n_saves = 0
        self.error = ""   # why a write failed; no further write is tried after one
        self._held: Any = None
        # datasets stay open until finish: one released while the disk is full writes its cached
        # chunks from its destructor, where the error cannot be raised (h5py prints a traceback)
        self._open: dict[str, Any] = {}

    # -- helpers --------------------------------------------------------------
    def _opts(self) -> dict[str, Any]:
        if self.compression == "gzip":
            return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        if self.compression == "lzf":
            return {"compression": "lzf", "shuffle": True}
        return {}

    def _attach_scales(self, dset: Any) -> None:
        """A field's axes: time, [sample,] x1..xn -- coordinates at the root (netcdf.py)."""
        cells = tuple(self.mesh.cells) if self.mesh is not None else None
        names = dim_names("fields", dset.name.rsplit("/", 1)[1], dset.shape, cells, {})
        for k, dim in enumerate(names):
            if dim == "sample" and "sample" not in self.fh:
                s = self.fh.create_dataset("sample", data=np.arange(dset.shape[k], dtype=np.int64))
                s.make_scale("sample")
            if dim in ("time", "sample") or (dim.startswith("x") and dim in self.fh):
                if dim != "time" and self.fh[dim].shape[0] != dset.shape[k]:
                    continue      # another sample count: labelled by finish
                dset.dims[k].attach_scale(self.fh[dim])
                dset.dims[k].label = dim

    def _dset(self, path: str) -> Any:
        if path not in self._open:
            self._open[path] = self.fh[path]
        return self._open[path]

    def _field(self, name: str, shape: Sequence[int], n_rows: int = 0, fill: float | None = None) -> Any:
        if f"fields/{name}" in self._open:
            return self._open[f"fields/{name}"]
        group = self.fh.require_group("fields")
        if name in group:
            return self._dset(f"fields/{name}")
        shape = tuple(shape)
        kw = dict(maxshape=(None,) + shape, chunks=_chunks(shape), dtype="f8", **self._opts())
        if fill is not None:
            kw["fillvalue"] = fill
        dset = self._open[f"fields/{name}"] = group.create_dataset(name, shape=(n_rows,) + shape, **kw)
        self._attach_scales(dset)
        return dset

    @contextmanager
    def _writing(self, what: str) -> Any:
        """A write to the file: an I/O error (disk full, ...) becomes a one-line OutputError naming
        the file and the errno; after one, every later write fails at once without touching HDF5
        (its state is not to be trusted), and :meth:`finish` only tries to close the file."""
        if self.error:
            raise OutputError(f"{self.path}: cannot write {what}: an earlier write failed ({self.error})")
        reason = ""
        try:
            yield
        except IO_ERRORS as exc:
            reason = self.error = _reason(exc)
            # the h5py objects of the failed write (in the traceback's frames) are released only
            # after finish closes the file: released now, their clean-up fails again, loudly
            self._held = exc.__traceback__
        if reason:   # raised outside the handler: no chained traceback holding h5py objects
            raise OutputError(f"{self.path}: cannot write {what} ({reason})")

    def _truncate(self, n: int, names: Sequence[str]) -> None:
        """Roll a save back to ``n`` rows (a save cut short by a second Ctrl-C or an I/O error)."""
        self.n_saves = n
        for name in names:
            try:
                if name in self.fh and self._dset(name).shape[0] > n:
                    self._dset(name).resize(n, axis=0)
            except IO_ERRORS:
                pass

    # -- sink protocol --------------------------------------------------------
    def _lock(self) -> None:
        """Hold ``OUT.h5.lock`` exclusively (a run that finds it held fails at once)."""
        lock = lock_name(self.path)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                st = os.fstat(fd)
                try:
                    now = os.stat(lock)
                except FileNotFoundError:  # removed by the run that held it just before: retry
                    now = None
            except BlockingIOError:
                os.close(fd)
                raise OutputError(held_message(self.path)) from None
            except OSError:
                os.close(fd)
                raise
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                self.lock_fd = fd
                return
            os.close(fd)

    def _unlock(self) -> None:
        if self.lock_fd is not None:
            try:
                os.unlink(self.path + ".lock")  # before closing, while still held
            except OSError:
                pass
            os.close(self.lock_fd)
            self.lock_fd = None

    def _check_targets(self) -> None:
        """Refuse to replace anything but a pdenet file (a directory or device even with force)."""
        for name in (self.path, kept_name(self.path, "failed"), kept_name(self.path, "interrupted")):
            if not os.path.lexists(name) or (os.path.isfile(name) and self.force) or is_pdenet_file(name):
                continue
            why = "is not a regular file" if not os.path.isfile(name) else \
                "exists and is not a pdenet output file; refusing to replace it (--force / force=True replaces it)"
            raise OutputError(f"{name}: {why}")

    def start(self, attrs: Mapping[str, Any], mesh: Mesh | None) -> None:
        """Lock the target, refuse what may not be replaced, create the ``.partial`` file: root attributes, ``/mesh``, the root coordinates ``x1..xn`` and ``time``."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            self._lock()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot create output file ({exc})") from None
        try:
            self._check_targets()
            self.partial = f"{self.path}.{os.getpid()}-{secrets.token_hex(4)}.partial"
            self.fh = h5py.File(self.partial, "x")
        except OSError as exc:
            self._unlock()
            raise OutputError(f"{self.path}: cannot create output file ({exc})") from None
        except BaseException:
            self._unlock()
            raise
        self.mesh = mesh
        self.set_attrs(attrs)
        self.fh.attrs["status"] = "running"
        # room for the closing message in the root's header now: added at the end, on a full disk,
        # it needs new space there that cannot be written (the file would become unreadable)
        self.fh.attrs["message"] = ""
        if mesh is not None:
            g = self.fh.create_group("mesh")
            desc = mesh.describe()
            g.attrs["lower"] = desc["lower"]
            g.attrs["upper"] = desc["upper"]
            g.attrs["cells"] = desc["cells"]
            g.attrs["boundary"] = json.dumps(desc["boundary"])
            g.attrs["ndim"] = mesh.ndim
            # cell centres: coordinate variables (dimension scales) at the root, where netCDF-4
            # lets every group use them (netcdf.py); /mesh keeps the attributes
            for d, axis in enumerate(mesh.axes):
                ds = self.fh.create_dataset(f"x{d + 1}", data=axis)
                ds.make_scale(f"x{d + 1}")
        self._create_time()
        self.fh.flush()

    def _create_time(self) -> None:
        t = self.fh.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
        t.make_scale("time")

    def save(self, t: float, fields: Mapping[str, npt.ArrayLike], diagnostics: Mapping[str, float]) -> None:
        # all rows or none: /time, every field and diagnostic are cut back to the previous save
        # when this one does not complete (I/O error, a second Ctrl-C: see runner._Interrupts)
        """Append one save to ``/time``, every field and diagnostic, and flush; all rows or none (rolled back on an error or a second Ctrl-C)."""
        i = self.n_saves
        names = ["time", *(f"fields/{k}" for k in fields), *(f"diagnostics/{k}" for k in diagnostics)]
        with self._writing(f"save {i} (t = {t:g})"):
            try:
                self.n_saves += 1
                for name, arr in fields.items():
                    arr = np.asarray(arr, dtype=float)
                    dset = self._field(name, arr.shape)
                    dset.resize((self.n_saves,) + arr.shape)
                    dset[i] = arr
                group: Any = self.fh.require_group("diagnostics") if diagnostics else {}
                for name, value in diagnostics.items():
                    if name not in group:
                        group.create_dataset(name, shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
                    d = self._dset(f"diagnostics/{name}")
                    d.resize((self.n_saves,))
                    d[i] = value
                tset = self._dset("time")
                tset.resize((self.n_saves,))
                tset[i] = t
                self.fh.flush()
            except BaseException:
                self._truncate(i, names)
                raise

    def put_field(self, name: str, index: int, array: npt.ArrayLike, n_saved: int) -> None:
        """Fill slot ``index`` of a field created at full size with NaN (the co-state, computed backward)."""
        array = np.asarray(array, dtype=float)
        with self._writing(f"field {name} [{index}]"):
            dset = self._field(name, array.shape, n_rows=n_saved, fill=np.nan)
            if dset.shape[0] < n_saved:
                dset.resize((n_saved,) + array.shape)
            dset[index] = array
            self.fh.flush()

    def put_diagnostic(self, name: str, index: int, value: float, n_saved: int) -> None:
        """Fill slot ``index`` of a diagnostic created at full size with NaN."""
        with self._writing(f"diagnostic {name} [{index}]"):
            group = self.fh.require_group("diagnostics")
            if name not in group:
                group.create_dataset(name, shape=(n_saved,), maxshape=(None,), dtype="f8",
                                     fillvalue=np.nan, chunks=(256,))
            self._dset(f"diagnostics/{name}")[index] = value

    def write(self, group: str, name: str, array: npt.ArrayLike, attrs: Mapping[str, Any] | None = None) -> None:
        """Write (or replace) the per-run array ``/group/name`` with its attributes; compressed above 1024 entries."""
        array = np.asarray(array)
        kw = self._opts() if array.size > 1024 else {}
        with self._writing(f"/{group}/{name}"):
            g = self.fh.require_group(group)
            if name in g:
                del g[name]
            d = g.create_dataset(name, data=array, **kw)
            for k, v in (attrs or {}).items():
                d.attrs[k] = v
            self.fh.flush()

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Root attributes (lists of strings as string arrays, dicts as JSON)."""
        for k, v in attrs.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple)) and v and isinstance(v[0], str):
                v = np.array(v, dtype=h5py.string_dtype())
            elif isinstance(v, dict):
                v = json.dumps(v)
            with self._writing(f"attribute {k}"):
                self.fh.attrs[k] = v

    def finish(self, status: str = "complete", message: str = "") -> None:
        """Name every axis (netCDF-4), write ``status``/``message``, close, rename the ``.partial`` file to the target (complete) or ``OUT.<status>.h5``, unlock."""
        if self.fh is None:
            return
        if not self.error:
            try:   # name every axis not named yet (netCDF-4 dimensions); skipped after a failed write
                label_file(self.fh, tuple(self.mesh.cells) if self.mesh is not None else None)
            except IO_ERRORS:
                pass
        failed, self.error = self.error, ""
        try:
            with self._writing(f"status {status}"):
                if "time" not in self.fh:  # a start cut short (a second Ctrl-C): complete the layout
                    self._create_time()
                self.fh.attrs["status"] = status
                if message:
                    self.fh.attrs["message"] = message
                elif "message" in self.fh.attrs and not self.fh.attrs["message"]:
                    del self.fh.attrs["message"]
                self.fh.close()
        except OutputError:
            try:
                self.fh.close()
            except IO_ERRORS:
                pass
            if not failed:   # the run's own error (an earlier failed write) is the one to report
                raise
        finally:
            self.fh = self._held = None
            self._open = {}
            try:
                os.replace(self.partial, kept_name(self.path, status) if self.keep_apart else self.path)
            finally:
                self._unlock()
