"""Plots of results. Figures are plain :class:`matplotlib.figure.Figure` objects, not
pyplot figures: nothing here chooses or changes matplotlib's backend, so importing a plot
module never affects a notebook's inline plotting, and saving needs no display.

Every plotter (this module's and each model's, ``pdenet.models.PLOTTERS``) takes the result
first and returns the :class:`~matplotlib.figure.Figure` (a notebook shows it when it is the
cell's value); given ``path`` it also saves the figure there. ``pdenet plot`` calls
:func:`plot_file`, which saves the model's figure."""
import math

import numpy as np
from matplotlib.figure import Figure


class PdenetFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that a notebook displays as a PNG when it is a
    cell's value, without pyplot (which would pick a backend): Jupyter's inline display of plain
    Figures is registered only once pyplot is imported."""

    def _repr_png_(self):
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90)
        return buf.getvalue()


class _Figures:
    """The three pyplot calls the plotters use, on backend-free figures."""

    @staticmethod
    def figure(**kwargs):
        return PdenetFigure(**kwargs)

    @staticmethod
    def subplots(nrows=1, ncols=1, *, figsize=None, layout=None, **kwargs):
        fig = PdenetFigure(figsize=figsize, layout=layout)
        return fig, fig.subplots(nrows, ncols, **kwargs)

    @staticmethod
    def close(fig):
        fig.clear()


plt = _Figures()


def saved(fig, path=None, dpi=110):
    """``fig``, after saving it to ``path`` when one is given (the last line of every plotter)."""
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def check_image_path(path):
    """:class:`~pdenet.errors.OutputError` (one line) when matplotlib cannot write an image named
    ``path`` (its extension names no format it knows), before anything is computed."""
    from .errors import OutputError

    ext = str(path).rpartition(".")[2].lower() if "." in str(path) else ""
    formats = Figure().canvas.get_supported_filetypes()
    if ext not in formats:
        raise OutputError(f"{path}: cannot write an image with extension {('.' + ext) if ext else '(none)'!r}; "
                          f"use one of {', '.join('.' + f for f in sorted(formats))}")


def plot_figure(result, **options):
    """The model's own figure of ``result`` (its registered plotter) when it has one, else
    :func:`plot_result`'s; returns the :class:`~matplotlib.figure.Figure`."""
    from .models import get_plotter

    plotter = get_plotter(result.attrs.get("model")) or plot_result
    return plotter(result, **options)


def plot_file(result, path, **options):
    """`pdenet plot`: :func:`plot_figure` saved to ``path``; returns ``path``."""
    check_image_path(path)
    saved(plot_figure(result, **options), path)
    return path


def _snapshots(n, count=4):
    idx = sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))
    return idx


def plot_result(result, path=None, field=None, sample=0, diagnostics=True):
    """Snapshots of a field (lines in 1-D, images in 2-D, mid-plane slices in 3-D) and the
    diagnostics time series; returns the Figure (saved to ``path`` when given)."""
    fields = result.fields
    names = [field] if field else list(fields)[:1]
    for name in names:
        if name not in fields:
            raise KeyError(f"no field {name!r}; have {', '.join(fields) or 'none'}")
    diag = {k: v for k, v in result.diagnostics.items() if np.ndim(v) == 1 and len(v) == len(result.time)}
    mesh = result.mesh
    n_panels = (len(names) if names else 0) + (1 if diagnostics and diag else 0)
    if n_panels == 0:
        raise KeyError("nothing to plot: the file has no fields and no diagnostics")
    ndim = mesh.ndim if mesh is not None else 1
    snaps = _snapshots(len(result.time)) if names else []
    if ndim == 1 or not names:
        fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4), squeeze=False)
        axes = axes[0]
        for ax, name in zip(axes, names):
            data = fields[name]
            if data.ndim == 3:
                data = data[:, sample]
            for i in snaps:
                ax.plot(mesh.axes[0], data[i], label=f"t = {result.time[i]:.3g}")
            ax.set_xlabel("y" if result.attrs.get("model") == "network" else "x")
            ax.set_title(f"{name}" + (f" (sample {sample})" if fields[name].ndim == 3 else ""))
            ax.legend(fontsize=8)
    else:
        cols = len(snaps)
        rows = len(names) + (1 if diagnostics and diag else 0)
        fig = plt.figure(figsize=(3.6 * cols, 3.3 * rows))
        for r, name in enumerate(names):
            data = fields[name]
            if data.ndim == ndim + 2:
                data = data[:, sample]
            for c, i in enumerate(snaps):
                ax = fig.add_subplot(rows, cols, r * cols + c + 1)
                img = data[i]
                if ndim == 3:
                    img = img[:, :, img.shape[2] // 2]
                ext = [mesh.lower[1], mesh.upper[1], mesh.upper[0], mesh.lower[0]]
                im = ax.imshow(img, extent=ext, aspect="auto")
                fig.colorbar(im, ax=ax, shrink=0.8)
                ax.set_title(f"{name}, t = {result.time[i]:.3g}", fontsize=9)
        axes = [fig.add_subplot(rows, 1, rows)] if diagnostics and diag else []
    if diagnostics and diag:
        ax = axes[-1]
        for k, v in diag.items():
            ax.plot(result.time, v, marker=".", label=k)
        ax.set_xlabel("t")
        ax.set_title("diagnostics")
        ax.legend(fontsize=8)
    fig.suptitle(f"{result.attrs.get('case_name', '')} ({result.attrs.get('model', '')})")
    fig.tight_layout()
    return saved(fig, path)


def plot_convergence(study, path=None):
    res = np.array(study["resolution"])
    err = np.array(study["errors"], dtype=float)
    ok = np.isfinite(err) & (err > 0)
    scalars = study.get("scalars") or {}
    fig, axes = plt.subplots(1, 2 if scalars else 1, figsize=(11 if scalars else 5.5, 4.2), squeeze=False)
    ax = axes[0, 0]
    if scalars:    # the runs' headline numbers (loss, accuracy, ...) against the resolution
        sx = axes[0, 1]
        for name, vals in scalars.items():
            sx.semilogx(res, vals, "o-", label=name)
        sx.set_xlabel(study["key"])
        sx.set_title("headline results per resolution")
        sx.grid(True, which="both", alpha=0.3)
        sx.legend(fontsize=8)
    if not ok.any():       # only successive differences (reference = finest run)
        err = np.array(study["differences"], dtype=float)
        ok = np.isfinite(err) & (err > 0)
    ax.loglog(res[ok], err[ok], "o-", label=f"{study['field']} error ({study['reference']})")
    orders = [p for p in study["orders"] if math.isfinite(p)]
    if ok.sum() >= 2 and orders:
        p = round(orders[-1]) or 1
        x0, e0 = res[ok][0], err[ok][0]
        ax.loglog(res[ok], e0 * (res[ok] / x0) ** (-p), "k--", lw=0.8, label=f"slope -{p}")
    ax.set_xlabel(study["key"] + (" (1/dt)" if study["key"] == "time.dt" else ""))
    ax.set_ylabel(f"{study['norm']} error")
    ax.set_title(f"{study['case'].name}: observed order "
                 f"{orders[-1]:.2f}" if orders else study["case"].name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return saved(fig, path)
