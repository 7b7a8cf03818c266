"""Plots of network runs: training curves (/train) beside the usual field snapshots."""
import numpy as np

from ..plot import saved, plot_result, plt

__all__ = ["plot_network", "plot_training"]


def _curves(ax_loss, ax_acc, result, label):
    t = result.train
    k = t.get("iteration", np.arange(len(t["loss"])))
    loss = t.get("full_loss") if "full_loss" in t else None
    line, = ax_loss.semilogy(k, t["loss"], label=f"{label} (train)")
    if "test_loss" in t:
        m = ~np.isnan(t["test_loss"])
        ax_loss.semilogy(k[m], t["test_loss"][m], "--", color=line.get_color(), label=f"{label} (test)")
    if loss is not None:
        m = ~np.isnan(loss)
        ax_loss.semilogy(k[m], loss[m], ":", color=line.get_color())
    if "accuracy" in t:
        ax_acc.plot(k, t["accuracy"], color=line.get_color(), label=f"{label} (train)")
    if "test_accuracy" in t:
        m = ~np.isnan(t["test_accuracy"])
        ax_acc.plot(k[m], t["test_accuracy"][m], "--", color=line.get_color(), label=f"{label} (test)")


def plot_training(results, labels, path=None, title="training"):
    """Loss (log scale) and accuracy per iteration for several runs, one figure."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for r, lab in zip(results, labels):
        _curves(a1, a2, r, lab)
    a1.set_xlabel("iteration")
    a1.set_title("loss")
    a2.set_xlabel("iteration")
    a2.set_title("accuracy")
    a2.set_ylim(0, 1.02)
    for ax in (a1, a2):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return saved(fig, path)


def plot_network(result, path=None, field=None, sample=0, diagnostics=True):
    """Training curves when the file has /train, else field snapshots and diagnostics."""
    if result.train and "loss" in result.train and field is None:
        name = result.attrs.get("case_name", "")
        return plot_training([result], [str(result.attrs.get("train_method", ""))], path,
                             title=f"{name}: {result.attrs.get('train_method', '')}")
    return plot_result(result, path, field=field, sample=sample, diagnostics=diagnostics)
