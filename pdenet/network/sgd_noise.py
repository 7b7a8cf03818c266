"""The mini-batch gradient noise of SGD on the network PDE: Sigma_D(theta) and its spectrum.

For the training loss J(theta) = (1/S) sum_s l_s(theta) (l_s the terminal loss of sample s;
the deterministic Tikhonov term adds the same vector to every per-sample gradient and so
drops out of every covariance) the *diffusion matrix* of SGD is

    Sigma_D = (1/S) sum_s g_s g_s^T - gbar gbar^T = (1/S) Gc^T Gc,        g_s = grad l_s,

with Gc the (S, P) matrix of centred per-sample gradients (review (21)-(23); thesis
Lemma 6.3, D_w). A mini-batch of size l drawn with replacement has gradient covariance
Sigma_D / l; drawn without replacement (a uniformly random l-subset) its covariance is
Sigma_D (S - l) / (l (S - 1)) exactly (the finite-population correction; the thesis's
(6.5) writes this as D_wo (1 - l/S)/l with D_wo = Sigma_D S/(S-1), though its displayed
formula has (1 - 1/(S-1)) gbar gbar^T where the exact coefficient is S/(S-1)).

Per-sample gradients come from the network's exact discrete adjoint, one sample at a
time (exact for every stepper, kernel and head). P x P is never formed: the top
eigenpairs are found by scipy's ``eigsh`` (Lanczos) on the operator
v -> (1/S) Gc^T (Gc v); the trace is ||Gc||_F^2 / S; the numerical rank at a relative
tolerance is counted on the nonzero spectrum, which Sigma_D shares with the (S, S) Gram
matrix (1/S) Gc Gc^T (so rank <= S - 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ..sgd.problems import batch_factor

__all__ = ["per_sample_gradients", "NoiseCovariance", "batch_factor", "flatten", "unflatten"]


def flatten(arrays, names) -> np.ndarray:
    """The arrays ``arrays[name]`` for ``name`` in ``names`` raveled and concatenated."""
    return np.concatenate([np.asarray(arrays[n], float).ravel() for n in names])


def unflatten(vector, net) -> dict:
    """The inverse of :func:`flatten` for ``net.params`` (order and shapes of ``/controls``)."""
    out, pos = {}, 0
    for name, p in net.params.items():
        out[name] = vector[pos:pos + p.size].reshape(p.shape)
        pos += p.size
    return out


def per_sample_gradients(net, f0, target, samples: Optional[np.ndarray] = None, out=None, keep="all") -> np.ndarray:
    """(S, P) matrix whose row s is grad l_s(theta), in the order of ``net.params`` (the ``/controls``).

    l_s is sample s's terminal loss (J = mean_s l_s without the Tikhonov term). Each row is the
    network's exact discrete-adjoint gradient of the one-sample problem. ``samples``: the rows
    (sample indices) wanted (default all); ``out``: a preallocated (len(samples), P) array.
    """
    f0 = np.asarray(f0, float)
    target = np.asarray(target)
    idx = np.arange(f0.shape[0]) if samples is None else np.asarray(samples, int)
    names = list(net.params)
    P = sum(p.size for p in net.params.values())
    G = np.empty((idx.size, P)) if out is None else out
    for row, s in enumerate(idx):
        _, grad, _, _ = net.loss_and_gradient(f0[s:s + 1], target[s:s + 1], keep=keep, regularise=False)
        pos = 0
        for n in names:
            g = grad[n]
            G[row, pos:pos + g.size] = g.ravel()
            pos += g.size
    return G


@dataclass
class Spectrum:
    eigenvalues: np.ndarray      # descending
    eigenvectors: Optional[np.ndarray]   # (P, k) columns, same order
    trace: float
    rank: int
    tolerance: float


class NoiseCovariance:
    """Sigma_D = (1/S) Gc^T Gc of per-sample gradients G (S, P), never formed when P is large.

    ``G`` is centred in place (no copy). :meth:`matvec` applies Sigma_D; :meth:`operator` is
    the scipy ``LinearOperator``; :meth:`top` its leading eigenpairs by Lanczos; :meth:`gram_eigenvalues`
    the nonzero spectrum from the (S, S) Gram matrix; :meth:`dense` the P x P matrix (small P only).
    """

    def __init__(self, G: np.ndarray, copy: bool = False) -> None:
        G = np.array(G, float) if copy else np.asarray(G, float)
        self.S, self.P = G.shape
        self.mean = G.mean(axis=0)
        G -= self.mean
        self.Gc = G

    @classmethod
    def of_network(cls, net, f0, target, keep="all") -> "NoiseCovariance":
        return cls(per_sample_gradients(net, f0, target, keep=keep))

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return self.Gc.T @ (self.Gc @ v) / self.S

    def operator(self) -> LinearOperator:
        return LinearOperator((self.P, self.P), matvec=self.matvec, rmatvec=self.matvec, dtype=float)

    def trace(self) -> float:
        return float(np.einsum("ij,ij->", self.Gc, self.Gc) / self.S)

    def gram_eigenvalues(self) -> np.ndarray:
        """All eigenvalues of (1/S) Gc Gc^T, descending: the nonzero spectrum of Sigma_D (plus zeros)."""
        M = self.Gc @ self.Gc.T / self.S
        return np.clip(np.linalg.eigvalsh(M)[::-1], 0.0, None)

    def dense(self) -> np.ndarray:
        return self.Gc.T @ self.Gc / self.S

    def rank(self, tol: float = 1e-8, eigenvalues: Optional[np.ndarray] = None) -> int:
        """Eigenvalues above ``tol`` times the largest (counted on the Gram spectrum)."""
        ev = self.gram_eigenvalues() if eigenvalues is None else eigenvalues
        top = float(ev[0]) if ev.size else 0.0
        return int(np.sum(ev > tol * top)) if top > 0 else 0

    def top(self, k: int, method: str = "lanczos", tol: float = 0.0, seed: int = 0, vectors: bool = False):
        """(eigenvalues descending, eigenvectors (P, k) or None) of the k largest eigenpairs.

        ``method``: ``lanczos`` (eigsh on the operator), ``gram`` (eigh of the S x S Gram matrix,
        vectors Gc^T u / sqrt(S lambda)), ``dense`` (numpy eigh of the P x P matrix).
        """
        k = int(min(k, self.P))
        if method == "dense":
            w, V = np.linalg.eigh(self.dense())
            w, V = w[::-1][:k], V[:, ::-1][:, :k]
            return w, (V if vectors else None)
        if method == "gram":
            w, U = np.linalg.eigh(self.Gc @ self.Gc.T / self.S)
            w, U = w[::-1][:k], U[:, ::-1][:, :k]
            if not vectors:
                return w, None
            V = self.Gc.T @ U
            V /= np.maximum(np.linalg.norm(V, axis=0), np.finfo(float).tiny)
            return w, V
        if method != "lanczos":
            raise ValueError(f"unknown method {method!r}; use lanczos, gram or dense")
        if k >= self.P:         # eigsh needs k < P
            return self.top(k, "dense", vectors=vectors)
        v0 = np.random.default_rng(seed).standard_normal(self.P)
        res = eigsh(self.operator(), k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=vectors)
        if vectors:
            w, V = res
            order = np.argsort(w)[::-1]
            return w[order], V[:, order]
        return np.sort(res)[::-1], None

    def spectrum(self, k: int, tol: float = 1e-8, method: str = "lanczos") -> Spectrum:
        ev, _ = self.top(k, method)
        return Spectrum(ev, None, self.trace(), self.rank(tol), tol)


class NoiseRecorder:
    """The ``[sgd_noise]`` table of a network case: Sigma_D of the training samples at the
    initial/final parameters or every ``every`` training iterations, written to ``/analysis``.

    :meth:`on_iterate` is the training hook (``train(..., on_iterate=)``); :meth:`finish` records
    what is still due after training (``final``; the last iterate for ``every``; everything when
    there is no training); :meth:`write` writes ``/analysis/sgd_noise_*`` and the attributes.
    """

    def __init__(self, case, net, inputs, targets) -> None:
        self.net, self.inputs, self.targets = net, inputs, targets
        self.where, self.every = case["sgd_noise.where"], case["sgd_noise.every"]
        self.k, self.tol, self.method = case["sgd_noise.eigenvalues"], case["sgd_noise.tolerance"], case["sgd_noise.method"]
        self.keep = case["time.checkpoint_every"] or "all"
        batch = case["sgd_noise.batch_size"] or case["train.batch_size"] or 1
        self.batch = min(batch, inputs.shape[0])
        self.rows: list[tuple[int, Spectrum]] = []
        self.last = None            # the last training iteration seen

    def record(self, iteration: int) -> None:
        cov = NoiseCovariance.of_network(self.net, self.inputs, self.targets, keep=self.keep)
        self.rows.append((int(iteration), cov.spectrum(self.k, self.tol, self.method)))

    def on_iterate(self, k: int) -> None:
        self.last = k
        if (self.where == "initial" and k == 0) or (self.where == "every" and k % self.every == 0):
            self.record(k)

    def finish(self) -> None:
        if self.where == "none":
            return
        last = self.last or 0
        if self.where == "final" or (self.last is None and self.where == "initial") or \
                (self.where == "every" and (not self.rows or self.rows[-1][0] != last)):
            self.record(last)

    def write(self, sink) -> None:
        if not self.rows:
            return
        S = self.inputs.shape[0]
        width = max(s.eigenvalues.size for _, s in self.rows)
        ev = np.full((len(self.rows), width), np.nan)
        for i, (_, s) in enumerate(self.rows):
            ev[i, :s.eigenvalues.size] = s.eigenvalues
        where = {"meaning": f"Sigma_D = (1/S) sum_s g_s g_s^T - gbar gbar^T of the per-sample gradients "
                 f"(order of /controls), row i at training iteration sgd_noise_iterations[i]"}
        sink.write("analysis", "sgd_noise_iterations", np.array([k for k, _ in self.rows], dtype=float))
        sink.write("analysis", "sgd_noise_eigenvalues", ev, {**where, "order": "descending",
                                                           "method": self.method})
        sink.write("analysis", "sgd_noise_trace", np.array([s.trace for _, s in self.rows]), where)
        sink.write("analysis", "sgd_noise_ranks", np.array([s.rank for _, s in self.rows], dtype=float),
                   {"meaning": f"eigenvalues above {self.tol:g} x the largest"})
        last = self.rows[-1][1]
        sink.set_attrs({"sgd_noise_rank": int(last.rank), "sgd_noise_tolerance": float(self.tol),
                        "sgd_noise_parameters": int(sum(p.size for p in self.net.params.values())),
                        "sgd_noise_batch_size": int(self.batch),
                        "sgd_noise_factor_with_replacement": batch_factor(S, self.batch, True),
                        "sgd_noise_factor_without_replacement": batch_factor(S, self.batch, False)})
