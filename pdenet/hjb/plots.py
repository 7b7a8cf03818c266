"""The figure of the ``hjb`` model (``pdenet plot``)."""
import numpy as np

from ..plot import saved, plot_result, plt


def plot_hjb(result, path=None, field=None, sample=0, diagnostics=True):
    mesh = result.mesh
    if mesh.ndim != 1 or field:
        return plot_result(result, path, field=field or "u", sample=sample, diagnostics=diagnostics)
    x = mesh.axes[0]
    F, t, a = result.fields, result.time, result.attrs
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    ax = axes[0]
    ax.plot(x, F["u"][-1], "k", lw=1.2, label="V = u(x, T) = v(x, T)")
    ax.plot(x, F["u"][0], "tab:red", label="HJB value u(x, 0)")
    ax.plot(x, F["v"][0], "tab:blue", label="backward Kolmogorov v(x, 0)")
    x0 = result.analysis.get("x0")
    if x0 is not None:
        ax.errorbar([x0[0]], [a["cost_controlled"]], yerr=[2 * a["cost_controlled_stderr"]], fmt="o",
                    color="tab:red", label="particles: E[V(X_csgd(T))] + 1/2 E int |alpha*|^2")
        ax.errorbar([x0[0]], [a["terminal_sgd"]], yerr=[2 * a["terminal_sgd_stderr"]], fmt="s",
                    color="tab:blue", label="particles: E[V(X_sgd(T))]")
    lo = min(F["u"][0].min(), F["v"][0].min(), F["u"][-1].min())
    hi = max(F["u"][0].max(), F["v"][0].max())
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.6 * (hi - lo))
    ax.set_title(f"value functions, T = {a.get('T', t[-1]):g}, nu = {a.get('nu', 0):g} (bars: 2 s.e.)",
                 fontsize=10)
    ax.legend(fontsize=7)
    ax.set_xlabel("x")
    ax = axes[1]
    for i in range(len(t) - 1):
        ax.plot(x, F["alpha"][i, 0], label=f"t = {t[i]:.3g}")
    ax.set_title("optimal feedback alpha* = grad u (t < T)", fontsize=10)
    ax.legend(fontsize=7)
    ax.set_xlabel("x")
    ax = axes[2]
    pde = "rho_controlled" in F
    hist = "rho" in F
    for pname, hname, colour, what in (("rho_controlled", "rho", "tab:red", "controlled SGD"),
                                       ("rho_uncontrolled", "rho_sgd", "tab:blue", "SGD")):
        if pde:
            ax.plot(x, F[pname][-1], colour, label=f"{what} at T, Fokker-Planck")
        if hist:
            ax.step(x, F[hname][-1], colour, where="mid", lw=0.7, alpha=0.6 if pde else 1.0,
                    label=f"{what} at T, particle histogram")
    tw = ax.twinx()
    tw.plot(x, F["u"][-1], "k", lw=0.8, label="V")
    tw.set_ylabel("V")
    title = "densities" + (" (PDE and particles)" if pde and hist else " (PDE)" if pde else " (particles)")
    if pde and hist and "density_mean_max_z" in a:
        title += (f"\nmeans within {a['density_mean_max_z']:.2g} s.e., "
                  f"L1 <= {a['density_l1_over_noise_max']:.2g} x MC noise")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("x")
    fig.tight_layout()
    return saved(fig, path)
