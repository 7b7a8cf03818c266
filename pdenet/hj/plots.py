"""The figure of the ``hamilton-jacobi`` model (``pdenet plot``)."""
import numpy as np

from ..plot import saved, plot_result, plt

COLOURS = {"f": "k", "u": "tab:red", "u_inviscid": "tab:blue", "v_heat": "tab:green"}
LABELS = {"f": "f (loss)", "u": "viscous HJ u(x, T)", "u_inviscid": "inviscid HJ (Hopf-Lax)",
          "v_heat": "heat equation v(x, T)"}
ALG_COLOURS = {"sgd": "0.4", "entropy_sgd": "tab:red", "hj": "tab:blue", "heat": "tab:green",
               "elastic": "tab:purple"}


def plot_hj(result, path=None, field=None, sample=0, diagnostics=True):
    """The hamilton-jacobi figure of ``result`` (a Figure; saved to ``path`` when given)."""
    mesh = result.mesh
    if mesh.ndim != 1 or field:
        return plot_result(result, path, field=field or "u", sample=sample, diagnostics=diagnostics)
    x = mesh.axes[0]
    T = result.time[-1]
    paths = {k[len("particles_"):-len("_path")]: v for k, v in result.analysis.items()
             if k.startswith("particles_") and k.endswith("_path")}
    homog = "homogenisation_points" in result.analysis
    ncols = (2 if diagnostics and "d2u_max" in result.diagnostics else 1) + homog
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(x, result.fields["u"][0], color="k", lw=1.2, label=LABELS["f"])
    for name in ("u", "u_inviscid", "v_heat"):
        if name in result.fields:
            label = LABELS[name]
            if name == "u" and not result.attrs.get("nu", 1.0):
                label = "inviscid HJ u(x, T)"
            ax.plot(x, result.fields[name][-1], color=COLOURS[name], lw=1.5, label=label)
    if "u_exact_final" in result.analysis:
        ax.plot(x, result.analysis["u_exact_final"], "k:", lw=1.5,
                label="exact solution at T ([exact] u)")
    if homog:
        ax2 = axes[0, -1]
        an = result.analysis
        ax2.plot(x, result.fields["grad_u"][-1, 0], "tab:red", label="grad u(x, gamma) (PDE)")
        pts = an["homogenisation_points"][:, 0]
        ax2.errorbar(pts, an["homogenisation_entropy_sgd"][:, 0], yerr=2 * an["homogenisation_stderr"][:, 0],
                     fmt="o", color="k", capsize=3, label="Entropy-SGD (x - <y>)/gamma, 2 s.e.")
        ax2.set_xlabel("x")
        ax2.set_title("homogenisation of Entropy-SGD", fontsize=10)
        ax2.legend(fontsize=8)
    ax.set_xlabel("x")
    ax.set_title(f"{result.attrs.get('case_name', '')}: smoothing at T = gamma = {T:g}, "
                 f"nu = {result.attrs.get('nu', 0):g}", fontsize=10)
    if paths:
        tw = ax.twinx()
        bins = np.linspace(mesh.lower[0], mesh.upper[0], 61)
        for name, p in paths.items():
            final = p[:, -1, 0]
            tw.hist(final, bins=bins, density=True, alpha=0.3, color=ALG_COLOURS.get(name, "0.5"),
                    label=f"{name.replace('_', '-')}: final x ({p.shape[0]} runs)")
        tw.set_ylabel("density of final iterates")
        tw.legend(fontsize=7, loc="upper right")
    ax.legend(fontsize=8, loc="upper left")
    if diagnostics and "d2u_max" in result.diagnostics:
        ax = axes[0, 1]
        t = result.time
        ax.semilogy(t, result.diagnostics["d2u_max"], "o-", label="max second difference of u")
        if "d2u_max_4h" in result.diagnostics:
            ax.semilogy(t, result.diagnostics["d2u_max_4h"], ".-", label="max second difference, step 4h")
        ax.semilogy(t, result.diagnostics["semiconcavity_bound"], "k--", label="1/(1/C + t), C = sup f''")
        ax.set_xlabel("t")
        ax.set_title("widening: semi-concavity bound", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return saved(fig, path)
