"""Elastic-SGD (``[train] method = "elastic"``): n replicas x^a coupled to a reference variable x,
the thesis's (4.24)-(4.26) in the discrete form (5.4a-b) of Sect. 5.2.1.

One iteration k (n gradient evaluations, one per replica), rho_k = rho_0 (1 - gamma_1)^k:

    x^a <- P(x^a - eta [grad f_a(x^a) + (x^a - x) / rho_k] + sqrt(2 eta / beta) N(0, I))   (5.4a)
    x   <- P(x - (n eta' / rho_k) (x - (1/n) sum_a x^a))                               (5.4b)

(5.4b) uses the replicas of iteration k, before (5.4a) moves them. f_a is replica a's own
mini-batch stream (seed + 1 + a) with ``batch_size`` > 0, else the whole training set. eta =
``lr``, rho_0 = ``coupling`` (default 1, Sect. 5.3), gamma_1 = ``scoping``, 1/beta =
``langevin_noise`` (default 0: the mini-batch noise only, Sect. 5.2.2), eta' = ``master_lr``
(default rho_k / n, the normalisation eta^(3) of Sect. 5.3, which makes (5.4b) x <- the replica
mean). The replicas start at x. The trained parameters are the reference variable x.

Replicas over MPI ranks: see :mod:`.drivers` (one allgather of the replicas per iteration; the
numbers are the serial run's).
"""
from __future__ import annotations

import numpy as np

from .drivers import Flat, History, Replicas, scope

__all__ = ["elastic", "DEFAULTS"]

DEFAULTS = {"replicas": 4, "coupling": 1.0, "scoping": 1e-3, "langevin_noise": 0.0}


def master_step(x, mean, rho_k, n, master_lr):
    """(5.4b)/(5.8d): x - (n eta'/rho_k)(x - mean); eta' = None is rho_k/n, i.e. x <- mean."""
    if master_lr is None:
        return mean.copy()
    return x - (n * master_lr / rho_k) * (x - mean)


def elastic(objective, iterations, lr, make_objective, replicas=4, coupling=1.0, scoping=1e-3,
            langevin_noise=0.0, master_lr=None, seed=0, box=None, metric=None, callback=None, comm=None):
    """Train ``objective.params`` in place (to the reference variable); returns the history.

    ``make_objective(a)``: the objective of replica a (module :mod:`.drivers`)."""
    if coupling <= 0 or langevin_noise < 0:
        raise ValueError(f"elastic needs coupling > 0 and langevin_noise >= 0, got {coupling}, {langevin_noise}")
    flat = Flat(objective, box, metric)
    reps = Replicas(flat, replicas, make_objective, comm)
    n = reps.n
    rngs = {a: np.random.default_rng([seed, 100 + a]) for a in reps.mine}
    amp = np.sqrt(2.0 * lr * langevin_noise)
    hist = History(callback)
    x = flat.get()
    xa = {a: x.copy() for a in reps.mine}
    stop = hist.record(flat, x, None, evaluations=reps.evaluations(), coupling=coupling)
    for k in range(iterations):
        if stop:
            break
        rho_k = scope(coupling, scoping, k)
        mean = Replicas.mean(reps.gather(xa))           # the replicas of iteration k, for (5.4b)
        for a in reps.mine:
            _, g = reps.gradient(a, xa[a])
            new = xa[a] - lr * (g + (xa[a] - x) / rho_k)
            if amp:
                new = new + amp * flat.normal(rngs[a])
            xa[a] = flat.project(new)
        x_new = flat.project(master_step(x, mean, rho_k, n, master_lr))
        stop = hist.record(flat, x_new, x, evaluations=reps.evaluations(), coupling=rho_k)
        x = x_new
    flat.set(x)
    return hist.arrays()
