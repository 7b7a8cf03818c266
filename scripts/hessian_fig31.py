"""Thesis Fig. 3.1 on digits / mnist1d: train a case, then the Hessian extremes (Lanczos on exact
Hessian-vector products) and the SLQ spectral weight near zero at the trained parameters.

    PYTHONPATH=. python scripts/hessian_fig31.py cases/digits_adam.toml train.iterations=150 data.limit=500
"""
import sys, time
import numpy as np
import pdenet
from pdenet.network import hessian
case = sys.argv[1]; over = sys.argv[2:]
t0 = time.time()
r = pdenet.run(case, overrides=over, write=False)
model = pdenet.validate(case, over)
net = model.net
for n, p in net.params.items():
    p[...] = r.controls[n]
P = sum(p.size for p in net.params.values())
t1 = time.time()
print(case, over, "P", P, "S", model.inputs.shape[0], "train", round(t1 - t0, 1), "s", "acc", r.attrs.get("accuracy"), r.attrs.get("test_accuracy"), flush=True)
top, bottom = hessian.spectrum(net, model.inputs, model.targets, k=5, tol=1e-4, maxiter=300)
t2 = time.time()
print("top", top, "bottom", bottom, round(t2 - t1, 1), "s", flush=True)
op = hessian.hessian_operator(net, model.inputs, model.targets)
nodes, w = hessian.slq_nodes(op.matvec, P, probes=3, steps=60)
t3 = time.time()
lmax = np.nanmax(np.abs(np.concatenate([top, bottom])))
for tol in (1e-3, 1e-2):
    print(f"fraction |lambda| <= {tol:g} lambda_max: {w[np.abs(nodes) <= tol * lmax].sum():.4f}")
print("negative weight", w[nodes < -1e-3 * lmax].sum(), "slq", round(t3 - t2, 1), "s")
