"""Parameter sweeps: one case run over the Cartesian product of grids of key values.

``pdenet sweep CASE.toml --grid model.diffusion=0.1,0.5 --grid mesh.cells=[50],[100]``
runs every combination with the ordinary runner, each into its own HDF5 file
in the output folder (named from the key values), and writes ``summary.h5``
indexing them: the values, status (complete | failed | interrupted), error
message, the numeric root attributes each run set (loss, accuracy, mass, ...),
the file, the rank and the wall time. A failed case is recorded and the others
go on; the exit status is non-zero when any case did not complete.

Under ``mpiexec -n P`` (with mpi4py) case i runs on rank i mod P; every rank
sends rank 0 one record per case as it finishes, and rank 0 shows the progress
bar, writes the summary and prints the table. Cases are independent runs, so
the speed-up is P as long as the cases take similar times and memory allows P
of them at once.
"""
import datetime
import itertools
import math
import os
import re
import sys
import time
import tomllib

import numpy as np

from ._version import __version__
from .case import apply_overrides, load_case, parse_override
from .errors import CaseError, PdenetError

STATUSES = ("complete", "failed", "interrupted")
SUMMARY = "summary.h5"
#: attributes shown first in the printed table when a run sets them
PREFERRED = ("loss", "accuracy", "test_loss", "test_accuracy", "mass", "free_energy", "error_rho_l2",
             "steady_residual", "mfpt_initial", "error")
_TAG = 17


def _split_top_level(text):
    """Split at commas that are not inside brackets or quotes: ``[1,2],[3,4]`` -> 2 items."""
    items, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    items.append("".join(cur).strip())
    return items


def parse_grids(items, source=None):
    """``["key=v1,v2", ...]`` -> ``[(key, [(text, value), ...]), ...]`` (values parsed as TOML,
    else kept as strings, like ``--set``)."""
    grids, seen = [], set()
    for item in items:
        if "=" not in item:
            raise CaseError(f"--grid expects key=v1,v2,..., got {item!r}", key="--grid", source=source)
        key, text = item.split("=", 1)
        key = key.strip()
        if key in seen:
            raise CaseError("appears in two --grid options; give its values once", key=key, source=source)
        seen.add(key)
        texts = _split_top_level(text)
        if not texts or any(not t for t in texts):
            raise CaseError(f"--grid has an empty value in {item!r}", key=key, source=source)
        values = []
        for t in texts:
            try:
                _, v = parse_override(f"{key}={t}")
            except CaseError as exc:
                raise exc.at(source=source) from None
            values.append((t, v))
        grids.append((key, values))
    if not grids:
        raise CaseError("give at least one --grid key=v1,v2,...", key="--grid", source=source)
    return grids


def _slug(text):
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text.strip("\"'")).strip("_") or "_"


def output_names(name, grids, combos):
    """File names from the key values: ``<name>_<key>-<value>_....h5``, the key's last part
    (the whole key where that is ambiguous), an index prefix where two would still clash."""
    keys = [k for k, _ in grids]
    tails = [k.split(".")[-1] for k in keys]
    if len(set(tails)) < len(tails):
        tails = [k.replace(".", "-") for k in keys]
    names = [f"{_slug(name)}_" + "_".join(f"{_slug(t)}-{_slug(text)}" for t, (text, _) in zip(tails, combo))
             + ".h5" for combo in combos]
    if len(set(names)) < len(names):
        names = [f"{i:04d}_{n}" for i, n in enumerate(names)]
    return names


def _numeric_attrs(attrs):
    out = {}
    for k, v in attrs.items():
        if isinstance(v, (bool, np.bool_)):
            continue
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v)
    return out


def _write_stub(path, case_path, overrides, message):
    """A failed case that never started (invalid input) still gets its file: provenance,
    status failed and the message, so every case of the sweep has one."""
    from .io import H5Sink

    text, model, name = "", "", ""
    try:
        with open(case_path, "rb") as fh:
            raw = tomllib.load(fh)
        apply_overrides(raw, overrides)
        import tomli_w

        text, model = tomli_w.dumps(raw), str(raw.get("case", {}).get("model", ""))
        name = str(raw.get("case", {}).get("name", ""))
    except Exception:  # the message already says what is wrong with the input
        pass
    sink = H5Sink(path, "none")
    sink.start({"pdenet_version": __version__, "model": model, "case": text, "case_name": name,
                "case_source": case_path,
                "created": _now()}, None)
    sink.finish("failed", message)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_one(index, case_path, overrides, path, rank=0):
    """Run one case of the sweep; always returns its record (never raises, except on Ctrl-C,
    after recording it as ``interrupted``)."""
    from .runner import Interrupted, run

    rec = {"index": index, "status": "failed", "message": "", "path": path, "attrs": {},
           "rank": rank, "wall_time": 0.0}
    start = time.perf_counter()
    from .io.hdf5 import kept_name

    for stale in (path, kept_name(path, "failed"), kept_name(path, "interrupted")):
        if os.path.exists(stale):
            os.remove(stale)
    try:
        try:
            case = load_case(case_path, overrides)
            result = run(case, output=path, quiet=True)
        except Interrupted as exc:
            rec.update(status="interrupted", message=str(exc))
            raise KeyboardInterrupt from None
        except PdenetError as exc:
            rec["message"] = str(exc)
        except KeyboardInterrupt:
            rec.update(status="interrupted", message="interrupted")
            raise
        except Exception as exc:  # a bug or an unforeseen input: recorded, the sweep goes on
            rec["message"] = f"{type(exc).__name__}: {exc}"
        else:
            rec["status"] = result.status
            rec["attrs"] = _numeric_attrs(result.attrs)
    finally:
        rec["wall_time"] = time.perf_counter() - start
        if rec["status"] != "complete":  # the run's file is kept as <case>.failed.h5 / .interrupted.h5
            rec["path"] = kept_name(path, rec["status"])
            if not os.path.exists(rec["path"]):
                try:
                    _write_stub(path, case_path, overrides, rec["message"] or rec["status"])
                    rec["path"] = kept_name(path, "failed")
                except (OSError, PdenetError):
                    rec["path"] = ""
    return rec


def _bar(total, quiet):
    from .log import progress

    return progress(total, "sweep", quiet, unit="case")


def sweep(case_path, grid_items, outdir=None, overrides=(), quiet=False, comm=None):
    """Run the sweep; returns ``(records, summary_path)`` on rank 0 and ``(None, None)`` on the others.

    ``grid_items``: ``["key=v1,v2", ...]``; ``overrides``: ``--set`` items applied to every case.
    """
    from .parallel import world

    comm = comm if comm is not None else world()
    rank, size = comm.Get_rank(), comm.Get_size()
    base = load_case(case_path, overrides)  # the base case must be valid (every rank checks)
    grids = parse_grids(grid_items, base.source)
    combos = list(itertools.product(*[values for _, values in grids]))
    outdir = outdir or f"{_slug(base.name)}_sweep"
    paths = [os.path.join(outdir, n) for n in output_names(base.name, grids, combos)]
    case_overrides = [list(overrides) + [f"{k}={text}" for (k, _), (text, _) in zip(grids, combo)]
                      for combo in combos]
    if rank == 0:
        os.makedirs(outdir, exist_ok=True)
    comm.barrier()
    n = len(combos)
    mine = range(rank, n, size)
    records = []
    interrupted = False

    def run_mine(report):
        nonlocal interrupted
        for i in mine:
            if interrupted:
                rec = {"index": i, "status": "interrupted", "message": "not started (sweep interrupted)",
                       "path": "", "attrs": {}, "rank": rank, "wall_time": 0.0}
            else:
                try:
                    rec = run_one(i, case_path, case_overrides[i], paths[i], rank)
                except KeyboardInterrupt:
                    interrupted = True
                    rec = {"index": i, "status": "interrupted", "message": "interrupted", "path": paths[i],
                           "attrs": {}, "rank": rank, "wall_time": 0.0}
            report(rec)

    if size == 1:
        bar = _bar(n, quiet)
        try:
            run_mine(lambda rec: (records.append(rec), bar.update(1)))
        finally:
            bar.close()
    else:
        from mpi4py import MPI

        try:
            if rank == 0:
                bar = _bar(n, quiet)

                def drain(block):
                    while len(records) < n:
                        if not block and not comm.iprobe(source=MPI.ANY_SOURCE, tag=_TAG):
                            return
                        records.append(comm.recv(source=MPI.ANY_SOURCE, tag=_TAG))
                        bar.update(1)

                def report(rec):
                    records.append(rec)
                    bar.update(1)
                    drain(False)

                run_mine(report)
                drain(True)
                bar.close()
            else:
                run_mine(lambda rec: comm.send(rec, dest=0, tag=_TAG))
        except BaseException as exc:  # an error outside a case: every rank must stop
            print(f"pdenet: error on rank {rank}: {type(exc).__name__}: {exc}", file=sys.stderr)
            comm.Abort(1)
    if rank != 0:
        return None, None
    records.sort(key=lambda r: r["index"])
    for rec, combo in zip(records, combos):
        rec["values"] = [text for text, _ in combo]
    summary = os.path.join(outdir, SUMMARY)
    write_summary(summary, base, grids, combos, records, size)
    return records, summary


def write_summary(path, base, grids, combos, records, ranks=1):
    """``summary.h5``: provenance of the base case and the ``/sweep`` group indexing the runs."""
    import h5py

    from .io import H5Sink
    from .runner import provenance

    strings = h5py.string_dtype()
    counts = {s: sum(r["status"] == s for r in records) for s in STATUSES}
    status = "complete" if counts["complete"] == len(records) else (
        "interrupted" if counts["interrupted"] else "failed")
    sink = H5Sink(path, "none", keep_apart=False)  # the index of the runs, whatever their status
    attrs = provenance(base)
    attrs.update(sweep_keys=[k for k, _ in grids], n_cases=len(records), ranks=int(ranks),
                 **{f"n_{s}": int(c) for s, c in counts.items()})
    sink.start(attrs, None)
    try:
        sink.write("sweep", "keys", np.array([k for k, _ in grids], dtype=strings))
        for j, (key, _) in enumerate(grids):
            vals = [combo[j][1] for combo in combos]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                data = np.array(vals, dtype=float)
            else:
                data = np.array([combo[j][0] for combo in combos], dtype=strings)
            sink.write("sweep/values", key, data)
        sink.write("sweep", "status", np.array([r["status"] for r in records], dtype=strings))
        sink.write("sweep", "message", np.array([r["message"] for r in records], dtype=strings))
        base_dir = os.path.dirname(os.path.abspath(path))
        sink.write("sweep", "path", np.array([os.path.relpath(os.path.abspath(r["path"]), base_dir)
                                              if r["path"] else "" for r in records], dtype=strings),
                   {"meaning": "output file of each case, relative to this file's folder"})
        sink.write("sweep", "rank", np.array([r["rank"] for r in records], dtype=np.int64))
        sink.write("sweep", "wall_time", np.array([r["wall_time"] for r in records]))
        names = sorted({k for r in records for k in r["attrs"]})
        for name in names:
            sink.write("sweep/attrs", name, np.array([r["attrs"].get(name, np.nan) for r in records]))
        # the same records as an N-d grid over the swept keys (one axis per key, in --grid order),
        # so xarray selects by value: open_dataset(path, engine="h5netcdf", group="sweep/grid")
        shape = tuple(len(values) for _, values in grids)
        for key, values in grids:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in values):
                axis = np.array([v for _, v in values], dtype=float)
            else:
                axis = np.array([text for text, _ in values], dtype=strings)
            sink.write("sweep/grid", key, axis)
        sink.write("sweep/grid", "status", np.array([r["status"] for r in records], dtype=strings).reshape(shape))
        sink.write("sweep/grid", "path", np.array([os.path.relpath(os.path.abspath(r["path"]), base_dir)
                                                   if r["path"] else "" for r in records],
                                                  dtype=strings).reshape(shape))
        sink.write("sweep/grid", "wall_time", np.array([r["wall_time"] for r in records]).reshape(shape))
        for name in names:
            sink.write("sweep/grid", name,
                       np.array([r["attrs"].get(name, np.nan) for r in records]).reshape(shape))
    except BaseException:
        sink.finish("failed", "writing the summary failed")
        raise
    sink.finish(status)


def load_summary(path):
    """Read ``summary.h5`` back: a list of records (index, values {key: value}, status, message,
    path (absolute), rank, wall_time, attrs {name: float})."""
    import h5py

    from .errors import OutputError
    from .io.netcdf import is_bare_dimension

    def s(x):
        return x.decode() if isinstance(x, bytes) else str(x)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise OutputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        if "sweep" not in fh:
            raise OutputError(f"{path}: not a sweep summary (no /sweep group)")
        g = fh["sweep"]
        keys = [s(k) for k in g["keys"][()]]
        values = {k: [s(v) if isinstance(v, bytes) else float(v) for v in g["values"][k][()]] for k in keys}
        attrs = {k: v[()] for k, v in g["attrs"].items() if not is_bare_dimension(v)} if "attrs" in g else {}
        base_dir = os.path.dirname(os.path.abspath(path))
        out = []
        for i, st in enumerate(g["status"][()]):
            p = s(g["path"][i])
            out.append({"index": i, "values": {k: values[k][i] for k in keys}, "status": s(st),
                        "message": s(g["message"][i]), "path": os.path.join(base_dir, p) if p else "",
                        "rank": int(g["rank"][i]), "wall_time": float(g["wall_time"][i]),
                        "attrs": {k: float(v[i]) for k, v in attrs.items() if math.isfinite(v[i])}})
    return out


def table(records, grids_keys):
    """The printed summary: one row per case, then the messages of the failed ones."""
    names = sorted({k for r in records for k in r["attrs"]})
    shown = [k for k in PREFERRED if k in names][:4] or names[:3]
    cols = ["#"] + list(grids_keys) + ["status"] + shown + ["file"]
    rows = []
    for r in records:
        attrs = [format(r["attrs"][k], ".6g") if k in r["attrs"] else "-" for k in shown]
        rows.append([str(r["index"])] + list(r["values"]) + [r["status"]] + attrs
                    + [os.path.basename(r["path"]) or "-"])
    widths = [max(len(c), *(len(row[j]) for row in rows)) for j, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(cols, widths)))]
    for row in rows:
        lines.append("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
    bad = [r for r in records if r["status"] != "complete"]
    for r in bad:
        lines.append(f"[{r['index']}] {r['status']}: {r['message']}")
    counts = {s: sum(r["status"] == s for r in records) for s in STATUSES}
    lines.append(", ".join(f"{c} {s}" for s, c in counts.items() if c or s == "complete")
                 + f" of {len(records)} cases")
    return "\n".join(lines)


__all__ = ["sweep", "parse_grids", "output_names", "run_one", "write_summary", "load_summary", "table"]
