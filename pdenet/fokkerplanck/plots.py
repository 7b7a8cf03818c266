"""``pdenet plot`` for fokker-planck files: densities, the probability current and diagnostics.

1-D: density snapshots (with the particle histogram when there is one) and the
diagnostics. 2-D: the first and last density, the last density with a
streamplot of the probability current (arrows' width ∝ |J|; circulation is
visible as closed streamlines), and the diagnostics. 3-D: mid-plane slices.
"""
import numpy as np

from ..plot import saved, plt

_SHOWN = ("mass", "free_energy", "relative_entropy", "kl_to_steady", "survival", "circulation", "current_l1",
          "error_rho_l2", "particle_l1", "sgd_l1")


def _diag_panel(ax, result):
    t = result.time
    shown = False
    for k in _SHOWN:
        v = result.diagnostics.get(k)
        if v is None or len(v) != len(t) or len(t) < 2:
            continue
        v = np.asarray(v, dtype=float)
        ax.plot(t, v, marker=".", label=k)
        shown = True
    if shown:
        ax.set_xlabel("t")
        ax.set_title("diagnostics")
        ax.legend(fontsize=7)
    else:
        ax.axis("off")
        lines = [f"{k} = {result.attrs[k]:.6g}" for k in sorted(result.attrs)
                 if isinstance(result.attrs[k], (float, np.floating))]
        ax.text(0.0, 1.0, "\n".join(lines[:18]), va="top", family="monospace", fontsize=7)


def _survival_panel(ax, result):
    t = result.time
    ax.semilogy(t, result.diagnostics["survival"], label="survival (PDE)")
    ps = result.diagnostics.get("particle_survival")
    if ps is not None:
        ax.semilogy(t, np.where(ps > 0, ps, np.nan), ".", ms=3, label="survival (particles)")
    T = result.attrs.get("mfpt_at_point", result.attrs.get("mfpt_initial"))
    if T:
        ax.semilogy(t, np.exp(-t / T), "k--", lw=0.8, label=f"exp(-t/MFPT), MFPT = {T:.4g}")
    lines = [f"{k} = {result.attrs[k]:.5g}" for k in ("mfpt_at_point", "particle_mfpt", "particle_mfpt_stderr",
                                                       "kramers_time") if k in result.attrs]
    ax.text(0.02, 0.02, "\n".join(lines), transform=ax.transAxes, fontsize=7, family="monospace")
    ax.set_xlabel("t")
    ax.set_title("survival probability")
    ax.legend(fontsize=7)


def _nonequilibrium_panel(ax, result):
    """Thesis Fig. 6.4: contours of phi, the drift field -grad f + b (streamlines, width ∝ its
    magnitude), the minima of phi (red dots: the most likely points), the zeros of the drift
    (black crosses: the critical points of the loss) and particle positions (grey)."""
    mesh, an = result.mesh, result.analysis
    phi = an.get("phi")
    if phi is None and "phi" in result.fields:
        phi = result.fields["phi"][-1]
    x, y = mesh.axes[0], mesh.axes[1]
    finite = np.isfinite(phi)
    top = np.percentile(phi[finite], 60) if finite.any() else 1.0
    ax.contour(x, y, np.where(finite, phi, np.nan).T, levels=np.linspace(0, top, 14), cmap="magma", linewidths=0.8)
    if "drift_1" in an and "drift_2" in an:
        U, V = np.asarray(an["drift_1"]).T, np.asarray(an["drift_2"]).T
        speed = np.hypot(U, V)
        ax.streamplot(x, y, U, V, density=1.1, color="tab:blue", linewidth=0.3 + 2.0 * speed / max(speed.max(), 1e-300),
                      arrowsize=0.7)
    P = an.get("particle_positions")
    if P is not None:
        P = np.asarray(P)[:400]
        ax.plot(P[:, 0], P[:, 1], ".", color="0.5", ms=2, alpha=0.6, label="particles (t_end)")
    m = an.get("phi_minima")
    if m is not None and len(m):
        ax.plot(np.asarray(m)[:, 0], np.asarray(m)[:, 1], "o", color="red", ms=6, label="minima of phi")
    z = an.get("drift_zeros")
    if z is not None and len(z):
        ax.plot(np.asarray(z)[:, 0], np.asarray(z)[:, 1], "kx", ms=8, mew=2, label="zeros of drift")
    w = result.attrs.get("particle_winding_mean")
    ax.set_title("phi contours, drift field" + (f"; mean winding {w:.2f} turns" if w is not None else ""), fontsize=9)
    ax.set_xlim(mesh.lower[0], mesh.upper[0])
    ax.set_ylim(mesh.lower[1], mesh.upper[1])
    ax.legend(fontsize=6, loc="lower right")


def plot_fokker_planck(result, path=None, field=None, sample=0, diagnostics=True):
    """The fokker-planck figure of ``result`` (a Figure; saved to ``path`` when given)."""
    mesh = result.mesh
    rho = result.fields.get(field or "rho")
    if rho is None:
        raise KeyError(f"no field {field or 'rho'!r}; have {', '.join(result.fields) or 'none'}")
    nt = rho.shape[0]
    title = f"{result.attrs.get('case_name', '')} (fokker-planck, {result.attrs.get('stepper', '')})"
    if mesh.ndim == 1:
        surv = result.diagnostics.get("survival")
        ncol = (2 if diagnostics else 1) + (surv is not None)
        fig, axes = plt.subplots(1, ncol, figsize=(5.5 * ncol, 4), squeeze=False)
        ax = axes[0, 0]
        x = mesh.axes[0]
        for i in sorted(set(np.linspace(0, nt - 1, min(5, nt)).round().astype(int).tolist())):
            ax.plot(x, rho[i], label=f"t = {result.time[i]:.3g}")
        for key, label in (("particle_histogram", "particles (t_end)"), ("sgd_histogram", "SGD runs (end)")):
            hist = result.analysis.get(key)
            if hist is not None and field in (None, "rho"):
                ax.step(x, hist, where="mid", color="k", lw=0.7, alpha=0.7, label=label)
        ax.set_xlabel("x")
        ax.set_title(field or "rho")
        ax.legend(fontsize=7)
        if diagnostics:
            _diag_panel(axes[0, 1], result)
        if surv is not None:
            _survival_panel(axes[0, -1], result)
    else:
        J = [result.fields.get(f"current_{d + 1}") for d in range(mesh.ndim)]
        noneq = mesh.ndim == 2 and ("phi" in result.analysis or "phi" in result.fields)
        ncol = 3 + (1 if diagnostics else 0) + noneq
        fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 4), squeeze=False)
        axes = axes[0]

        def img(a):
            return a[:, :, a.shape[2] // 2] if mesh.ndim == 3 else a
        ext = [mesh.lower[0], mesh.upper[0], mesh.lower[1], mesh.upper[1]]
        shown = (0, nt - 1) if nt > 1 else (0,)
        if nt == 1:
            axes[1].axis("off")
            axes[1].text(0.0, 1.0, "\n".join(f"{k} = {result.diagnostics[k][0]:.6g}" for k in sorted(
                result.diagnostics) if k.startswith(("mean", "cov", "mass", "circ", "current"))),
                va="top", family="monospace", fontsize=8)
        for ax, i in zip(axes[:2], shown):
            im = ax.imshow(img(rho[i]).T, origin="lower", extent=ext, aspect="auto")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(f"rho, t = {result.time[i]:.3g}", fontsize=9)
        ax = axes[2]
        ax.imshow(img(rho[-1]).T, origin="lower", extent=ext, aspect="auto", cmap="Greys", alpha=0.6)
        if all(j is not None for j in J[:2]):
            x, y = mesh.axes[0], mesh.axes[1]
            U, V = img(J[0][-1]).T, img(J[1][-1]).T
            speed = np.hypot(U, V)
            smax = speed.max()
            if smax > 0:
                ax.streamplot(x, y, U, V, density=1.2, color=speed, cmap="viridis",
                              linewidth=0.4 + 2.0 * speed / smax, arrowsize=0.8)
            ax.set_title(f"current J at t = {result.time[-1]:.3g}, max |J| = {smax:.2e}", fontsize=9)
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        if diagnostics:
            _diag_panel(axes[3], result)
        if noneq:
            _nonequilibrium_panel(axes[-1], result)
    fig.suptitle(title)
    fig.tight_layout()
    return saved(fig, path)
