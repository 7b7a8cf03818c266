"""The training objective of the network PDE: what the gradient drivers (gd, adam, pam) minimise.

J(theta) = (1/S) sum_s Phi_s(f_s(T)) + (lambda/2) R(a, b)

* :class:`NetworkObjective`: a network with fixed data as the objective protocol of
  :mod:`solvers.optim` (``params``, ``loss``, ``loss_and_gradient``, ``metrics``, ``sqnorm``);
  the loss and its exact gradient over the samples come from the network's forward and
  discrete-adjoint solves, or from a data-parallel ``engine`` splitting the samples over MPI
  ranks (:class:`~pdenet.network.distributed.DataParallel`).
* :class:`BatchObjective`: the same over seeded mini-batches of the samples.
* :func:`tikhonov`, :func:`add_tikhonov_gradient`: the Tikhonov term R(a, b) of the paper
  (4.6) and its gradient (4.7).
* :func:`pam_groups`: the two blocks of PAM (Algorithm 1).

The Pontryagin side (Hamiltonian, bang-bang maximisers, MSA/E-MSA) is in :mod:`.pmp`.
This module imports nothing of the network: it works on any object with the attributes it reads.
"""
from __future__ import annotations

from typing import Any, MutableMapping

import numpy as np

__all__ = ["NetworkObjective", "BatchObjective", "pam_groups", "tikhonov", "add_tikhonov_gradient"]


# -- the Tikhonov term (lambda/2) R(a, b) --------------------------------------------------
def _durations(net) -> np.ndarray:
    return np.array([net.schedule.interval_steps(k) * net.schedule.dt for k in range(net.schedule.intervals)])


def tikhonov(net) -> float:
    """R(a, b) of ``net`` (a :class:`~pdenet.network.pde.NetworkPDE`): the quadrature of the
    squared parameters over Y (x Y) x (0, T) with interval durations as time weights (0 when
    ``net.tikhonov`` = 0). The part of a row-distributed kernel is summed over its ranks."""
    if net.tikhonov == 0.0:
        return 0.0
    dur = _durations(net)
    quad = {"a": net.h, **net.operator.quadrature(net.h)}
    total, split = 0.0, 0.0
    distributed = getattr(net.operator, "distributed", ())
    for name, w in quad.items():
        p = net.params[name]
        part = w * np.sum(dur * np.sum(p.reshape(p.shape[0], -1) ** 2, axis=1))
        if name in distributed:
            split += part
        else:
            total += part
    # a row-distributed kernel (distributed.RowDistributedDense): its part summed over ranks
    return total + net.operator.allsum(split) if distributed else total


def add_tikhonov_gradient(net, grad: MutableMapping[str, np.ndarray]) -> None:
    """grad += the gradient of (lambda/2) R: lambda w dur_k p (w the quadrature weight)."""
    if net.tikhonov == 0.0:
        return
    dur = _durations(net)
    quad = {"a": net.h, **net.operator.quadrature(net.h)}
    written = getattr(grad, "written", None)      # a pde.Gradient: its kernel arrays are no longer zero
    if written is not None:
        written()
    for name, w in quad.items():
        p = net.params[name]
        grad[name] += (net.tikhonov * w) * dur.reshape((-1,) + (1,) * (p.ndim - 1)) * p


# -- the objective protocol of solvers.optim ---------------------------------------------
class NetworkObjective:
    """A :class:`~pdenet.network.pde.NetworkPDE` with fixed data as the objective of :mod:`solvers.optim`.

    ``engine`` evaluates the loss and gradient: the network itself (default) or a
    :class:`~pdenet.network.distributed.DataParallel` wrapper of it, which splits
    the samples over MPI ranks and returns the same global J and gradient on every rank.
    """

    def __init__(self, net, f0: np.ndarray, target: Any, keep: Any = "all", engine: Any = None) -> None:
        self.net, self.f0, self.target, self.keep = net, f0, target, keep
        self.engine = net if engine is None else engine
        self._metrics: dict = {}

    @property
    def params(self) -> dict:
        return self.net.params

    def loss(self) -> float:
        J, self._metrics = self.engine.loss(self.f0, self.target)
        return J

    def loss_and_gradient(self):
        J, grad, self._metrics, _ = self.engine.loss_and_gradient(self.f0, self.target, keep=self.keep)
        return J, grad

    def metrics(self) -> dict:
        return dict(self._metrics)

    def sqnorm(self, arrays) -> float:
        """Squared Euclidean norm for the drivers' history (global for a row-distributed kernel)."""
        return self.net.sqnorm(arrays)


class BatchObjective(NetworkObjective):
    """:class:`NetworkObjective` whose gradient calls walk through seeded mini-batches."""

    def __init__(self, net, f0: np.ndarray, target: Any, batch_size: int, seed: int = 0, keep: Any = "all",
                 engine: Any = None) -> None:
        super().__init__(net, f0, target, keep, engine)
        self.all_f0, self.all_target = f0, target
        self.batch_size = int(batch_size)
        self.rng = np.random.default_rng(seed)
        self._order, self._pos = np.empty(0, dtype=int), 0

    def _next(self) -> None:
        S = self.all_f0.shape[0]
        if self._pos + self.batch_size > self._order.size:
            self._order, self._pos = self.rng.permutation(S), 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        self.f0, self.target = self.all_f0[idx], self.all_target[idx]

    def loss_and_gradient(self):
        self._next()
        return super().loss_and_gradient()

    def save_state(self):
        """The mini-batch stream's position (restart: :func:`solvers.optim.adam` ``state``)."""
        import json

        return {"rng": json.dumps(self.rng.bit_generator.state), "order": self._order.copy(), "pos": self._pos}

    def load_state(self, state):
        import json

        self.rng.bit_generator.state = json.loads(state["rng"]) if isinstance(state["rng"], str) else state["rng"]
        self._order, self._pos = np.asarray(state["order"], dtype=int).copy(), int(state["pos"])
        if self._pos:
            idx = self._order[self._pos - self.batch_size:self._pos]
            self.f0, self.target = self.all_f0[idx], self.all_target[idx]


def pam_groups(net) -> list[list[str]]:
    """PAM blocks (Algorithm 1): [["a"], kernel parameters + head W, mu].

    The head weights go with b: both act linearly on the state, and the
    paper's Algorithm 1 has exactly two blocks.
    """
    return [["a"], list(net.operator.params) + list(net.head.params)]
