"""Figure of a ``mean-field`` result file (``pdenet plot OUT.h5``).

One PNG with a row of panels for each analysis the file holds:

* ``phase`` — max(chi_1, chi_c) over the (sigma_w^2, sigma_b^2) box on a logarithmic colour
  scale centred at 1 (blue: ordered, red: chaotic; the value is chi_1 in both phases, since
  chi_c = chi_1 where c* = 1 and chi_c < 1 < chi_1 beyond), the critical line chi_1 = 1 from
  ``/analysis/critical_sw2`` on top, and the depth scale xi_c along sigma_w^2 for a few
  sigma_b^2 with the critical sigma_w^2 marked (xi_c diverges there; right axis: the
  trainable-depth prediction 6 xi_c);
* ``maps`` — q_l and c_l of the mean-field maps against the random network's measurements
  with +- one standard deviation of a single network's measurement (``network_*_stderr``),
  and |c_l - c*| on a log scale against the depth-scale law exp(-l / xi_c);
* ``lr_control`` — the schedules u(t) (closed form, HJB grid, constant, 1/t), the expected
  loss over time (exact discrete SGD expectation; SME closed form and HJB path), and the
  final losses (exact, with the Monte Carlo mean +- 2 standard errors).

:func:`figure_data` extracts exactly the arrays that are drawn (tests check those against the
library); :func:`make_figure` draws them; :func:`plot_meanfield` is the registered plotter.
"""
from __future__ import annotations

import math

import numpy as np

from ..plot import saved, plt
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

ROW_HEIGHT = 4.4
SCHEDULE_LABELS = {"optimal": "optimal (closed form)", "constant": "constant u = 1",
                   "inverse_time": "1/t: u = 1/(1 + a t)"}
SCHEDULE_COLOURS = {"optimal": "C0", "hjb": "C3", "constant": "C1", "inverse_time": "C2"}


def _attr(result, key, default=None):
    v = result.attrs.get(key, default)
    return default if v is None else v


def _analyses(result):
    present = []
    a, f = result.groups.get("analysis", {}), result.fields
    if "critical_sw2" in a and "chi_1" in f and "chi_c" in f:
        present.append("phase")
    if "maps_q" in a and "maps_c" in a:
        present.append("maps")
    if "lr_t" in a and any(k.startswith("u_") for k in result.groups.get("controls", {})):
        present.append("lr_control")
    if "nngp" in a and "ntk" in a:
        present.append("ntk")
    if "residual_q" in a:
        present.append("residual")
    return present


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def _phase_data(result, field=None):
    a, mesh = result.groups["analysis"], result.mesh
    edges_w = np.linspace(mesh.lower[0], mesh.upper[0], mesh.cells[0] + 1)
    edges_b = np.linspace(mesh.lower[1], mesh.upper[1], mesh.cells[1] + 1)
    sw2, sb2 = mesh.axes
    if field is None:
        image = np.maximum(result.fields["chi_1"][-1], result.fields["chi_c"][-1])
        label = r"max($\chi_1$, $\chi_c$)"
    else:
        if field not in result.fields:
            raise KeyError(f"no field {field!r}; have {', '.join(result.fields)}")
        image = np.asarray(result.fields[field][-1], dtype=float)
        label = field
    return {"sw2_edges": edges_w, "sb2_edges": edges_b, "sw2": np.asarray(sw2), "sb2": np.asarray(sb2),
            "image": image, "image_label": label, "field": field,
            "xi_c": result.fields["xi_c"][-1] if "xi_c" in result.fields else None,
            "critical_sw2": np.asarray(a["critical_sw2"], dtype=float),
            "critical_sb2": np.asarray(a.get("critical_sb2", sb2), dtype=float),
            "maps_point": ((_attr(result, "maps_sw2"), _attr(result, "maps_sb2"))
                           if _attr(result, "maps_sw2") is not None else None)}


def _maps_data(result):
    a = result.groups["analysis"]
    layer = np.asarray(a.get("maps_layer", np.arange(1, len(a["maps_q"]) + 1)))
    d = {"layer": layer, "maps_q": a["maps_q"], "maps_c": a["maps_c"],
         "network_q": a.get("network_q"), "network_c": a.get("network_c"),
         "network_q_stderr": a.get("network_q_stderr"), "network_c_stderr": a.get("network_c_stderr"),
         "q_star": _attr(result, "maps_q_star", math.nan), "c_star": _attr(result, "maps_c_star", math.nan),
         "xi_c": _attr(result, "maps_xi_c", math.nan), "xi_q": _attr(result, "maps_xi_q", math.nan),
         "chi_1": _attr(result, "maps_chi_1", math.nan),
         "width": int(_attr(result, "maps_width", 0)), "replicates": int(_attr(result, "maps_replicates", 0)),
         "sw2": _attr(result, "maps_sw2"), "sb2": _attr(result, "maps_sb2")}
    return d


def _lr_data(result):
    a, c = result.groups["analysis"], result.groups["controls"]
    d = {"t": np.asarray(a["lr_t"]), "hjb_t": np.asarray(a.get("lr_hjb_t", [])),
         "u": {k[2:]: np.asarray(v) for k, v in c.items() if k.startswith("u_")},
         "loss_t": a.get("lr_loss_t"),
         "expected_loss": {k[len("lr_expected_loss_"):]: np.asarray(v) for k, v in a.items()
                           if k.startswith("lr_expected_loss_")},
         "a": float(_attr(result, "lr_a", 1.0)),
         "switching_time": _attr(result, "lr_switching_time", math.nan),
         "hjb_switching_time": _attr(result, "lr_hjb_switching_time", math.nan),
         "final": {}}
    if "lr_m_optimal" in a:
        d["sme_loss_optimal"] = 0.5 * d["a"] * np.asarray(a["lr_m_optimal"])
    if "lr_hjb_m" in a:
        d["sme_loss_hjb"] = 0.5 * d["a"] * np.asarray(a["lr_hjb_m"])
    for name in ("optimal", "constant", "inverse_time"):
        vals = {k: result.attrs.get(f"lr_loss_{name}_{k}") for k in ("exact", "mc_mean", "mc_stderr")}
        if vals["exact"] is not None:
            d["final"][name] = vals
    return d


def figure_data(result, field=None):
    """The arrays each panel draws, keyed by analysis ("phase", "maps", "lr_control")."""
    builders = {"phase": lambda: _phase_data(result, field), "maps": lambda: _maps_data(result),
                "lr_control": lambda: _lr_data(result),
                "ntk": lambda: {k: np.asarray(v) for k, v in result.groups["analysis"].items()
                                if k in ("nngp", "ntk", "ntk_empirical", "ntk_eigenvalues")},
                "residual": lambda: {**{k: np.asarray(v) for k, v in result.groups["analysis"].items()
                                        if k.startswith("residual_")},
                                     "form": _attr(result, "residual_form", "?"),
                                     "limit_q": _attr(result, "residual_limit_q", math.nan),
                                     "limit_c": _attr(result, "residual_limit_c", math.nan)}}
    return {name: builders[name]() for name in _analyses(result)}


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------
def _draw_phase(fig, slot, d):
    ax = fig.add_subplot(slot(0, 3))
    img = d["image"].T  # (n_b, n_w)
    finite = img[np.isfinite(img)]
    if d["field"] is None:
        # log colour scale centred at 1: log10 of the value, each side stretched to its extreme
        lo = min(float(np.log10(finite.min())), -1e-3)
        hi = max(float(np.log10(finite.max())), 1e-3)
        with np.errstate(divide="ignore", invalid="ignore"):
            shown = np.log10(np.where(np.isfinite(img) & (img > 0), img, np.nan))
        norm, cmap = TwoSlopeNorm(0.0, lo, hi), "RdBu_r"
    elif np.all(finite > 0) and d["field"].startswith(("chi", "xi")):
        shown, norm, cmap = img, LogNorm(float(finite.min()), float(finite.max())), "viridis"
    else:
        shown, norm, cmap = img, Normalize(float(finite.min()), float(finite.max())), "viridis"
    mesh = ax.pcolormesh(d["sw2_edges"], d["sb2_edges"], np.where(np.isfinite(shown), shown, np.nan),
                         norm=norm, cmap=cmap, shading="flat")
    cb = fig.colorbar(mesh, ax=ax, pad=0.02)
    cb.set_label(d["image_label"] + (" (log scale, white = 1)" if d["field"] is None else ""))
    if d["field"] is None:
        ticks = [v for v in (0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0)
                 if lo <= math.log10(v) <= hi]
        cb.set_ticks([math.log10(v) for v in ticks], labels=[f"{v:g}" for v in ticks])
    ax.plot(d["critical_sw2"], d["critical_sb2"], "k-o", ms=3, lw=1.6, gid="critical_line",
            label=r"critical line $\chi_1 = 1$ (root finding)")
    if d["maps_point"] is not None and d["maps_point"][0] is not None:
        ax.plot(*d["maps_point"], "*", color="gold", mec="k", ms=13, label="maps point")
    ax.set_xlim(d["sw2_edges"][0], d["sw2_edges"][-1])
    ax.set_ylim(d["sb2_edges"][0], d["sb2_edges"][-1])
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    y_mid = 0.5 * (d["sb2_edges"][0] + d["sb2_edges"][-1])
    x_crit = float(np.interp(y_mid, d["critical_sb2"], d["critical_sw2"]))
    for x, text in ((0.5 * (d["sw2_edges"][0] + x_crit), "ordered"),
                    (0.5 * (x_crit + d["sw2_edges"][-1]), "chaotic")):
        if d["sw2_edges"][0] < x < d["sw2_edges"][-1]:
            ax.text(x, y_mid, text, ha="center", va="center", fontsize=11, weight="bold",
                    bbox=dict(boxstyle="round", fc="white", alpha=0.7))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("order-to-chaos phase diagram" + ("" if d["field"] is None else f": {d['field']}"))

    if d["xi_c"] is None:
        return
    ax = fig.add_subplot(slot(3, 6))
    nb = len(d["sb2"])
    cols = sorted(set(np.linspace(0, nb - 1, min(4, nb)).round().astype(int).tolist()))
    for k, j in enumerate(cols):
        colour = f"C{k}"
        xi = np.asarray(d["xi_c"][:, j], dtype=float)
        ax.semilogy(d["sw2"], np.where(np.isfinite(xi), xi, np.nan), "-", color=colour,
                    label=rf"$\sigma_b^2$ = {d['sb2'][j]:.3g}")
        ax.axvline(d["critical_sw2"][j], color=colour, ls="--", lw=0.9)
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"correlation depth scale $\xi_c = -1/\log \chi_c$")
    ax.set_title(r"$\xi_c$ diverges at the critical line (dashed)")
    sec = ax.secondary_yaxis("right", functions=(lambda x: 6.0 * x, lambda x: x / 6.0))
    sec.set_ylabel(r"trainable depth $\approx 6\,\xi_c$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _draw_maps(fig, slot, d):
    layer = d["layer"]
    net_label = f"random network, width {d['width']}" if d["width"] else "random network"
    bar_label = f" (± 1 s.d., {d['replicates']} networks)" if d["network_q_stderr"] is not None else ""
    for spec, key, star, ylabel in ((slot(0, 2), "q", d["q_star"], r"$q_l$ (mean squared pre-activation)"),
                                    (slot(2, 4), "c", d["c_star"], r"$c_l$ (correlation of two inputs)")):
        ax = fig.add_subplot(spec)
        ax.plot(layer, d[f"maps_{key}"], "-", color="C0", lw=1.8, label="mean-field map", zorder=3)
        if d[f"network_{key}"] is not None:
            err = d[f"network_{key}_stderr"]
            ax.errorbar(layer, d[f"network_{key}"], yerr=err, fmt="o", ms=3.5, color="C3", capsize=2,
                        elinewidth=0.9, label=net_label + bar_label)
        if math.isfinite(star):
            ax.axhline(star, color="k", ls=":", lw=1, label=f"fixed point {key}* = {star:.4g}")
        ax.set_xlabel("layer l")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        title = (rf"$\sigma_w^2$ = {d['sw2']:.4g}, $\sigma_b^2$ = {d['sb2']:.4g}"
                 if d["sw2"] is not None else "")
        ax.set_title(f"{'length' if key == 'q' else 'correlation'} map, {title}", fontsize=10)

    ax = fig.add_subplot(slot(4, 6))
    cs = d["c_star"]
    dev = np.abs(np.asarray(d["maps_c"]) - cs)
    ax.semilogy(layer, np.where(dev > 0, dev, np.nan), "-", color="C0", lw=1.8, label=r"map $|c_l - c^*|$")
    if d["network_c"] is not None:
        ndev = np.abs(np.asarray(d["network_c"]) - cs)
        ax.semilogy(layer, np.where(ndev > 0, ndev, np.nan), "o", ms=3.5, color="C3", label="random network")
    xi = d["xi_c"]
    depth = float(layer[-1]) if len(layer) else 0.0
    if math.isfinite(xi) and 0 < xi <= 2.0 * depth and np.any(dev > 0):
        ok = np.nonzero(dev > 0)[0]
        l0 = layer[ok[-1]]
        ax.semilogy(layer, dev[ok[-1]] * np.exp(-(layer - l0) / xi), "k--", lw=1,
                    label=rf"$\propto e^{{-l/\xi_c}}$, $\xi_c$ = {xi:.4g}")
        ax.set_title(r"decay to $c^*$ at the depth scale $\xi_c$", fontsize=10)
    elif math.isfinite(xi):
        ax.set_title(rf"$\xi_c$ = {xi:.4g} $\gg$ depth (near critical, $\chi_1$ = {d['chi_1']:.4g}): "
                     "slow approach to $c^*$", fontsize=10)
    else:
        ax.set_title(rf"$\xi_c = \infty$ ($\chi_1$ = {d['chi_1']:.4g}): algebraic approach to $c^*$",
                     fontsize=10)
    ax.set_xlabel("layer l")
    ax.set_ylabel(rf"$|c_l - c^*|$, $c^*$ = {cs:.4g}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _draw_lr(fig, slot, d):
    ts, ts_hjb = d["switching_time"], d["hjb_switching_time"]
    ax = fig.add_subplot(slot(0, 2))
    for name in ("constant", "inverse_time", "optimal"):
        if name in d["u"]:
            ax.step(d["t"], d["u"][name], where="post", color=SCHEDULE_COLOURS[name],
                    lw=2.2 if name == "optimal" else 1.4, label=SCHEDULE_LABELS[name])
    if "hjb" in d["u"] and d["hjb_t"].size:
        ax.plot(d["hjb_t"][:-1], d["u"]["hjb"], "--", color=SCHEDULE_COLOURS["hjb"], lw=1.4,
                label="HJB grid feedback")
    if math.isfinite(ts):
        ax.axvline(ts, color="k", ls=":", lw=1, label=f"switching time t* = {ts:.4g} (HJB {ts_hjb:.4g})")
    ax.set_xlabel(r"t = k $\eta$")
    ax.set_ylabel("learning-rate factor u(t)")
    ax.set_ylim(0, 1.08)
    ax.set_title("schedules", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    ax = fig.add_subplot(slot(2, 4))
    if d["loss_t"] is not None:
        for name in ("constant", "inverse_time", "optimal"):
            if name in d["expected_loss"]:
                ax.semilogy(d["loss_t"], d["expected_loss"][name], color=SCHEDULE_COLOURS[name],
                            lw=2.2 if name == "optimal" else 1.4, label=SCHEDULE_LABELS[name] + ", SGD")
    if "sme_loss_optimal" in d:
        ax.semilogy(d["hjb_t"], d["sme_loss_optimal"], "k:", lw=1.2, label="optimal, SME closed form")
    if "sme_loss_hjb" in d:
        ax.semilogy(d["hjb_t"], d["sme_loss_hjb"], "--", color=SCHEDULE_COLOURS["hjb"], lw=1.2,
                    label="HJB path, SME")
    if math.isfinite(ts):
        ax.axvline(ts, color="k", ls=":", lw=1)
    ax.set_xlabel(r"t = k $\eta$")
    ax.set_ylabel(r"expected loss E f = a E[$x^2$]/2")
    ax.set_title("expected loss over time (SGD: exact discrete expectation)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)

    ax = fig.add_subplot(slot(4, 6))
    names = [n for n in ("optimal", "inverse_time", "constant") if n in d["final"]]
    x = np.arange(len(names))
    exact = [d["final"][n]["exact"] for n in names]
    ax.bar(x, exact, color=[SCHEDULE_COLOURS[n] for n in names], alpha=0.75, label="exact expectation")
    mc = [d["final"][n]["mc_mean"] for n in names]
    se = [2.0 * d["final"][n]["mc_stderr"] for n in names]
    if all(v is not None for v in mc):
        ax.errorbar(x, mc, yerr=se, fmt="ko", ms=4, capsize=4, label="simulated SGD (± 2 s.e.)")
    for xi, v in zip(x, exact):
        ax.annotate(f"{v:.4g}", (xi, v), textcoords="offset points", xytext=(0, 10), ha="center", fontsize=9)
    ax.set_xticks(x, [SCHEDULE_LABELS[n].split(":")[0].replace(" (closed form)", "") for n in names])
    ax.set_ylabel("final expected loss at T")
    ax.set_ylim(0, 1.2 * max(exact + [v for v in mc if v is not None]))
    ax.set_title("final loss", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def _draw_ntk(fig, slot, d):
    mats = [("nngp", "NNGP kernel K^L"), ("ntk", "NTK Theta^L (infinite width)")]
    if "ntk_empirical" in d:
        mats.append(("ntk_empirical", "empirical NTK J J^T (finite width)"))
    lo = min(float(d[k].min()) for k, _ in mats)
    hi = max(float(d[k].max()) for k, _ in mats)
    for i, (k, title) in enumerate(mats):
        ax = fig.add_subplot(slot(i, i + 1))
        im = ax.imshow(d[k], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("input j")
        ax.set_ylabel("input i")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax = fig.add_subplot(slot(3, 5))
    ax.semilogy(np.arange(1, d["ntk_eigenvalues"].size + 1), d["ntk_eigenvalues"][::-1], "o-")
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue of Theta")
    ax.set_title("NTK spectrum (lambda_min sets the GD rate)", fontsize=10)
    ax.grid(True, alpha=0.3)


def _draw_residual(fig, slot, d):
    layer = d["residual_layer"]
    for i, (k, label) in enumerate((("q", "q_l"), ("c", "c_l"))):
        ax = fig.add_subplot(slot(3 * i, 3 * i + 3))
        ax.plot(layer, d[f"residual_{k}"], "k-", label="mean-field map")
        if f"residual_network_{k}" in d:
            err = d.get(f"residual_network_{k}_stderr")
            ax.errorbar(layer, d[f"residual_network_{k}"], yerr=None if err is None else 2 * err, fmt="o",
                        ms=3, capsize=2, label="random network (± 2 s.e.)")
        ax.axhline(d[f"limit_{k}"], ls="--", color="C3", label="tau -> 0 limit at T = L tau")
        ax.set_xlabel("layer l")
        ax.set_ylabel(label)
        ax.set_title(f"residual ({d['form']}): {label}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)


DRAW = {"phase": _draw_phase, "maps": _draw_maps, "lr_control": _draw_lr, "ntk": _draw_ntk,
        "residual": _draw_residual}
ROW_TITLES = {"phase": "phase diagram", "maps": "maps vs random network",
              "lr_control": "learning-rate control (SGD on a quadratic)", "ntk": "NNGP / NTK",
              "residual": "residual maps vs random network"}


def make_figure(result, field=None):
    """The matplotlib figure of :func:`plot_meanfield` (caller closes it)."""
    data = figure_data(result, field)
    if not data:
        raise KeyError("nothing to plot: the file holds no phase, maps, lr_control, ntk or residual analysis")
    rows = list(data)
    fig = plt.figure(figsize=(17, ROW_HEIGHT * len(rows) + 0.6), layout="constrained")
    gs = fig.add_gridspec(len(rows), 6)
    for r, name in enumerate(rows):
        DRAW[name](fig, lambda a, b, r=r: gs[r, a:b], data[name])
    title = f"{_attr(result, 'case_name', '')} — mean-field"
    if rows != ["lr_control"]:
        title += f", activation {_attr(result, 'activation', '?')}"
    fig.suptitle(title + "   [" + ", ".join(ROW_TITLES[n] for n in rows) + "]", fontsize=12)
    return fig


def plot_meanfield(result, path=None, field=None, sample=0, diagnostics=True):
    """Registered plotter of the ``mean-field`` model: one PNG, a row per analysis present.
    ``field`` (a /fields name) replaces max(chi_1, chi_c) in the phase-diagram image."""
    return saved(make_figure(result, field), path)
