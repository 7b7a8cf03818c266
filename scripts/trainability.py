#!/usr/bin/env python
"""Trainability against depth (review Fig. 1b): train random tanh networks over a grid of
(sigma_w^2, depth) at sigma_b^2 = 0.05, fit L* = c xi_c, draw the figure.

    PYTHONPATH=. python scripts/trainability.py --data digits -o /tmp/tr_digits.npz \
        --png docs/figures/trainability_digits.png
    mpiexec -n 2 python scripts/trainability.py ...        # cells dealt over the ranks

Grid syntax: --sw2 LO:HI:N (linspace), --depths a,b,c.
"""
import argparse
import json
import sys
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits", choices=["digits", "mnist1d"])
    p.add_argument("--sw2", default="1.0:4.0:13")
    p.add_argument("--depths", default="6,9,12,16,20,25,32,40,50,64,80,100")
    p.add_argument("--sb2", type=float, default=0.05)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=0.5, help="training accuracy that counts as trainable")
    p.add_argument("-o", "--output", required=True, help="npz file for the grid and the fit")
    p.add_argument("--png", help="figure like the review's Fig. 1b")
    p.add_argument("--replot", action="store_true", help="refit and redraw from the npz of --output")
    a = p.parse_args(argv)

    from pdenet.meanfield import trainability as tb
    comm = None
    try:
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_size() > 1:
            comm = MPI.COMM_WORLD
    except ImportError:
        pass
    rank = comm.Get_rank() if comm is not None else 0
    if a.replot:
        d = np.load(a.output)
        grid = tb.TrainabilityGrid(d["sw2"], d["depths"], d["accuracy"], float(d["sb2"]), d["xi_c"],
                                   float(d["critical_sw2"]))
        report(grid, a, float(d["wall_s"]))
        return 0
    lo, hi, n = a.sw2.split(":")
    sw2 = np.linspace(float(lo), float(hi), int(n))
    depths = np.array([int(d) for d in a.depths.split(",")])
    X, y, classes = tb.load(a.data, seed=a.seed)
    t0 = time.time()
    grid = tb.run_grid(X, y, classes, sw2, depths, a.sb2, a.width, a.lr, a.steps, a.batch, a.seed, comm=comm)
    wall = time.time() - t0
    if rank != 0:
        return 0
    report(grid, a, wall)
    return 0


def report(grid, a, wall):
    from pdenet.meanfield import trainability as tb
    sw2 = grid.sw2
    fits = {th: tb.fit_depth_constant(grid, th) for th in (a.threshold, 0.3, 0.7)}
    fit = fits[a.threshold]
    np.savez(a.output, sw2=grid.sw2, depths=grid.depths, accuracy=grid.accuracy, xi_c=grid.xi_c,
             sb2=grid.sb2, critical_sw2=grid.critical_sw2, c=fit.c, ci=np.array(fit.ci),
             peak_sw2=fit.peak_sw2, threshold=fit.threshold, wall_s=wall)
    summary = {"data": a.data, "wall_s": round(wall, 1), "critical_sw2": grid.critical_sw2,
               "cell": float(sw2[1] - sw2[0]) if sw2.size > 1 else None,
               **{f"c@{th}": [round(f.c, 3), [round(v, 3) for v in f.ci], "peak_sw2", f.peak_sw2,
                              "columns", len(f.columns)] for th, f in fits.items()}}
    print(json.dumps(summary))
    if a.png:
        draw(grid, fit, a, a.png)


def draw(grid, fit, a, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), layout="constrained")
    ds = grid.sw2[1] - grid.sw2[0]
    edges_w = np.concatenate([grid.sw2 - ds / 2, [grid.sw2[-1] + ds / 2]])
    d = grid.depths.astype(float)
    edges_L = np.concatenate([[d[0] - (d[1] - d[0]) / 2], 0.5 * (d[1:] + d[:-1]), [d[-1] + (d[-1] - d[-2]) / 2]])
    im = ax.pcolormesh(edges_w, edges_L, grid.accuracy.T, cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, label=f"training accuracy after {a.steps} SGD steps")
    s = np.linspace(grid.sw2[0] - ds / 2, grid.sw2[-1] + ds / 2, 400)
    from pdenet.meanfield import xi_c
    xs = np.array([xi_c(v, grid.sb2, "tanh") for v in s])
    ax.plot(s, fit.c * xs, "w-", lw=2, label=f"fitted {fit.c:.2f} ξ_c (95% CI {fit.ci[0]:.2f}–{fit.ci[1]:.2f})")
    ax.fill_between(s, fit.ci[0] * xs, fit.ci[1] * xs, color="w", alpha=0.25)
    ax.plot(s, 6.0 * xs, "r--", lw=1.2, label="6 ξ_c (Schoenholz et al. 2017)")
    ax.plot(s, 4.5 * xs, "m:", lw=1.5, label="4.5 ξ_c (review, Fig. 1b)")
    ax.plot(fit.columns, fit.transition, "wo", ms=4, mec="k", label=f"transition depth (acc = {fit.threshold})")
    ax.axvline(grid.critical_sw2, color="orange", lw=1, label=f"critical σ_w² = {grid.critical_sw2:.4f}")
    ax.set_ylim(edges_L[0], edges_L[-1])
    ax.set_xlabel("σ_w²")
    ax.set_ylabel("depth L")
    ax.set_title(f"Trainability of tanh networks ({a.data}, width {a.width}, σ_b² = {grid.sb2})", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
