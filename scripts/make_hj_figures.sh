#!/usr/bin/env bash
# Regenerate the figures of docs/hamilton-jacobi.md from the shipped hj_* and hjb_* cases:
# runs each case (and the refinement studies) into a temporary directory and plots them.
#   scripts/make_hj_figures.sh                 # writes docs/figures/hj_*.png, hjb_*.png
#   OUT=/some/dir scripts/make_hj_figures.sh   # keeps the .h5 files there
set -euo pipefail
cd "$(dirname "$0")/.."
PDENET="${PDENET:-.venv/bin/pdenet}"
[ -x "$PDENET" ] || PDENET=pdenet
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" docs/figures
for name in hj_quadratic_1d hj_quadratic_2d hj_rugged_1d hj_kink_1d hj_figure41 hj_homogenisation hjb_double_well hjb_double_well_2d; do
    "$PDENET" run "cases/${name}.toml" -o "$OUT/${name}.h5" -q
    "$PDENET" plot "$OUT/${name}.h5" -o "docs/figures/${name}.png"
done
"$PDENET" converge cases/hj_rugged_1d.toml --key mesh.cells --values 64,128,256,512 -q \
    -o "$OUT/rugged_weno5.h5" --plot docs/figures/hj_rugged_converge_weno5.png
"$PDENET" converge cases/hj_rugged_1d.toml --key mesh.cells --values 64,128,256,512 -q --set model.order=1 \
    -o "$OUT/rugged_first.h5" --plot docs/figures/hj_rugged_converge_first.png
"$PDENET" converge cases/hj_kink_1d.toml --key mesh.cells --values 50,100,200,400 -q --norm max \
    -o "$OUT/kink.h5" --plot docs/figures/hj_kink_converge.png
echo "results in $OUT"
