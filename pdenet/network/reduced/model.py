"""Case-file model ``network-hjb``: the functional HJB of Liu & Markowich §4.3 for a reduced
(one- or two-mode) network (see :mod:`pdenet.network.reduced.hjb` and
docs/network-training.md, "Reduced functional HJB").

``[mesh]`` is the grid of the mode amplitudes c (one dimension per mode), where the value
function V(c, t) and the feedback alpha*(c, t) live; the label mesh of the network is
``model.label_cells`` cells on Y = (0, 1).

Output: ``/fields/value`` (V^n on the c-grid) and ``/fields/feedback`` (alpha* at t_n; NaN
at T) at the saves of ``[time] outputs`` (default 4) or ``save_every``; ``model.outputs`` is a
deprecated alias of ``time.outputs``; diagnostics ``value_on_path`` (V along the closed loop)
and ``cost_to_go`` (the closed loop's actual remaining cost); ``/analysis``: the closed-loop
and open-loop paths and controls, the Gram matrix, the modes; root attributes
``value_c0``, ``cost_closed_loop``, ``cost_open_loop`` and their differences.
"""
import math
import warnings

import numpy as np

from ...case import REQUIRED, Key, resolve_time
from ...errors import CaseError
from ...expr import coordinate_env, coordinate_names
from .hjb import MODE_ACTIVATIONS, ReducedProblem, ReductionError, closed_loop_report, open_loop, solve_hjb, sup_sigma
from ...models.base import Model


class NetworkHJBModel(Model):
    """Value function, optimal feedback and closed loop of a one- or two-mode network (§4.3)."""

    name = "network-hjb"
    unused_keys = ("time.checkpoint_every", "solver", "exact")
    fields = ("value", "feedback")
    coordinate_prefix = "c"
    schema = {
        "mesh": {
            "lower": Key("floats", REQUIRED, "Lower corner of the grid of mode amplitudes c (one "
                         "number per mode); with a bounded activation it must contain the reachable "
                         "set c0 +- T sup|sigma|."),
            "upper": Key("floats", REQUIRED, "Upper corner of the c-grid."),
            "cells": Key("ints", REQUIRED, "Cells per mode of the c-grid (V lives at the centres).",
                         positive=True),
        },
        "model": {
            "activation": Key("str", "tanh", "sigma; sigma(0) = 0 keeps the span of the modes "
                              "invariant.", choices=list(MODE_ACTIVATIONS)),
            "label_cells": Key("int", 8, "Cells of the network's label mesh on Y = (0, 1).",
                               positive=True),
            "modes": Key("any", REQUIRED, "One or two intervals [lo, hi] of Y = (0, 1): the modes "
                         "phi_r = indicator of Y_r (disjoint, end points on label-cell faces)."),
            "psi": Key("exprs", REQUIRED, "The kernel b(y, z) = sum_r phi_r(y) psi_r(z): one expression "
                       "of y per mode; the reduced dynamics use G_rk = (psi_r, phi_k)."),
            "control": Key("floats", None, "Weights e_r of the control a(y, t) = alpha(t) sum_r e_r "
                           "phi_r(y) (default: the first mode, e = [1, 0])."),
            "box": Key("floats", REQUIRED, "[alpha-, alpha+]: the box of the control amplitude."),
            "tikhonov": Key("float", 0.0, "lambda: running cost lambda/2 int_Y |a|^2 dy.", minimum=0.0),
            "c0": Key("floats", REQUIRED, "Initial amplitudes: f_I = sum_r c0_r phi_r."),
            "target": Key("floats", REQUIRED, "Target amplitudes d: loss 1/2 int_Y |f(T) - sum_r d_r "
                          "phi_r|^2 dy."),
            "alpha_points": Key("int", 41, "Equispaced alpha values searched per grid point "
                                "(box ends included).", minimum=2),
            "refine": Key("int", 40, "Golden-section iterations refining the best alpha (0: grid "
                          "only).", minimum=0),
            "outputs": Key("int", None, "Deprecated alias of [time] outputs (saved times after t = 0; "
                           "default 4).", positive=True),
            "open_loop": Key("bool", True, "Also minimise over open-loop controls by L-BFGS-B with "
                             "the full network's gradient (the reference optimum)."),
            "open_loop_maxiter": Key("int", 1000, "L-BFGS-B iterations per start.", positive=True),
        },
    }

    @classmethod
    def validate(cls, data):
        time = data["time"]
        if time["stepper"] != "euler":
            raise CaseError("the dynamic programme uses the network's explicit-Euler step; use "
                            "stepper = \"euler\"", key="time.stepper")
        data["time"] = time = resolve_time(time)
        mdl = data["model"]
        if mdl["outputs"] is not None:          # the deprecated alias of [time] outputs
            if time.get("outputs") is not None or time.get("save_every") is not None:
                raise CaseError("model.outputs is the deprecated alias of [time] outputs; give only "
                                "[time] outputs (or save_every)", key="model.outputs")
            warnings.warn("network-hjb: model.outputs is deprecated; use [time] outputs", FutureWarning,
                          stacklevel=2)
            time["outputs"] = mdl["outputs"]
        if time.get("outputs") is None and time.get("save_every") is None:
            time["outputs"] = DEFAULT_OUTPUTS
        modes = mdl["modes"]
        if (not isinstance(modes, list) or not 1 <= len(modes) <= 2
                or not all(isinstance(p, list) and len(p) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in p) for p in modes)):
            raise CaseError(f"expected one or two intervals [lo, hi], got {modes!r}", key="model.modes")
        m = len(modes)
        for key in ("psi", "c0", "target", "control"):
            v = mdl[key]
            if v is None:
                continue
            n = len(v) if isinstance(v, list) else 1
            if n != m:
                raise CaseError(f"has {n} entries for {m} modes", key=f"model.{key}")
        box = mdl["box"]
        if not isinstance(box, list) or len(box) != 2 or box[0] > box[1]:
            raise CaseError(f"expected [lower, upper] with lower <= upper, got {box!r}", key="model.box")
        mesh = data["mesh"]
        for key in ("lower", "upper", "cells"):
            v = mesh[key]
            n = len(v) if isinstance(v, list) else 1
            if n != m:
                raise CaseError(f"has {n} entries; the c-grid has one dimension per mode ({m})",
                                key=f"mesh.{key}")
        return data

    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        c = case
        m = len(c["model.modes"])
        N = c["model.label_cells"]
        y = (np.arange(N) + 0.5) / N
        names = coordinate_names("y", 1)
        env = coordinate_env("y", [y])
        psi = np.stack([c.expression("model.psi", names, text=str(t))(shape=(N,), **env)
                        for t in _as_list(c["model.psi"])])
        control = c["model.control"]
        if control is None:
            control = [1.0] + [0.0] * (m - 1)
        try:
            self.problem = ReducedProblem(c["model.activation"], N, c["model.modes"], psi,
                                          _as_list(control), c["model.box"], c["model.tikhonov"],
                                          _as_list(c["model.c0"]), _as_list(c["model.target"]),
                                          c["time.t_end"], c["time.steps"])
        except ReductionError as exc:
            raise c.error(str(exc), key=PROBLEM_KEYS[exc.argument]) from None
        p = self.problem
        reach = sup_sigma(p.activation.name) * p.T
        if math.isfinite(reach):
            lo, hi = np.asarray(self.mesh.lower), np.asarray(self.mesh.upper)
            need_lo, need_hi = p.c0 - reach, p.c0 + reach
            if np.any(lo > need_lo + 1e-12) or np.any(hi < need_hi - 1e-12):
                raise c.error(f"the c-grid [{_fmt(lo)}, {_fmt(hi)}] does not contain the reachable set "
                              f"c0 +- T sup|sigma| = [{_fmt(need_lo)}, {_fmt(need_hi)}]",
                              key="mesh.lower")
        if not np.all(np.isfinite(p.G)):
            raise c.error("psi gives non-finite values", key="model.psi")
        self.saves = self.save_schedule(p.T, p.steps)

    def work_units(self):
        return self.problem.steps + 2

    def run(self, sink, progress=lambda k: None):
        c, p = self.case, self.problem
        sol = solve_hjb(p, self.mesh, c["model.alpha_points"], c["model.refine"], progress)
        loop = closed_loop_report(sol)
        path, alphas, cost, along, to_go = loop.path, loop.alphas, loop.cost, loop.value, loop.cost_to_go
        L, dt = p.steps, p.dt
        progress(1)
        shape = tuple(self.mesh.cells)
        for n, t_n in zip(self.saves.steps, self.saves.times):
            fb = sol.A[n].reshape(shape) if n < L else np.full(shape, np.nan)
            sink.save(t_n, {"value": sol.V[n].reshape(shape), "feedback": fb},
                      {"value_on_path": float(along[n]), "cost_to_go": float(to_go[n]),
                       "path_c1": float(path[n, 0]),
                       **({"path_c2": float(path[n, 1])} if p.m == 2 else {})})
        t = np.arange(L + 1) * dt
        an = {
            "t": (t, "t_n = n dt, n = 0..L"),
            "closed_loop_c": (path, "closed-loop amplitudes c(t_n) (L+1, m)"),
            "closed_loop_alpha": (alphas, "closed-loop control alpha*(c_n, t_n) (L,)"),
            "value_on_path": (along, "V(c_n, t_n) along the closed loop"),
            "cost_to_go": (to_go, "closed-loop cost from t_n on: dt sum_{k>=n} l(alpha_k) + Phi(c_L)"),
            "gram": (p.G, "G_rk = h sum_i psi_r(y_i) phi_k(y_i)"),
            "phi": (p.phi, "modes on the label cells (m, N)"),
            "psi": (p.psi, "kernel factors on the label cells (m, N)"),
            "label_y": (p.y, "label cell centres"),
        }
        if p.m == 1:
            an["value_all"] = (sol.V[:, :, 0], "V(c, t_n) at every step (L+1, cells)")
            an["feedback_all"] = (sol.A[:, :, 0], "alpha*(c, t_n) at every step (L, cells)")
        summary = {"value_c0": float(along[0]), "cost_closed_loop": cost,
                   "network_cost_closed_loop": loop.network_cost, "reduction_error": loop.reduction_error,
                   "closed_minus_value": cost - float(along[0]), "modes": p.m, "steps": L,
                   "running_weight": p.rc}
        progress(1)
        if c["model.open_loop"]:
            a_open, J_open, runs = open_loop(p, maxiter=c["model.open_loop_maxiter"])
            c_open = p.trajectory(a_open)
            an["open_loop_c"] = (c_open, "open-loop (L-BFGS-B) amplitudes")
            an["open_loop_alpha"] = (a_open, "open-loop (L-BFGS-B) control, one value per step")
            an["open_loop_starts"] = (np.array(runs, dtype=float),
                                      "per start (alpha = 0, alpha-, alpha+): cost, iterations")
            summary.update(cost_open_loop=J_open, open_minus_value=J_open - float(along[0]),
                           closed_minus_open=cost - J_open)
        progress(1)
        for name, (arr, meaning) in an.items():
            sink.write("analysis", name, np.asarray(arr), {"meaning": meaning})
        sink.set_attrs(summary)
        return summary


DEFAULT_OUTPUTS = 4
#: the argument of ReducedProblem a ReductionError names -> the case key it came from
PROBLEM_KEYS = {"activation": "model.activation", "intervals": "model.modes", "box": "model.box"}


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _fmt(a):
    return ", ".join(f"{x:.4g}" for x in np.atleast_1d(a))
