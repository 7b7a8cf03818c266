"""The thesis's tables (3.1, 4.1, 5.1) at pdenet's scale: held-out error of the network PDE trained by each
driver under the same budget of gradient evaluations, over several seeds (issue 15).

    PYTHONPATH=. python scripts/thesis_table.py OUTDIR [--data digits|mnist1d] [--epochs E] [--seeds N]

Every run starts from cases/digits_emsa.toml's network (random dense kernel, scale 0.5; random output
layer, scale 0.1; seeds s of the kernel, the output layer and the batches/noise) on the data set named,
and only the [train] table changes. The budget is E "effective epochs" (the thesis's measure): E * S
per-sample gradients, S the training samples, i.e. E S / 64 mini-batch gradients of 64 samples. A
driver's iterations are the budget divided by its gradients per iteration: momentum/nesterov/adam 1,
entropy-sgd and heat L, hj L, elastic n, parle n L (all on batches of 64); E-MSA one sweep on a batch of
256 per iteration (its maximisation, which costs a few more layer evaluations, is not counted; the wall
clock is printed); PAM full-batch gradients, inner_maxiter 3 per block, 7 per outer iteration at most.
Prints a markdown table (mean +- standard deviation of the held-out error in %, wall clock per run) and
writes OUTDIR/thesis_table.png (held-out error against effective epochs, seed 0).
"""
import argparse
import os
import time

import numpy as np

import pdenet

CASE = os.path.join(os.path.dirname(__file__), "..", "cases", "digits_emsa.toml")
B = 64
L2 = ['train.metric="l2"']
#: label, [train] overrides, gradients of B samples per iteration (None: see the module docstring)
METHODS = [
    ("SGD + Nesterov", ['train.method="nesterov"', "train.lr=0.3", *L2], 1),
    ("Adam", ['train.method="adam"', "train.lr=0.1"], 1),
    ("Entropy-SGD", ['train.method="entropy-sgd"', "train.lr=1", "train.langevin_lr=1", "train.langevin_steps=5",
                     *L2], 5),
    ("HEAT", ['train.method="heat"', "train.lr=3", "train.langevin_steps=5", *L2], 5),
    ("HJ", ['train.method="hj"', "train.lr=3", "train.langevin_lr=1", *L2], 5),
    ("Elastic-SGD", ['train.method="elastic"', "train.lr=3", "train.replicas=4", "train.coupling=10", *L2], 4),
    ("Parle", ['train.method="parle"', "train.lr=1", "train.langevin_lr=1", "train.langevin_steps=5",
               "train.replicas=4", "train.coupling=10", *L2], 20),
    ("PAM", ['train.method="pam"', "train.tau=10", "train.inner_maxiter=3", "train.batch_size=0"], None),
    ("E-MSA", ['train.method="emsa"'], None),
]
DATA = {"digits": [], "mnist1d": ['data.source="mnist1d"', "mesh.lower=[0.0]", "mesh.upper=[1.0]", "mesh.cells=[40]",
                                  "data.samples=2000"]}


def train_samples(data):
    case = pdenet.load_case(CASE, DATA[data] + ["train.method=\"none\""])
    return case.model_cls(case).inputs.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--data", default="digits", choices=list(DATA))
    ap.add_argument("--epochs", type=float, default=8.0)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    S = train_samples(a.data)
    budget = int(round(a.epochs * S / B))           # gradients of B samples
    print(f"{a.data}: {S} training samples, budget {a.epochs:g} effective epochs = {budget} gradients of {B}")
    rows, curves = [], {}
    for label, sets, per in METHODS:
        if label == "PAM":
            it, extra = max(1, int(round(a.epochs / 7))), []
        elif label == "E-MSA":
            it, extra = max(1, budget * B // 256), []
        else:
            it, extra = max(1, budget // per), [f"train.batch_size={B}"]
        errs, walls = [], []
        for s in range(a.seeds):
            seeds = [f"model.kernel.seed={s}", f"model.output.seed={s}", f"train.seed={s}"]
            over = [*DATA[a.data], *seeds, *sets, *extra, f"train.iterations={it}",
                    f"train.eval_every={max(1, it // 10)}"]
            t = time.perf_counter()
            try:
                r = pdenet.run(CASE, overrides=over, write=False)
                err = 100.0 * (1.0 - r.attrs["test_accuracy"])
            except pdenet.PdenetError as exc:       # a diverged run counts as chance
                print(f"  {label} seed {s}: {exc}")
                r, err = None, float("nan")
            walls.append(time.perf_counter() - t)
            errs.append(err)
            if s == 0 and r is not None:
                tr = r.train
                ok = ~np.isnan(tr["test_accuracy"])
                if "gradient_evaluations" in tr:
                    ep = tr["gradient_evaluations"][ok] * B / S
                elif label == "E-MSA":
                    ep = tr["iteration"][ok] * 256 / S
                elif label == "PAM":
                    ep = np.cumsum(tr["inner_iterations"] + 1)[ok]
                else:
                    ep = tr["iteration"][ok] * B / S
                curves[label] = (ep, 100.0 * (1.0 - tr["test_accuracy"][ok]))
            print(f"  {label} seed {s}: {it} iterations, held-out error {err:.2f} %, {walls[-1]:.1f} s", flush=True)
        e = np.array(errs)
        rows.append((label, it, np.nanmean(e), np.nanstd(e), np.mean(walls), int(np.sum(np.isnan(e)))))
    print(f"\n| method | iterations | held-out error (%) | wall clock per run (s) |")
    print("|---|---|---|---|")
    for label, it, m, sd, w, bad in rows:
        note = f" ({bad} diverged)" if bad else ""
        print(f"| {label} | {it} | {m:.2f} ± {sd:.2f}{note} | {w:.1f} |")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (ep, err) in curves.items():
        ax.plot(ep, err, marker=".", label=label)
    ax.set_xlabel("effective epochs")
    ax.set_ylabel("held-out error (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{a.data}: held-out error against effective epochs (seed 0)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(a.out, f"thesis_table_{a.data}.png")
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
