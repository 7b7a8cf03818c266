#!/usr/bin/env bash
# The main demonstration: the network PDE end to end, into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
P=.venv/bin/pdenet
mkdir -p out
echo "== forward solve, co-state and gradients of a smooth 1-D network PDE"
$P run cases/network_depth.toml -o out/network_depth.h5
$P info out/network_depth.h5 | head -12
$P plot out/network_depth.h5 -o out/network_depth.png
echo "== depth limit (Theorem 2.1): observed orders 1 (Euler), 2 (Heun), 4 (RK4)"
for s in euler heun rk4; do
  $P converge cases/network_depth.toml --key time.steps --values 8,16,32,64,128 \
     --set time.stepper=\"$s\" -o out/depth_$s.h5 -q
done
echo "== width limit (Theorem 2.2): refining the label mesh, order 2 (midpoint rule)"
$P converge cases/network_width.toml --key mesh.cells --values 8,16,32,64,128 -o out/width.h5 -q
echo "== Theorem 3.2 / Prop. 3.5: Lyapunov functional and linear growth for relu with B_s >= 0"
$P run cases/network_lyapunov.toml -o out/network_lyapunov.h5 -q
$P plot out/network_lyapunov.h5 -o out/network_lyapunov.png
echo "== 2-D label mesh, FFT convolution kernel, softmax head, checkpointed adjoint"
$P run cases/network_conv2d.toml -o out/network_conv2d.h5
$P plot out/network_conv2d.h5 --field r -o out/network_conv2d.png
echo "== implicit (Crank-Nicolson) network with a finite-rank kernel"
$P run cases/network_lowrank.toml -o out/network_lowrank.h5
echo "== mean-field signal propagation: order-to-chaos phase diagram of tanh networks"
$P run cases/meanfield_tanh_phase.toml -o out/meanfield_tanh_phase.h5 -q
$P plot out/meanfield_tanh_phase.h5 -o out/meanfield_tanh_phase.png
echo "demo outputs (HDF5 and PNG) are in out/"
