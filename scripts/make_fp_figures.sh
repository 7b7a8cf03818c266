#!/usr/bin/env bash
# Regenerate the figures of docs/fokker-planck.md from the shipped fokker-planck cases:
# runs each case into a temporary directory and plots it with `pdenet plot`; the OU
# convergence plots come from `pdenet converge`.
#   scripts/make_fp_figures.sh                 # writes docs/figures/fp_*.png
#   OUT=/some/dir scripts/make_fp_figures.sh   # keeps the .h5 files there
set -euo pipefail
cd "$(dirname "$0")/.."
PDENET="${PDENET:-.venv/bin/pdenet}"
[ -x "$PDENET" ] || PDENET=pdenet
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" docs/figures
for name in ou_1d ou_2d gibbs_double_well kramers nonisotropic circulating sgd_diffusion \
        limit_cycle_l0 limit_cycle_l05 limit_cycle_l2; do
    "$PDENET" run "cases/fp_${name}.toml" -o "$OUT/fp_${name}.h5" -q
    "$PDENET" plot "$OUT/fp_${name}.h5" -o "docs/figures/fp_${name}.png"
done
"$PDENET" converge cases/fp_ou_2d.toml --key mesh.cells --values 20,40,80,160 -q \
    -o "$OUT/fp_ou_2d_space.h5" --plot docs/figures/fp_ou_2d_space.png
"$PDENET" converge cases/fp_ou_1d.toml --key time.steps --values 5,10,20,40 -q \
    --set time.stepper='"cn"' --set 'mesh.cells=[1600]' --set time.save_every=1 \
    -o "$OUT/fp_ou_1d_time_cn.h5" --plot docs/figures/fp_ou_1d_time_cn.png
"$PDENET" converge cases/fp_ito_1d.toml --key mesh.cells --values 50,100,200,400 -q \
    -o "$OUT/fp_ito_1d_space.h5" --plot docs/figures/fp_ito_1d_space.png
echo "results in $OUT"
