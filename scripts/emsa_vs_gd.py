"""E-MSA against GD, L^2-GD and Adam from the same start on the digits (issue 15; Li et al. 2018's claim:
E-MSA's loss per iteration falls faster early in training).

    PYTHONPATH=. python scripts/emsa_vs_gd.py OUTDIR

Every run is cases/digits_emsa.toml (the same random start, the same batches of 256 in the same order,
40 iterations) with only [train] method and lr changed; each baseline's lr is the best of a small grid
by the full training loss after 10 iterations (the grid is printed). Writes OUTDIR/emsa_vs_gd.png (full
training loss per iteration) and prints the losses at iterations 0-10, 20, 40, the held-out accuracy
and the wall clock per iteration (a second run of each without the per-iteration evaluation).
"""
import os
import sys
import time

import numpy as np

import pdenet

CASE = os.path.join(os.path.dirname(__file__), "..", "cases", "digits_emsa.toml")
GRIDS = {"gd": [1.0, 3.0, 10.0, 30.0], "l2-gd": [1.0, 3.0, 10.0, 30.0], "adam": [0.03, 0.1, 0.3, 1.0]}
METHOD = {"gd": ['train.method="gd"'], "l2-gd": ['train.method="momentum"', "train.momentum=0",
                                                 'train.metric="l2"'], "adam": ['train.method="adam"']}


def run(sets):
    return pdenet.run(CASE, overrides=sets, write=False)


def timed(sets):
    n = 40
    t = time.perf_counter()
    r = run([*sets, f"train.iterations={n}", f"train.eval_every={n}"])
    return (time.perf_counter() - t) / n, r


def main(out):
    os.makedirs(out, exist_ok=True)
    curves, rows = {}, []
    ref = run(["train.eval_every=1"])
    curves["emsa"] = ref.train["full_loss"]
    wall, _ = timed([])
    rows.append(("emsa (rho 0.1)", ref, wall))
    for name, grid in GRIDS.items():
        best = None
        for lr in grid:
            r = run([*METHOD[name], f"train.lr={lr}", "train.eval_every=1"])
            f10 = r.train["full_loss"][10]
            print(f"  {name} lr={lr}: full loss at iteration 10 = {f10:.4f}, final {r.train['full_loss'][-1]:.4f}")
            if np.isfinite(f10) and (best is None or f10 < best[0]):
                best = (f10, lr, r)
        _, lr, r = best
        curves[f"{name} (lr {lr:g})"] = r.train["full_loss"]
        wall, _ = timed([*METHOD[name], f"train.lr={lr}"])
        rows.append((f"{name} (lr {lr:g})", r, wall))
    print("\nfull training loss per iteration (same start, same batches of 256):")
    print(f"{'method':<18}" + "".join(f"{k:>8}" for k in [*range(11), 20, 40]) + f"{'held-out':>10}{'s/iter':>8}")
    for label, r, wall in rows:
        f = r.train["full_loss"]
        print(f"{label:<18}" + "".join(f"{f[k]:8.3f}" for k in [*range(11), 20, 40])
              + f"{r.attrs['test_accuracy']:10.3f}{wall:8.3f}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, f in curves.items():
        ax.semilogy(np.arange(len(f)), f, label=label)
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("full training loss")
    ax.set_title("digits: same start, same batches of 256", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "emsa_vs_gd.png"), dpi=120)
    print(f"wrote {os.path.join(out, 'emsa_vs_gd.png')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
