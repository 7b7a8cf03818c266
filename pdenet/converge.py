"""Refinement studies: run a case at successive values of one key, measure errors and
observed orders of convergence.

The error of the chosen field at the final saved time is measured against the
case's ``[exact]`` solution when there is one (the run's own ``error_<field>_<norm>``
diagnostic, which every model writes the same way), otherwise against the finest
run (restricted by cell averaging onto each coarser mesh when the key is
``mesh.cells``). With the finest run as reference the last orders are biased
low by the reference's own error; the table says which reference was used.
"""
import math

import numpy as np

from .errors import CaseError
from .runner import run

KEYS = ("mesh.cells", "time.steps", "time.dt")


def _resolution(key, value):
    v = value[0] if isinstance(value, list) else value
    return 1.0 / float(v) if key == "time.dt" else float(v)


def _parse_values(key, values, source):
    out = []
    for v in values:
        if isinstance(v, str):
            try:
                v = float(v) if key == "time.dt" else int(v)
            except ValueError:
                raise CaseError(f"refinement value {v!r} is not a number", key=key, source=source) from None
        parts = v if isinstance(v, list) and key == "mesh.cells" else [v]
        if not parts or any(isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p)
                            or p <= 0 for p in parts):
            raise CaseError(f"refinement value {v!r} must be a positive number", key=key, source=source)
        out.append(v)
    if len(out) < 2:
        raise CaseError("a refinement study needs at least two values", key=key, source=source)
    res = [_resolution(key, v) for v in out]
    if any(b <= a for a, b in zip(res, res[1:])):
        raise CaseError("values must refine monotonically (cells/steps increasing, dt decreasing)",
                        key=key, source=source)
    if key == "mesh.cells":  # the runs' fields are compared by restriction onto the coarser mesh
        for a, b in zip(out, out[1:]):
            pairs = zip(a, b) if isinstance(a, list) and isinstance(b, list) else [(a, b)]
            if any(not isinstance(x, int) or not isinstance(y, int) or y % x for x, y in pairs):
                raise CaseError(f"{b} cells is not an integer refinement of {a} (each value must be a "
                                f"multiple of the one before, e.g. {a},{2 * a})", key=key, source=source)
    return out


def _override(key, value, ndim):
    if key == "mesh.cells":
        cells = value if isinstance(value, list) else [value] * ndim
        return f"mesh.cells=[{', '.join(str(int(c)) for c in cells)}]"
    return f"{key}={value}"


def _norm(mesh, err, norm):
    if norm == "max":
        return float(np.max(np.abs(err)))
    # discrete L2 on the mesh, root-mean-square over samples
    sq = mesh.integrate(err ** 2)
    return float(np.sqrt(np.mean(sq)))


def converge(case, key, values, field=None, norm="l2", quiet=True, progress=None):
    """Run the study; returns a dict with values, errors, orders, reference and runs' meshes."""
    from .case import _deepcopy, apply_overrides, build_case, load_case

    case = load_case(case)
    if key not in KEYS:
        raise CaseError(f"cannot refine {key!r}; one of {', '.join(KEYS)}", key=key, source=case.source)
    if norm not in ("l2", "max"):
        raise CaseError(f"unknown norm {norm!r} (l2 or max)", key="--norm", source=case.source)
    values = _parse_values(key, values, case.source)
    ndim = len(case["mesh.cells"]) if isinstance(case["mesh.cells"], list) else 1
    results = []
    for v in values:
        raw = apply_overrides(_deepcopy(case.raw), [_override(key, v, ndim)])
        if key in ("time.dt", "time.steps"):
            # refine at fixed t_end: the other of steps/dt follows
            raw["time"]["t_end"] = case["time.t_end"]
            raw["time"].pop("steps" if key == "time.dt" else "dt", None)
        c = build_case(raw, case.source, case.base_dir)
        r = run(c, write=False, quiet=quiet)
        results.append(r)
        if progress:
            progress(1)
    field = field or next(iter(results[0].fields))
    if field not in results[0].fields:
        raise CaseError(f"field {field!r} not produced; have {', '.join(results[0].fields)}",
                        key="--field", source=case.source)
    finals = [r.fields[field][-1] for r in results]
    exact = case.get("exact") or {}
    errors = []
    if field in exact:
        reference = "exact"
        # every model writes its errors against [exact] as error_<field>_<norm> at each save
        # (pdenet.models.base.error_norms): the study reads them, it never rebuilds a model
        name = f"error_{field}_{norm}"
        for r in results:
            if name not in r.diagnostics:
                raise CaseError(f"model {case.model!r} does not write the diagnostic {name!r} for "
                                f"[exact] {field}", key=f"exact.{field}", source=case.source)
            errors.append(float(np.asarray(r.diagnostics[name])[-1]))
    else:
        reference = "finest"
        fine_mesh, fine = results[-1].mesh, finals[-1]
        for r, u in zip(results[:-1], finals[:-1]):
            ref = r.mesh.restrict(fine, fine_mesh) if key == "mesh.cells" else fine
            errors.append(_norm(r.mesh, u - ref, norm))
        errors.append(float("nan"))
    # successive differences |u_h - u_{h/r}| (restricted to the coarser mesh): their ratios give
    # unbiased observed orders, whereas errors against the finest run are biased near it
    differences = []
    for (r0, u0), (r1, u1) in zip(zip(results, finals), zip(results[1:], finals[1:])):
        ref = r0.mesh.restrict(u1, r1.mesh) if key == "mesh.cells" else u1
        differences.append(_norm(r0.mesh, u0 - ref, norm))
    differences.append(float("nan"))
    basis = errors if reference == "exact" else differences
    res = [_resolution(key, v) for v in values]
    orders = [float("nan")]
    for i in range(1, len(values)):
        e0, e1 = basis[i - 1], basis[i]
        if e0 > 0 and e1 > 0 and math.isfinite(e0) and math.isfinite(e1):
            orders.append(math.log(e0 / e1) / math.log(res[i] / res[i - 1]))
        else:
            orders.append(float("nan"))
    # headline scalars of each run (loss, accuracy, ...) beside the field errors
    scalars = {}
    for name in HEADLINE:
        vals = [r.attrs.get(name) for r in results]
        if all(isinstance(v, (int, float, np.floating)) for v in vals):
            scalars[name] = [float(v) for v in vals]
    return {"key": key, "values": values, "resolution": res, "errors": errors, "orders": orders,
            "differences": differences, "scalars": scalars,
            "field": field, "norm": norm, "reference": reference, "case": case}


HEADLINE = ("loss", "accuracy", "test_loss", "test_accuracy")


def table(study):
    """The printed table of a refinement study: values, errors, observed orders."""
    basis = "errors" if study["reference"] == "exact" else "successive differences"
    lines = [f"refinement of {study['key']}  field {study['field']}  norm {study['norm']}  "
             f"error against: {study['reference']}  orders from: {basis}",
             f"{'value':>12} {'error':>14} {'difference':>14} {'order':>8}"
             + "".join(f" {name:>14}" for name in study.get("scalars", {}))]

    def fmt(x, spec):
        return "-" if not math.isfinite(x) else format(x, spec)
    scalars = study.get("scalars", {})
    for i, (v, e, d, p) in enumerate(zip(study["values"], study["errors"], study["differences"], study["orders"])):
        vs = str(v if not isinstance(v, list) else "x".join(map(str, v)))
        extra = "".join(f" {fmt(vals[i], '.6g'):>14}" for vals in scalars.values())
        lines.append(f"{vs:>12} {fmt(e, '.6e'):>14} {fmt(d, '.6e'):>14} {fmt(p, '.3f'):>8}{extra}")
    return "\n".join(lines)


def write_study(study, path, plot_path=None):
    """Write /convergence/* to HDF5 (with provenance) and optionally a log-log plot."""
    from .io import H5Sink
    from .runner import provenance

    sink = H5Sink(path, "none")
    sink.start(provenance(study["case"]), None)
    vals = np.array([v if not isinstance(v, list) else v[0] for v in study["values"]], dtype=float)
    sink.write("convergence", "values", vals, {"key": study["key"]})
    sink.write("convergence", "errors", np.array(study["errors"]))
    sink.write("convergence", "differences", np.array(study["differences"]),
               {"meaning": "norm of u_h - u_(next finer), restricted to the coarser mesh"})
    sink.write("convergence", "orders", np.array(study["orders"]))
    for name, vals in study.get("scalars", {}).items():
        sink.write("convergence", name, np.array(vals), {"meaning": f"the run's {name} attribute per value"})
    sink.set_attrs({"convergence_key": study["key"], "convergence_field": study["field"],
                    "convergence_norm": study["norm"], "convergence_reference": study["reference"]})
    sink.finish("complete")
    if plot_path:
        from .plot import plot_convergence
        plot_convergence(study, plot_path)
