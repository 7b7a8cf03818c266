#!/usr/bin/env bash
# Regenerate the reduced functional HJB figure and table of docs/network-training.md
# ("Reduced functional HJB (§4.3)"): the shipped two-mode case on c-grids 40², 80², 160², 320²
# (V(c0, 0), closed-loop cost, open-loop optimum), and the figure of the 160² run.
#   scripts/make_network_hjb_figures.sh          # writes docs/figures/network_reduced_hjb.png
#   OUT=/some/dir scripts/make_network_hjb_figures.sh    # keeps the .h5 files there
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
PDENET="${PDENET:-.venv/bin/pdenet}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" docs/figures
for n in 40 80 160 320; do
  "$PDENET" run cases/network_reduced_hjb.toml -o "$OUT/hjb_$n.h5" -q --set "mesh.cells=[$n, $n]"
done
"$PDENET" plot "$OUT/hjb_160.h5" -o docs/figures/network_reduced_hjb.png
"$PY" - "$OUT" <<'PYEOF'
import sys
import pdenet
out = sys.argv[1]
print("| c-grid | V(c0, 0) | closed-loop cost | open-loop optimum | V − open | closed − open | max |V(c_n,t_n) − cost-to-go| |")
print("|---|---|---|---|---|---|---|")
for n in (40, 80, 160, 320):
    r = pdenet.open(f"{out}/hjb_{n}.h5")
    a, an = r.attrs, r.analysis
    dp = abs(an["value_on_path"] - an["cost_to_go"]).max()
    print(f"| {n}² | {a['value_c0']:.6f} | {a['cost_closed_loop']:.6f} | {a['cost_open_loop']:.6f} | "
          f"{a['open_minus_value'] * -1:.2e} | {a['closed_minus_open']:.2e} | {dp:.2e} |")
PYEOF
