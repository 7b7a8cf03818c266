"""Case-file model ``mean-field``: signal propagation in wide random networks and optimal
learning-rate control (PRODUCT.md 1.4; review §3.1–3.2, §4.4).

Analyses (``[model] analyses``, any subset):

* ``phase`` — the order-to-chaos phase diagram on the mesh: the 2-D ``[mesh]`` box is the
  (sigma_w^2, sigma_b^2) plane and the quantities are evaluated at the cell centres.
  ``/fields/<name>`` (one save at t = 0, shape (1, n_w, n_b)): q_star, c_star, chi_1, chi_c,
  xi_q, xi_c; ``/analysis/critical_sw2`` is the critical line (chi_1 = 1, by root finding) at
  the sigma_b^2 centres ``/analysis/critical_sb2``.
* ``maps`` — the length and correlation maps through ``depth`` layers at one
  (sigma_w^2, sigma_b^2) (``/analysis/maps_q``, ``maps_c``), and, with ``width`` > 0, one
  random network with explicit weights (``network_q``, ``network_c``) plus, with
  ``replicates`` > 1, the standard error of a single network's measurement
  (``network_q_stderr``, ``network_c_stderr``); fixed points and depth scales as attributes.
* ``lr_control`` — SGD on a quadratic: the closed-form optimal schedule and switching time,
  the HJB grid solution, and simulated SGD under optimal / constant / 1/t schedules
  (``/controls/u_*``, ``/analysis/lr_*``, attributes ``lr_*``).
* ``ntk`` — the Gram matrices of a ``depth``-layer network on the inputs ``[model.ntk] inputs``:
  the NNGP kernel ``/analysis/nngp`` and the neural tangent kernel ``/analysis/ntk`` (NTK
  parameterisation of Jacot et al.), and with ``width`` > 0 the empirical NTK of one random
  network of that width (``/analysis/ntk_empirical``); see :mod:`pdenet.meanfield.ntk`.
* ``residual`` — mean-field maps of a residual network (``form = "resnet"``) or of the network
  PDE's Euler step z <- z + tau phi(a - B z) (``form = "pde"``) through ``depth`` layers
  (``/analysis/residual_q``, ``residual_c``, ``residual_m``), the tau -> 0 limit at T = depth tau
  (attributes ``residual_limit_*``), and a random residual network of ``width`` with its sampling
  error (``residual_network_*``); see :mod:`pdenet.meanfield.residual`.
"""

import numpy as np

from ..case import Key
from ..errors import CaseError
from . import maps as mf
from . import empirical, lr_control, ntk, residual, trainability
from ..models.base import Model

ANALYSES = ["phase", "maps", "lr_control", "ntk", "residual"]
ACTIVATION_NAMES = sorted(mf.ACTIVATIONS)


NTK_SOURCES = ("digits", "mnist1d")


def ntk_inputs(value, load=False):
    """Check (and with ``load``, build) the (n, d) input array of ``[model.ntk] inputs``."""
    key = "model.ntk.inputs"
    if isinstance(value, str):
        name, _, count = value.partition(":")
        if name not in NTK_SOURCES or not count.isdigit() or int(count) < 1:
            raise CaseError(f"expected a list of input vectors or \"digits:N\" / \"mnist1d:N\" (N >= 1), "
                            f"got {value!r}", key=key)
        if not load:
            return None
        from ..network import data as nd
        try:
            ds = nd.load_digits() if name == "digits" else nd.load_mnist1d()
        except nd.DataError as exc:
            raise CaseError(str(exc), key=key) from None
        if int(count) > ds.inputs.shape[0]:
            raise CaseError(f"{name} has only {ds.inputs.shape[0]} training inputs", key=key)
        return ds.inputs[: int(count)].reshape(int(count), -1).astype(float)
    ok = (isinstance(value, list) and value and all(isinstance(r, list) and r for r in value)
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in value for v in r))
    if not ok:
        raise CaseError(f"expected a non-empty list of non-empty lists of numbers, got {value!r}", key=key)
    if len({len(r) for r in value}) != 1:
        raise CaseError("all input vectors must have the same length", key=key)
    X = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(X)):
        raise CaseError("inputs must be finite", key=key)
    if not np.any(X):
        raise CaseError("the inputs must not all be zero", key=key)
    return X


class MeanFieldModel(Model):
    """Mean-field signal propagation and learning-rate control (PRODUCT.md 1.4)."""

    name = "mean-field"
    #: no time evolution, no solver, no exact solution: a case that sets one of these is rejected
    unused_keys = ("time", "solver", "exact")
    fields = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")
    coordinate_prefix = "x"
    schema = {
        "mesh": {
            "lower": Key("floats", [0.5, 0.0], "phase: lower corner (sigma_w^2, sigma_b^2) of the "
                         "phase-diagram box."),
            "upper": Key("floats", [4.0, 0.5], "phase: upper corner (sigma_w^2, sigma_b^2)."),
            "cells": Key("ints", [35, 5], "phase: cells in sigma_w^2 and sigma_b^2 (values at the "
                         "cell centres).", positive=True),
        },
        "model": {
            "analyses": Key("strs", ["phase"], "Which analyses to run.", choices=ANALYSES),
            "activation": Key("str", "tanh", "phi.", choices=ACTIVATION_NAMES),
            "maps": {
                "sw2": Key("float", 1.76, "sigma_w^2.", positive=True),
                "sb2": Key("float", 0.05, "sigma_b^2.", minimum=0.0),
                "q_in": Key("float", 1.0, "Squared length per coordinate of the two inputs.",
                            positive=True),
                "c_in": Key("float", 0.6, "Correlation of the two inputs."),
                "depth": Key("int", 30, "Number of layers.", positive=True),
                "width": Key("int", 1000, "Width of the random network (0: maps only).", minimum=0),
                "replicates": Key("int", 100, "Independent networks for the sampling error "
                                  "(exact conditional sampler; 0 or 1: none).", minimum=0),
                "seed": Key("int", 0, "Seed of the random networks.", minimum=0),
            },
            "ntk": {
                "inputs": Key("any", [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.5, 0.5]],
                              "The n inputs: a list of equal-length lists of numbers, or a data source "
                              "\"digits:N\" / \"mnist1d:N\" (the first N training inputs, flattened)."),
                "depth": Key("int", 3, "Layers (K^1 is the input layer's Gram matrix).", positive=True),
                "sw2": Key("float", 1.76, "sigma_w^2.", positive=True),
                "sb2": Key("float", 0.05, "sigma_b^2.", minimum=0.0),
                "width": Key("int", 0, "Width of one random network for the empirical NTK (0: none).",
                             minimum=0),
                "seed": Key("int", 0, "Seed of the random network.", minimum=0),
            },
            "residual": {
                "form": Key("str", "pde", "pde: z <- z + tau phi(a - B z) (the network PDE's Euler step); "
                            "resnet: h <- h + tau (W phi(h) + b).", choices=list(residual.FORMS)),
                "sw2": Key("float", 1.0, "sigma_w^2: variance N Var(B_ij) (pde: model.kernel.scale^2).",
                           positive=True),
                "sb2": Key("float", 0.25, "sigma_b^2: variance of a (pde: model.bias.scale^2) or b.",
                           minimum=0.0),
                "tau": Key("float", 0.25, "Step tau (the PDE's dt).", positive=True),
                "depth": Key("int", 40, "Number of residual layers L (T = L tau).", positive=True),
                "q_in": Key("float", 1.0, "Squared length per coordinate of the two inputs about their mean.",
                            positive=True),
                "c_in": Key("float", 0.3, "Correlation of the two inputs about their mean."),
                "mean_in": Key("float", 0.0, "Constant added to every input coordinate (pde form)."),
                "width": Key("int", 1000, "Width of the random residual network (0: maps only).", minimum=0),
                "replicates": Key("int", 100, "Networks of the same law for the sampling error.", minimum=0),
                "seed": Key("int", 0, "Seed of the random networks.", minimum=0),
            },
            "lr_control": {
                "a": Key("float", 1.0, "Curvature of f(x) = a x^2/2.", positive=True),
                "eta": Key("float", 0.1, "Learning rate (SME time t = k eta).", positive=True),
                "Sigma": Key("float", 1.0, "Gradient-noise variance.", positive=True),
                "m0": Key("float", 1.0, "Initial second moment E[x_0^2].", positive=True),
                "T": Key("float", 10.0, "Horizon in SME time.", positive=True),
                "runs": Key("int", 20000, "Simulated SGD runs per schedule.", positive=True),
                "seed": Key("int", 0, "Seed of the SGD simulation.", minimum=0),
                "hjb_cells": Key("int", 1201, "Grid points in m of the HJB solve.", positive=True),
                "hjb_steps": Key("int", 1000, "Time steps of the HJB solve.", positive=True),
            },
        },
    }

    @classmethod
    def validate(cls, data):
        analyses = data["model"]["analyses"]
        if not analyses:
            raise CaseError("name at least one analysis", key="model.analyses")
        if "phase" in analyses:
            mesh = data["mesh"]
            dims = {len(v) if isinstance(v, list) else 1 for v in (mesh["lower"], mesh["upper"], mesh["cells"])}
            if dims != {2}:
                raise CaseError("the phase diagram needs a 2-D mesh: [sigma_w^2, sigma_b^2]",
                                key="mesh.cells")
            if mesh["lower"][0] <= 0.0:
                raise CaseError("sigma_w^2 must be positive", key="mesh.lower")
            if mesh["lower"][1] < 0.0:
                raise CaseError("sigma_b^2 must be >= 0", key="mesh.lower")
        if "ntk" in analyses:
            ntk_inputs(data["model"]["ntk"]["inputs"])
        if abs(data["model"]["residual"]["c_in"]) > 1.0:
            raise CaseError("a correlation lies in [-1, 1]", key="model.residual.c_in")
        if abs(data["model"]["maps"]["c_in"]) > 1.0:
            raise CaseError("a correlation lies in [-1, 1]", key="model.maps.c_in")
        return data

    def __init__(self, case, comm=None):
        super().__init__(case, comm)
        self.analyses = list(dict.fromkeys(case["model.analyses"]))
        self.activation = mf.activation(case["model.activation"])

    def memory_estimate(self):
        """The phase diagram: its fields once, plus a few work arrays, on the (sigma_w^2, sigma_b^2) mesh."""
        return 8 * self.mesh.size * (len(self.fields) + 4)

    def work_units(self):
        units = 0
        if "phase" in self.analyses:
            units += self.mesh.size
        return units + sum(a in self.analyses for a in ("maps", "lr_control", "ntk", "residual"))

    # -- analyses -----------------------------------------------------------
    def _phase(self, sink, progress):
        sw2_axis, sb2_axis = self.mesh.axes
        pd = mf.phase_diagram(sw2_axis, sb2_axis, self.activation, progress=lambda done, total: progress(1))
        want = self.saved_fields()
        sink.save(0.0, {name: getattr(pd, name) for name in want}, {})
        sink.write("analysis", "critical_sw2", pd.critical_sw2,
                   {"meaning": "critical sigma_w^2 (chi_1 = 1) at each sigma_b^2 of critical_sb2"})
        sink.write("analysis", "critical_sb2", sb2_axis)
        return {"critical_sw2_min": float(pd.critical_sw2.min()),
                "critical_sw2_max": float(pd.critical_sw2.max())}

    def _maps(self, sink, progress):
        c, a = self.case, self.activation
        sw2, sb2 = c["model.maps.sw2"], c["model.maps.sb2"]
        q_in, c_in, depth = c["model.maps.q_in"], c["model.maps.c_in"], c["model.maps.depth"]
        q, cc = mf.propagate(q_in, c_in, sw2, sb2, a, depth)
        sink.write("analysis", "maps_layer", np.arange(1, depth + 1))
        sink.write("analysis", "maps_q", q, {"meaning": "length map q_l, layers 1..depth"})
        sink.write("analysis", "maps_c", cc, {"meaning": "correlation map c_l, layers 1..depth"})
        width, reps, seed = c["model.maps.width"], c["model.maps.replicates"], c["model.maps.seed"]
        if width > 0:
            net = empirical.random_network(q_in, c_in, sw2, sb2, a, depth, width, seed=seed)
            sink.write("analysis", "network_q", net.q, {"meaning": "measured mean squared pre-activation"})
            sink.write("analysis", "network_c", net.c, {"meaning": "measured correlation"})
            if reps > 1:
                se = empirical.sampling_error(
                    empirical.conditional_network(q_in, c_in, sw2, sb2, a, depth, width, reps, seed=seed + 1))
                sink.write("analysis", "network_q_stderr", 0.5 * (se.q_a + se.q_b))
                sink.write("analysis", "network_c_stderr", se.c)
        qs = mf.fixed_point_q(sw2, sb2, a, q0=float(q[0]))  # the fixed point q_1 is attracted to
        cs = mf.fixed_point_c(sw2, sb2, a, qs)
        chi_c = mf.chi_c(sw2, sb2, a, qs, cs)
        out = {"maps_sw2": sw2, "maps_sb2": sb2, "maps_q_in": q_in, "maps_c_in": c_in,
               "maps_width": width, "maps_replicates": reps if width > 0 else 0, "maps_q_star": qs, "maps_c_star": cs, "maps_chi_1": mf.chi_1(sw2, sb2, a, qs),
               "maps_chi_c": chi_c, "maps_xi_q": mf.xi_q(sw2, sb2, a, qs),
               "maps_xi_c": mf.depth_scale(chi_c), "maps_critical_sw2": mf.critical_sw2(sb2, a),
               "maps_trainable_depth": trainability.MEASURED_FACTOR * mf.depth_scale(chi_c),
               "maps_trainable_depth_factor": trainability.MEASURED_FACTOR,
               "maps_trainable_depth_schoenholz": 6.0 * mf.depth_scale(chi_c),
               "maps_trainable_depth_review": 4.5 * mf.depth_scale(chi_c)}
        progress(1)
        return out

    def _lr_control(self, sink, progress):
        c = self.case
        p = lr_control.QuadraticSGD(a=c["model.lr_control.a"], eta=c["model.lr_control.eta"],
                                    Sigma=c["model.lr_control.Sigma"], m0=c["model.lr_control.m0"],
                                    T=c["model.lr_control.T"])
        hjb = lr_control.solve_hjb(p, n_m=c["model.lr_control.hjb_cells"], n_t=c["model.lr_control.hjb_steps"])
        m_hjb, u_hjb = hjb.trajectory()
        t = lr_control.step_times(p)
        for name, schedule in lr_control.SCHEDULES.items():
            sink.write("controls", f"u_{name}", schedule(t, p), {"meaning": f"{name} rate factor at t_k = k eta"})
        sink.write("controls", "u_hjb", u_hjb, {"meaning": "HJB grid feedback along the optimal path"})
        sink.write("analysis", "lr_t", t)
        sink.write("analysis", "lr_hjb_t", hjb.t)
        sink.write("analysis", "lr_hjb_m", m_hjb)
        sink.write("analysis", "lr_m_optimal", lr_control.optimal_moment(hjb.t, p),
                   {"meaning": "closed-form E[x^2] along the optimal schedule"})
        for name, schedule in lr_control.SCHEDULES.items():
            sink.write("analysis", f"lr_expected_loss_{name}",
                       lr_control.expected_loss_path(schedule(t, p), p),
                       {"meaning": f"exact expected loss of discrete SGD at t_k = k eta, k = 0..K "
                                   f"({name} schedule)"})
        sink.write("analysis", "lr_loss_t", np.arange(p.steps + 1) * p.eta)
        res = lr_control.compare_schedules(p, runs=c["model.lr_control.runs"], seed=c["model.lr_control.seed"])
        out = {"lr_switching_time": lr_control.switching_time(p), "lr_a": p.a, "lr_eta": p.eta,
               "lr_Sigma": p.Sigma, "lr_m0": p.m0, "lr_T": p.T,
               "lr_hjb_switching_time": hjb.switching_time()}
        for name, r in res.items():
            for k, v in r.items():
                out[f"lr_loss_{name}_{k}"] = v
        progress(1)
        return out

    def _ntk(self, sink, progress):
        c, a = self.case, self.activation
        X = ntk_inputs(c["model.ntk.inputs"], load=True)
        depth, sw2, sb2 = c["model.ntk.depth"], c["model.ntk.sw2"], c["model.ntk.sb2"]
        if sb2 == 0.0 and np.any(np.einsum("ij,ij->i", X, X) == 0.0):
            raise CaseError("a zero input with sigma_b^2 = 0 has a degenerate kernel", key="model.ntk.sb2")
        K, Theta = ntk.nngp_ntk(X, depth, sw2, sb2, a)
        sink.write("analysis", "ntk_inputs", X)
        sink.write("analysis", "nngp", K, {"meaning": f"NNGP kernel K^L after L = {depth} layers"})
        sink.write("analysis", "ntk", Theta, {"meaning": f"infinite-width NTK Theta^L, L = {depth}, "
                                                         "NTK parameterisation (Jacot et al. 2018)"})
        lam = np.linalg.eigvalsh(Theta)
        sink.write("analysis", "ntk_eigenvalues", lam)
        out = {"ntk_depth": depth, "ntk_sw2": sw2, "ntk_sb2": sb2, "ntk_inputs_n": X.shape[0],
               "ntk_lambda_min": float(lam[0]), "ntk_lambda_max": float(lam[-1]),
               "ntk_parameterisation": "ntk (Jacot et al. 2018): W, b ~ N(0,1); "
                                       "h = sigma_w/sqrt(n) W phi + sigma_b b"}
        width = c["model.ntk.width"]
        if width > 0:
            p = ntk.init_params(X.shape[1], width, depth, seed=c["model.ntk.seed"])
            emp = ntk.empirical_ntk(p, X, sw2, sb2, a)
            sink.write("analysis", "ntk_empirical", emp, {"meaning": f"J J^T of one random width-{width} network"})
            out["ntk_width"] = width
            out["ntk_empirical_relative_error"] = float(np.linalg.norm(emp - Theta) / np.linalg.norm(Theta))
        progress(1)
        return out

    def _residual(self, sink, progress):
        c, a = self.case, self.activation
        r = {k: c[f"model.residual.{k}"] for k in ("form", "sw2", "sb2", "tau", "depth", "q_in", "c_in",
                                                   "mean_in", "width", "replicates", "seed")}
        dim = max(r["width"], 2)
        X = empirical.correlated_inputs(r["q_in"], r["c_in"], dim, np.random.default_rng(r["seed"]))
        X = X + (r["mean_in"] if r["form"] == "pde" else 0.0)
        Q0, m0 = residual.input_stats(X, r["form"], r["sw2"], r["sb2"])
        if r["width"] == 0:             # the inputs' exact statistics, without a finite sample
            Q0 = np.array([[1.0, r["c_in"]], [r["c_in"], 1.0]]) * r["q_in"]
            m0 = np.zeros(2)
            if r["form"] == "pde":
                Q0, m0 = Q0 + r["mean_in"] ** 2, m0 + r["mean_in"]
            else:
                Q0 = r["sw2"] * Q0 + r["sb2"]
        args = (r["sw2"], r["sb2"], a)
        s = residual.propagate(Q0, m0, *args, r["depth"], r["tau"], r["form"])
        sink.write("analysis", "residual_layer", np.arange(r["depth"] + 1))
        sink.write("analysis", "residual_q", s.q, {"meaning": "mean-field q_l (mean of the two inputs), l = 0..L"})
        sink.write("analysis", "residual_c", s.c, {"meaning": "mean-field correlation c_l, l = 0..L"})
        sink.write("analysis", "residual_m", s.m.mean(axis=1), {"meaning": "mean-field per-unit mean m_l"})
        lim = residual.depth_limit(Q0, m0, *args, r["depth"] * r["tau"], form=r["form"])
        out = {f"residual_{k}": v for k, v in r.items()}
        out.update(residual_limit_T=r["depth"] * r["tau"], residual_limit_q=float(lim.q[-1]),
                   residual_limit_c=float(lim.c[-1]), residual_q_final=float(s.q[-1]),
                   residual_c_final=float(s.c[-1]))
        if r["width"] > 0:
            net = residual.random_residual(X, *args, r["depth"], r["tau"], r["form"], seed=r["seed"] + 1)
            sink.write("analysis", "residual_network_q", net.q, {"meaning": "measured q_l of one random network"})
            sink.write("analysis", "residual_network_c", net.c, {"meaning": "measured c_l of one random network"})
            if r["replicates"] > 1:
                reps = residual.conditional_residual(X, *args, r["depth"], r["tau"], r["form"], r["replicates"],
                                                     seed=r["seed"] + 2)
                sink.write("analysis", "residual_network_q_stderr", reps.q.std(0, ddof=1))
                sink.write("analysis", "residual_network_c_stderr", reps.c.std(0, ddof=1))
        progress(1)
        return out

    def run(self, sink, progress=lambda k: None):
        attrs = {"activation": self.activation.name, "analyses": self.analyses,
                 "quadrature_1d": f"Gauss-Legendre panels adapted to q ({mf.PANEL_NODES} nodes each)",
                 "quadrature_order_2d": mf.ORDER_2D}
        sink.set_attrs(attrs)
        summary = {}
        for name in self.analyses:
            summary.update(getattr(self, f"_{name}")(sink, progress))
        summary = {k: float(v) if isinstance(v, (int, float, np.floating)) else v for k, v in summary.items()}
        sink.set_attrs(summary)
        return summary
