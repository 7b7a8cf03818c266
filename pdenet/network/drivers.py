"""What the thesis's training drivers share: parameters as one flat vector, gradients at a point,
the scoping schedule, the per-iteration history and the replicas of Elastic-SGD and Parle.

The drivers (:mod:`.momentum`, :mod:`.entropy_sgd`, :mod:`.hj`, :mod:`.heat`, :mod:`.elastic`,
:mod:`.parle`) work on any objective of the :mod:`solvers.optim` protocol (``params`` updated in
place, ``loss_and_gradient()``, optional ``loss()`` and ``metrics()``); a mini-batch objective
(:class:`~pdenet.network.objective.BatchObjective`) draws its next batch on every gradient call,
so each gradient evaluation of a driver is one mini-batch gradient, as in the thesis.

Every driver returns the history dict of :mod:`solvers.optim` (k = 0 the initial parameters):
``loss``, ``step`` (Euclidean norm of x^k - x^(k-1)), ``gradient_evaluations`` (cumulative number
of gradient calls, the thesis's "effective epochs" times the batches per epoch), the scope
``gamma`` where there is one, and the objective's metrics.

Replicas (Elastic-SGD, Parle): replica a draws its mini-batches from its own seeded stream
(``seed + 1 + a``). With an mpi4py communicator of P > 1 ranks the replicas are split in
contiguous blocks over the ranks (:func:`pdenet.network.distributed.block`); every rank holds the
whole data and the reference variable, updates its own replicas and the replicas are exchanged by
one ``allgather`` per coupling step, after which every rank sums them **in replica order**: the
reference variable and the history are then the serial run's bit for bit.
"""
from __future__ import annotations

import numpy as np

from solvers import optim

__all__ = ["Flat", "scope", "History", "Replicas", "l2_weights"]


def l2_weights(net):
    """Per-entry quadrature weights w of the parameters of a NetworkPDE (``[train] metric = "l2"``).

    The exact gradient dJ/dtheta_i of the discrete loss carries the quadrature weight of entry i
    (h dt_k for a(y, t), h^2 dt_k for a dense b(y, z, t), h for W, 1 for mu); dividing by it gives
    the L^2(Y x (0, T)) gradient, the Riesz representative of dJ, whose size does not depend on the
    mesh (docs/network-training.md). With metric = "l2" the drivers step along g / w.
    """
    from .objective import _durations

    dur = _durations(net)
    quad = {"a": net.h, **net.operator.quadrature(net.h)}
    w = {}
    for name, p in net.params.items():
        if name in quad:
            w[name] = np.broadcast_to(quad[name] * dur.reshape((-1,) + (1,) * (p.ndim - 1)), p.shape)
        elif name == "W":
            w[name] = np.full(p.shape, net.head.h)
        else:
            w[name] = np.ones(p.shape)
    return w


class Flat:
    """The objective's parameters as one flat vector x (names in ``params`` order)."""

    def __init__(self, objective, box=None, metric=None):
        self.objective = objective
        self.inverse_metric = None if metric is None else 1.0 / optim.flatten(metric, list(objective.params))
        self.params = objective.params
        self.names = list(self.params)
        self.box = box or {}
        optim._check_box(self.params, self.box)
        optim.project(self.params, self.box)
        self.lo, self.hi = optim._bounds(self.params, self.box, self.names)
        self.evaluations = 0

    def normal(self, rng):
        """A standard normal vector in the metric: N(0, I) (euclidean) or N(0, diag(1/w)) (l2), the
        white noise whose Langevin dynamics has the Gibbs measure of the metric's gradient flow."""
        xi = rng.standard_normal(len(self.lo))
        return xi if self.inverse_metric is None else xi * np.sqrt(self.inverse_metric)

    def get(self):
        return optim.flatten(self.params, self.names)

    def set(self, x):
        optim.unflatten(x, self.params, self.names)

    def project(self, x):
        """P_box(x) (a copy; x itself when there is no box)."""
        return np.clip(x, self.lo, self.hi) if self.box else x

    def gradient(self, x, objective=None):
        """(J, grad J) at x (the next mini-batch of ``objective``, default the driver's); counts one
        gradient evaluation. Leaves the parameters at x."""
        obj = self.objective if objective is None else objective
        self.set(x)
        J, g = obj.loss_and_gradient()
        self.evaluations += 1
        g = optim.flatten(g, self.names)
        return float(J), g if self.inverse_metric is None else g * self.inverse_metric

    def loss(self, x):
        """J at x for the record (a forward solve on the current batch; not a gradient evaluation)."""
        self.set(x)
        loss = getattr(self.objective, "loss", None)
        if callable(loss):
            return float(loss())
        return float(self.objective.loss_and_gradient()[0])


def scope(value0, rate, k):
    """The exponential scoping schedule gamma_k = gamma_0 (1 - gamma_1)^k (thesis Sect. 3.2.3, (5.10))."""
    return float(value0) * (1.0 - float(rate)) ** int(k)


def scoped_descent(objective, iterations, lr, gamma, scoping, box, metric, callback, direction):
    """The outer loop the local-entropy drivers share (entropy-sgd, hj, heat): x^{k+1} =
    P(x^k - lr d_k) with d_k = ``direction(flat, x^k, gamma_k)`` and the scoped gamma_k =
    :func:`scope`, recorded after every step; trains ``objective.params`` in place and returns
    the history."""
    flat = Flat(objective, box, metric)
    hist = History(callback)
    x = flat.get()
    stop = hist.record(flat, x, None, gamma=gamma)
    for k in range(iterations):
        if stop:
            break
        g_k = scope(gamma, scoping, k)
        x_new = flat.project(x - lr * direction(flat, x, g_k))
        stop = hist.record(flat, x_new, x, gamma=g_k)
        x = x_new
    flat.set(x)
    return hist.arrays()


class History(optim._History):
    """:class:`solvers.optim._History` with the common columns of these drivers."""

    def record(self, flat, x, x_old, evaluations=None, J=None, **extra):
        if J is None:
            J = flat.loss(x)
        step = 0.0 if x_old is None else float(np.linalg.norm(x - x_old))
        n = flat.evaluations if evaluations is None else evaluations
        return self.row(flat.objective, loss=J, step=step, gradient_evaluations=float(n), **extra)


class Replicas:
    """n replicas x^a of the parameters, their mini-batch streams, their split over MPI ranks.

    ``make_objective(a)`` returns the objective replica a evaluates its gradients on (the same
    parameters dict as the driver's objective, e.g. a BatchObjective with its own seed).
    """

    def __init__(self, flat, n, make_objective, comm=None):
        from .distributed import block, parallel

        if n < 1:
            raise ValueError(f"need at least one replica, got {n}")
        self.flat, self.n, self.comm = flat, int(n), comm
        size = comm.Get_size() if parallel(comm) else 1
        rank = comm.Get_rank() if parallel(comm) else 0
        if size > self.n:
            raise ValueError(f"{self.n} replicas cannot be split over {size} MPI ranks; "
                             f"use train.replicas >= {size}")
        self.mine = range(self.n)[block(self.n, rank, size)]
        self.objectives = {a: make_objective(a) for a in self.mine}

    def gradient(self, a, x):
        return self.flat.gradient(x, self.objectives[a])

    def gather(self, local):
        """{a: x^a} over all replicas from each rank's {a: x^a} of its own replicas."""
        if self.comm is None or self.comm.Get_size() == 1:
            return dict(local)
        merged = {}
        for part in self.comm.allgather(local):
            merged.update(part)
        return merged

    def evaluations(self):
        """Gradient evaluations over all ranks (each rank counts its own replicas')."""
        if self.comm is None or self.comm.Get_size() == 1:
            return self.flat.evaluations
        return int(self.comm.allreduce(self.flat.evaluations))

    @staticmethod
    def mean(allx):
        """The replica mean, summed in replica order (the same on every rank, and serially)."""
        keys = sorted(allx)
        total = np.array(allx[keys[0]], dtype=float, copy=True)
        for a in keys[1:]:
            total += allx[a]
        return total / len(keys)
