#!/usr/bin/env bash
# The main demonstration: the network PDE end to end, training, Fokker-Planck and
# Hamilton-Jacobi solvers, mean-field maps, into out/.
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
echo "== training on real data: the 8x8 digits classified by the network PDE, Adam (held-out ~98%)"
$P run cases/digits_adam.toml -o out/digits_adam.h5 -q
$P plot out/digits_adam.h5 -o out/digits_adam.png
echo "== Pontryagin: MSA cycles on the one-cell toy, the extended MSA converges"
$P run cases/toy_msa.toml -o out/toy_msa.h5 -q
$P run cases/toy_msa.toml -o out/toy_emsa.h5 -q --set train.method=\"emsa\"
echo "== Theorem 3.4: predicted and measured decay rate of u for a rank-2 kernel"
$P run cases/network_theorem34.toml -o out/network_theorem34.h5 -q
$P plot out/network_theorem34.h5 -o out/network_theorem34.png
echo "== Fokker-Planck: Gibbs steady state of a double well, circulating current of a non-gradient drift"
$P run cases/fp_gibbs_double_well.toml -o out/fp_gibbs_double_well.h5 -q
$P run cases/fp_circulating.toml -o out/fp_circulating.h5 -q
$P plot out/fp_circulating.h5 -o out/fp_circulating.png
echo "== Hamilton-Jacobi: local entropy of a rugged loss (thesis Figure 4.1)"
$P run cases/hj_figure41.toml -o out/hj_figure41.h5 -q
$P plot out/hj_figure41.h5 -o out/hj_figure41.png
echo "== mean-field signal propagation: order-to-chaos phase diagram of tanh networks"
$P run cases/meanfield_tanh_phase.toml -o out/meanfield_tanh_phase.h5 -q
$P plot out/meanfield_tanh_phase.h5 -o out/meanfield_tanh_phase.png
echo "demo outputs (HDF5 and PNG) are in out/"
