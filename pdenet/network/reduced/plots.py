"""Plotter of the ``network-hjb`` model: value function, feedback, closed and open loop."""
import numpy as np

from ...plot import saved, plt

__all__ = ["plot_network_hjb"]


def _paths(ax, an, m):
    c = an["closed_loop_c"]
    if m == 1:
        t = an["t"]
        ax.plot(t, c[:, 0], "w-", lw=2.2, label="closed loop")
        if "open_loop_c" in an:
            ax.plot(t, an["open_loop_c"][:, 0], "k--", lw=1.2, label="open loop (L-BFGS-B)")
    else:
        ax.plot(c[:, 0], c[:, 1], "w-", lw=2.2, label="closed loop")
        if "open_loop_c" in an:
            ax.plot(an["open_loop_c"][:, 0], an["open_loop_c"][:, 1], "k--", lw=1.2, label="open loop (L-BFGS-B)")
        ax.plot(c[0, 0], c[0, 1], "wo", ms=6)


def plot_network_hjb(result, path=None, field=None, sample=0, diagnostics=True):
    an, attrs, mesh = result.analysis, result.attrs, result.mesh
    m = int(attrs.get("modes", mesh.ndim))
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.6))
    if m == 1:
        t = an["t"]
        c = mesh.axes[0]
        ext = [t[0], t[-1], c[0], c[-1]]
        V, A = an["value_all"], an["feedback_all"]
        im = axes[0].imshow(V.T, origin="lower", extent=ext, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=axes[0])
        im = axes[1].imshow(A.T, origin="lower", extent=[t[0], t[-2], c[0], c[-1]], aspect="auto",
                            cmap="coolwarm")
        fig.colorbar(im, ax=axes[1])
        for ax, title in zip(axes[:2], ("value V(c, t)", "feedback alpha*(c, t)")):
            _paths(ax, an, 1)
            ax.set_xlabel("t")
            ax.set_ylabel("c")
            ax.set_title(title)
    else:
        c1, c2 = mesh.axes
        ext = [c1[0], c1[-1], c2[0], c2[-1]]
        V0, A0 = result.fields["value"][0], result.fields["feedback"][0]
        im = axes[0].imshow(V0.T, origin="lower", extent=ext, aspect="auto", cmap="viridis")
        axes[0].contour(c1, c2, V0.T, levels=15, colors="0.85", linewidths=0.5)
        fig.colorbar(im, ax=axes[0])
        im = axes[1].imshow(A0.T, origin="lower", extent=ext, aspect="auto", cmap="coolwarm")
        fig.colorbar(im, ax=axes[1])
        for ax, title in zip(axes[:2], ("value V(c, 0)", "feedback alpha*(c, 0)")):
            _paths(ax, an, 2)
            ax.set_xlabel("c1")
            ax.set_ylabel("c2")
            ax.set_title(title)
    axes[0].legend(fontsize=8, loc="lower right")
    ax = axes[2]
    t = an["t"]
    ax.step(t[:-1], an["closed_loop_alpha"], where="post", lw=2, label="closed loop (HJB feedback)")
    if "open_loop_alpha" in an:
        ax.step(t[:-1], an["open_loop_alpha"], "k--", where="post", lw=1.2, label="open loop (L-BFGS-B)")
    ax.set_xlabel("t")
    ax.set_ylabel("alpha")
    txt = f"V(c0, 0) = {attrs['value_c0']:.5g}\nclosed-loop cost = {attrs['cost_closed_loop']:.5g}"
    if "cost_open_loop" in attrs:
        txt += f"\nopen-loop cost = {attrs['cost_open_loop']:.5g}"
    ax.text(0.03, 0.04, txt, transform=ax.transAxes, fontsize=9, va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
    ax.set_title("control amplitude")
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{attrs.get('case_name', 'network-hjb')}: reduced functional HJB "
                 f"({m} mode{'s' if m > 1 else ''})")
    fig.tight_layout()
    return saved(fig, path)
