#!/usr/bin/env python
"""Risk-aware training on digits (review §5, eqs. 48-50): Adam on J_k for k = 0, +1, -1 (150
iterations, lr 0.2); per-sample training and held-out losses (mean, spread, worst) and held-out
accuracy. Prints markdown rows for docs/control-formulations.md.

    PYTHONPATH=. python scripts/risk_digits.py
"""
import numpy as np, time, pdenet
from pdenet.network.risk import per_sample_losses, risk_measure
for k in (0.0, 1.0, -1.0):
    t0=time.time()
    from pdenet.network.model import NetworkModel
    from pdenet.network.training import train
    m = NetworkModel(pdenet.load_case("cases/digits_risk.toml"))
    train(m.net, m.inputs, m.targets, "adam", {"iterations": 150, "lr": 0.2, "risk_k": k, "eval_every": 150})
    fT,_ = m.net.forward(m.inputs); phi = per_sample_losses(m.net.head, fT, m.targets)
    fTt,_ = m.net.forward(m.test[0]); pt = per_sample_losses(m.net.head, fTt, m.test[1])
    acc = m.net.loss(*m.test)[1]["accuracy"]
    print(f"| {k:+.1f} | {phi.mean():.4f} | {phi.std():.4f} | {phi.max():.3f} | {pt.mean():.4f} | {pt.std():.4f} | {pt.max():.2f} | {acc:.3f} | {time.time()-t0:.0f} |")
