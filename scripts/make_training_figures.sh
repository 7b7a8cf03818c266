#!/usr/bin/env bash
# Regenerate the figures of docs/network-training.md: the digits cases trained by adam, gd,
# pam and emsa (one figure of loss and accuracy per iteration), and the Theorem 3.4 decay.
#   scripts/make_training_figures.sh             # writes docs/figures/digits_training.png, network_theorem34.png
#   OUT=/some/dir scripts/make_training_figures.sh    # keeps the .h5 files there
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
PDENET="${PDENET:-.venv/bin/pdenet}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" docs/figures
"$PDENET" run cases/digits_adam.toml -o "$OUT/digits_adam.h5" -q
"$PDENET" run cases/digits_adam.toml -o "$OUT/digits_gd.h5" -q --set train.method=gd --set train.lr=15.0
"$PDENET" run cases/digits_pam.toml -o "$OUT/digits_pam.h5" -q
"$PDENET" run cases/digits_emsa.toml -o "$OUT/digits_emsa.h5" -q
"$PDENET" run cases/network_theorem34.toml -o "$OUT/network_theorem34.h5" -q
"$PY" - "$OUT" <<'PYEOF'
import sys
import numpy as np
import pdenet
from pdenet.network.plots import plot_training
out = sys.argv[1]
runs = [("adam", "digits_adam"), ("gd", "digits_gd"), ("pam", "digits_pam"), ("emsa", "digits_emsa")]
results = [pdenet.open(f"{out}/{f}.h5") for _, f in runs]
plot_training(results, [m for m, _ in runs], "docs/figures/digits_training.png",
              title="8x8 digits, network PDE (width 64, depth 4): loss and accuracy per iteration")
print("| method | iterations | train loss | train accuracy | test accuracy |")
print("|---|---|---|---|---|")
for (m, _), r in zip(runs, results):
    t = r.train
    print(f"| {m} | {len(t['loss']) - 1} | {t['loss'][-1]:.4g} | {r.attrs['accuracy']:.4f} | {r.attrs['test_accuracy']:.4f} |")
PYEOF
"$PDENET" plot "$OUT/network_theorem34.h5" -o docs/figures/network_theorem34.png
echo "results in $OUT"
