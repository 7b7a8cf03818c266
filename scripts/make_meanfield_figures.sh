#!/usr/bin/env bash
# Regenerate the figures of docs/meanfield.md from the shipped mean-field cases:
# runs each case into a temporary directory and plots it with `pdenet plot`.
#   scripts/make_meanfield_figures.sh            # writes docs/figures/meanfield_*.png
#   OUT=/some/dir scripts/make_meanfield_figures.sh   # keeps the .h5 files there
set -euo pipefail
cd "$(dirname "$0")/.."
PDENET="${PDENET:-.venv/bin/pdenet}"
[ -x "$PDENET" ] || PDENET=pdenet
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" docs/figures
for pair in tanh_phase:phase maps:maps maps_relu:maps_relu lr_control:lr ntk:ntk residual:residual; do
    case_name="${pair%%:*}"
    figure="${pair##*:}"
    "$PDENET" run "cases/meanfield_${case_name}.toml" -o "$OUT/meanfield_${case_name}.h5" -q
    "$PDENET" plot "$OUT/meanfield_${case_name}.h5" -o "docs/figures/meanfield_${figure}.png"
done
echo "results in $OUT"
