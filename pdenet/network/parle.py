"""Parle (``[train] method = "parle"``): Entropy-SGD in the inner loop of Elastic-SGD, the thesis's
(5.8a-d) with the normalised step sizes and the scoping (5.10) of Sect. 5.3.

One outer iteration k (n L gradient evaluations), gamma_k = gamma_0 (1 - gamma_1)^k,
rho_k = rho_0 (1 - gamma_1)^k, for every replica a (re-initialising y^a, z^a <- x^a):

    L times:  y^a <- y^a - eta0 [grad f_a(y^a) + (y^a - x^a) / gamma_k] (+ sqrt(2 eta0/beta) N(0, I))  (5.8a)
              z^a <- alpha z^a + (1 - alpha) y^a                                                     (5.8b)
    x^a <- P(x^a - eta (x^a - z^a) - (eta / rho_k) (x^a - x))             (5.8c, eta^(1) = eta gamma_k, eta^(2) = eta)
    x   <- P(x - (n eta^(3) / rho_k)(x - (1/n) sum_a x^a))                (5.8d, the replicas before (5.8c))

eta^(3) = ``master_lr`` (default rho_k / n, Sect. 5.3: x <- the replica mean). Keys and defaults
(Sect. 5.3): ``replicas`` n = 4 (the thesis uses 3-8), ``langevin_steps`` L = 25, ``averaging``
alpha = 0.25, ``langevin_lr`` eta0 = 0.1, ``gamma`` gamma_0 = 100, ``coupling`` rho_0 = 1,
``scoping`` gamma_1 = 1e-3 (the thesis uses 1/(2B), B the batches per epoch, and clips gamma at 1,
rho at 0.1; neither clip is applied here), ``langevin_noise`` 0 (no external noise, Sect. 5.2.2),
``lr`` eta. Nesterov momentum on (5.8a)/(5.8c) (Remark 5.3) is not used.

Replicas over MPI ranks: see :mod:`.drivers`.
"""
from __future__ import annotations

import numpy as np

from .drivers import Flat, History, Replicas, scope
from .elastic import master_step
from .entropy_sgd import _check, langevin

__all__ = ["parle", "DEFAULTS"]

DEFAULTS = {"replicas": 4, "langevin_steps": 25, "averaging": 0.25, "langevin_lr": 0.1, "gamma": 100.0,
            "coupling": 1.0, "scoping": 1e-3, "langevin_noise": 0.0}


def parle(objective, iterations, lr, make_objective, replicas=4, gamma=100.0, coupling=1.0, scoping=1e-3,
          langevin_steps=25, langevin_lr=0.1, langevin_noise=0.0, averaging=0.25, master_lr=None, seed=0,
          box=None, metric=None, callback=None, comm=None):
    """Train ``objective.params`` in place (to the reference variable); returns the history."""
    _check(gamma, langevin_steps, averaging, langevin_noise)
    if coupling <= 0:
        raise ValueError(f"parle needs coupling > 0, got {coupling}")
    flat = Flat(objective, box, metric)
    reps = Replicas(flat, replicas, make_objective, comm)
    n = reps.n
    rngs = {a: np.random.default_rng([seed, 100 + a]) for a in reps.mine}
    hist = History(callback)
    x = flat.get()
    xa = {a: x.copy() for a in reps.mine}
    stop = hist.record(flat, x, None, evaluations=reps.evaluations(), gamma=gamma, coupling=coupling)
    for k in range(iterations):
        if stop:
            break
        g_k, rho_k = scope(gamma, scoping, k), scope(coupling, scoping, k)
        mean = Replicas.mean(reps.gather(xa))           # (5.8d) uses the replicas before (5.8c)
        for a in reps.mine:
            z, _ = langevin(lambda y, a=a: reps.gradient(a, y)[1], xa[a], g_k, langevin_steps, langevin_lr,
                            langevin_noise, averaging, rngs[a], normal=flat.normal)
            xa[a] = flat.project(xa[a] - lr * (xa[a] - z) - (lr / rho_k) * (xa[a] - x))
        x_new = flat.project(master_step(x, mean, rho_k, n, master_lr))
        stop = hist.record(flat, x_new, x, evaluations=reps.evaluations(), gamma=g_k, coupling=rho_k)
        x = x_new
    flat.set(x)
    return hist.arrays()
