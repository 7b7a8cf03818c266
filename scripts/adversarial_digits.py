#!/usr/bin/env python
"""Adversarial training of the network PDE on digits (review §5, eqs. 56-57): plain Adam vs
FGSM- and PGD-trained networks, held-out accuracy clean / under random-sign noise / under FGSM
and PGD-10 attacks, all at linf radius eps.  Prints a markdown table (docs/control-formulations.md).

    PYTHONPATH=. python scripts/adversarial_digits.py --iterations 100 --eps 0.1
"""
import argparse
import time

import pdenet
from pdenet.network import adversarial
from pdenet.network.model import NetworkModel
from pdenet.network.training import train


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=0.2)
    a = p.parse_args()
    rows = []
    for name, opts in (("plain (adam)", {}), ("FGSM-trained", {"adversary": "fgsm"}),
                       ("PGD-5-trained", {"adversary": "pgd", "adversary_steps": 5})):
        t0 = time.time()
        m = NetworkModel(pdenet.load_case("cases/digits_adam.toml"))
        train(m.net, m.inputs, m.targets, "adam", {"iterations": a.iterations, "lr": a.lr,
                                                  "adversary_eps": a.eps, **opts})
        net, (xt, yt), h = m.net, m.test, m.net.h
        clean = net.loss(xt, yt)[1]["accuracy"]
        noise = net.loss(xt + adversarial.random_perturbation(xt.shape, a.eps, h=h, seed=1), yt)[1]["accuracy"]
        fgsm = adversarial.robust_accuracy(net, xt, yt, a.eps, "linf", 1, h=h)
        pgd = adversarial.robust_accuracy(net, xt, yt, a.eps, "linf", 10, h=h)
        rows.append((name, clean, noise, fgsm, pgd, time.time() - t0))
    print(f"| training ({a.iterations} Adam iterations, lr {a.lr}) | clean | random signs ±{a.eps} | "
          f"FGSM eps={a.eps} | PGD-10 eps={a.eps} | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.0f} |")


if __name__ == "__main__":
    main()
