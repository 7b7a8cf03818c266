"""Trainability against depth: the experiment of the review's Fig. 1b (Schoenholz et al. 2017).

Random fully connected tanh networks with ``depth`` hidden layers of ``width`` units,

    h_1 = W_0 x + b_0,   h_{l+1} = W_l tanh(h_l) + b_l,   logits = W_out tanh(h_depth) + b_out,
    W ~ N(0, sigma_w^2 / fan_in),  b ~ N(0, sigma_b^2)           (review eq. 1),

are trained for ``steps`` steps of plain SGD (batch ``batch``, learning rate ``lr``) on the
softmax cross-entropy of a classification data set (mnist1d or digits, inputs standardised to
zero mean and unit variance per coordinate so that q_in ~ 1), and the training accuracy is
recorded, over a grid of (sigma_w^2, depth) at fixed sigma_b^2.  Deep signal propagation
predicts that a network is trainable only when depth <~ c xi_c(sigma_w^2, sigma_b^2), with
xi_c the correlation depth scale of :mod:`pdenet.meanfield.maps`; the review (Fig. 1b, on MNIST)
reads c ~ 4.5 and Schoenholz et al. (2017, §5: "about 6 xi_c") c ~ 6.

The whole training run (forward, backward, update, for every layer and step) is one numba
function calling BLAS through ``np.dot``: no Python per layer or per step.

Fitting c: for each sigma_w^2 the *transition depth* L*(sigma_w^2) is the geometric mean of the
deepest trainable depth and the next (untrainable) grid depth, where "trainable" is training
accuracy >= ``threshold``; columns that are trainable at every depth or at none are censored
and left out, and so are the columns next to the critical line where xi_c exceeds a quarter of
the deepest grid depth (there c xi_c lies beyond the grid and the finite training sets the
transition).  Then log c = mean over columns of log(L*/xi_c), with a Student-t confidence
interval of that mean (the spread of the columns includes the depth grid's discretisation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import stats

from .maps import critical_sw2, xi_c

#: c of L* = c xi_c measured by this driver on digits (13 x 12 grid, width 64, 200 SGD steps of
#: batch 32 at lr 0.01, training accuracy >= 0.5; docs/trainability.md has the command), with its
#: 95 % confidence interval.  Literature: 6 (Schoenholz et al. 2017), 4.5 (the review's Fig. 1b).
MEASURED_FACTOR = 4.28
MEASURED_FACTOR_CI = (3.68, 4.98)


@numba.njit(cache=True)
def _train(X, y, classes, depth, width, sw2, sb2, lr, steps, batch, seed, X_eval, y_eval):
    """Initialise and train one network; returns the accuracy on (X_eval, y_eval) before and
    after training and the final mean batch loss."""
    np.random.seed(seed)
    n, d = X.shape
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    W0 = np.random.standard_normal((d, width)) * (sw / math.sqrt(d))       # (in, out)
    Wh = np.random.standard_normal((max(depth - 1, 1), width, width)) * (sw / math.sqrt(width))
    Wo = np.random.standard_normal((width, classes)) * (sw / math.sqrt(width))
    bh = np.random.standard_normal((depth, width)) * sb
    bo = np.random.standard_normal(classes) * sb
    A = np.empty((depth + 1, batch, width))    # A[0] unused (input is Xb); A[l] = tanh(h_l)
    Xb = np.empty((batch, d))
    yb = np.empty(batch, dtype=np.int64)
    loss = 0.0
    acc0 = _accuracy(X_eval, y_eval, W0, Wh, Wo, bh, bo, depth)
    for _ in range(steps):
        for i in range(batch):
            k = np.random.randint(0, n)
            Xb[i] = X[k]
            yb[i] = y[k]
        # forward
        H = np.dot(Xb, W0)
        for l in range(depth):
            if l > 0:
                H = np.dot(A[l], Wh[l - 1])
            for i in range(batch):
                for j in range(width):
                    A[l + 1, i, j] = math.tanh(H[i, j] + bh[l, j])
        Z = np.dot(A[depth], Wo)
        G = np.empty((batch, classes))
        loss = 0.0
        for i in range(batch):
            m = -1e300
            for c in range(classes):
                Z[i, c] += bo[c]
                m = max(m, Z[i, c])
            s = 0.0
            for c in range(classes):
                G[i, c] = math.exp(Z[i, c] - m)
                s += G[i, c]
            loss += math.log(s) + m - Z[i, yb[i]]
            for c in range(classes):
                G[i, c] /= s * batch
            G[i, yb[i]] -= 1.0 / batch
        loss /= batch
        # backward and update (gradients of a layer are taken before its weights change)
        dA = np.dot(G, Wo.T)
        Wo -= lr * np.dot(A[depth].T, G)
        bo -= lr * G.sum(axis=0)
        for l in range(depth - 1, -1, -1):
            dH = dA * (1.0 - A[l + 1] * A[l + 1])
            bh[l] -= lr * dH.sum(axis=0)
            if l > 0:
                dA = np.dot(dH, Wh[l - 1].T)
                Wh[l - 1] -= lr * np.dot(A[l].T, dH)
            else:
                W0 -= lr * np.dot(Xb.T, dH)
    return acc0, _accuracy(X_eval, y_eval, W0, Wh, Wo, bh, bo, depth), loss


@numba.njit(cache=True)
def _accuracy(X, y, W0, Wh, Wo, bh, bo, depth):
    H = np.dot(X, W0)
    for l in range(depth):
        if l > 0:
            H = np.dot(H, Wh[l - 1])
        for i in range(H.shape[0]):
            for j in range(H.shape[1]):
                H[i, j] = math.tanh(H[i, j] + bh[l, j])
    Z = np.dot(H, Wo)
    right = 0
    for i in range(Z.shape[0]):
        best = 0
        for c in range(Z.shape[1]):
            if Z[i, c] + bo[c] > Z[i, best] + bo[best]:
                best = c
        right += best == y[i]
    return right / Z.shape[0]


def load(source: str, samples: int = 4000, seed: int = 0):
    """Standardised training inputs (n, d) and labels of ``mnist1d`` or ``digits``."""
    from ..network import data as nd
    ds = nd.load_mnist1d(samples=samples, seed=seed) if source == "mnist1d" else nd.load_digits(seed=seed)
    X = ds.inputs.reshape(ds.inputs.shape[0], -1).astype(float)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    X = (X - mu) / np.where(sd > 0, sd, 1.0)
    return np.ascontiguousarray(X), ds.labels.astype(np.int64), ds.classes


def train_once(X, y, classes, depth, width, sw2, sb2, lr=1e-2, steps=200, batch=32, seed=0, n_eval=1000):
    """Train one random network; returns (accuracy before, accuracy after, last batch loss) with
    the accuracies on the first ``n_eval`` training inputs."""
    Xe, ye = np.ascontiguousarray(X[:n_eval]), np.ascontiguousarray(y[:n_eval])
    return _train(np.ascontiguousarray(X), np.ascontiguousarray(y, dtype=np.int64), int(classes), int(depth),
                  int(width), float(sw2), float(sb2), float(lr), int(steps), int(batch), int(seed), Xe, ye)


@dataclass
class TrainabilityGrid:
    sw2: np.ndarray          # (n_w,)
    depths: np.ndarray       # (n_L,)
    accuracy: np.ndarray     # (n_w, n_L) training accuracy after training
    sb2: float
    xi_c: np.ndarray         # (n_w,)
    critical_sw2: float


def run_grid(X, y, classes, sw2_grid, depths, sb2=0.05, width=64, lr=1e-2, steps=200, batch=32, seed=0,
             comm=None, progress=None) -> TrainabilityGrid:
    """Train one network per grid point (seed + cell index); with an mpi4py ``comm`` the cells
    are dealt round-robin over ranks and gathered on every rank."""
    sw2_grid, depths = np.asarray(sw2_grid, float), np.asarray(depths, int)
    cells = [(i, j) for i in range(sw2_grid.size) for j in range(depths.size)]
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    acc = np.full((sw2_grid.size, depths.size), np.nan)
    for k, (i, j) in enumerate(cells):
        if k % size != rank:
            continue
        acc[i, j] = train_once(X, y, classes, depths[j], width, sw2_grid[i], sb2, lr, steps, batch, seed + k)[1]
        if progress is not None:
            progress(k)
    if comm is not None:
        parts = comm.allgather(acc)
        acc = np.nanmax(np.stack(parts), axis=0) if size > 1 else acc
    xc = np.array([xi_c(s, sb2, "tanh") for s in sw2_grid])
    return TrainabilityGrid(sw2_grid, depths, acc, sb2, xc, critical_sw2(sb2, "tanh"))


@dataclass(frozen=True)
class DepthFit:
    c: float
    ci: tuple[float, float]           # 95 % confidence interval of c
    columns: np.ndarray               # sigma_w^2 of the columns used
    transition: np.ndarray            # L* at those columns
    peak_sw2: float                   # sigma_w^2 of the deepest trainable network
    threshold: float


def fit_depth_constant(grid: TrainabilityGrid, threshold: float, level: float = 0.95,
                       max_xi: float | None = None) -> DepthFit:
    """The constant c of L* = c xi_c (module docstring) with its ``level`` confidence interval.

    Columns with xi_c > ``max_xi`` (default: a quarter of the deepest grid depth) are left out:
    near the critical line c xi_c exceeds every depth on the grid, and there the transition is
    set by the finite number of training steps, not by xi_c."""
    ok = grid.accuracy >= threshold
    max_xi = grid.depths[-1] / 4.0 if max_xi is None else max_xi
    cols, trans = [], []
    for i in range(grid.sw2.size):
        good = np.nonzero(ok[i])[0]
        if (good.size == 0 or good[-1] == grid.depths.size - 1 or not np.isfinite(grid.xi_c[i])
                or grid.xi_c[i] > max_xi):
            continue
        last = good[-1]
        trans.append(math.sqrt(grid.depths[last] * grid.depths[last + 1]))
        cols.append(i)
    deepest = np.array([grid.depths[np.nonzero(ok[i])[0][-1]] if ok[i].any() else 0 for i in range(grid.sw2.size)])
    peak = float(np.mean(grid.sw2[deepest == deepest.max()]))
    if len(cols) < 2:
        return DepthFit(math.nan, (math.nan, math.nan), grid.sw2[cols], np.array(trans), peak, threshold)
    r = np.log(np.array(trans) / grid.xi_c[cols])
    m, se = r.mean(), r.std(ddof=1) / math.sqrt(r.size)
    t = stats.t.ppf(0.5 + level / 2, r.size - 1)
    return DepthFit(math.exp(m), (math.exp(m - t * se), math.exp(m + t * se)), grid.sw2[cols],
                    np.array(trans), peak, threshold)
