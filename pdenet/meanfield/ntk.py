"""Gram matrices of wide random networks: the NNGP kernel and the neural tangent kernel
(review §3.2, eqs. 11–12; Lee et al. 2018; Jacot et al. 2018; Du et al. 2019).

Network and parameterisation
----------------------------
The *NTK parameterisation* of Jacot et al. (2018): every trainable parameter is a standard
normal at initialisation and the scales sit in the forward pass,

    h_1     = sigma_w / sqrt(d)   W_0 x        + sigma_b b_0,
    h_{l+1} = sigma_w / sqrt(n_l) W_l phi(h_l) + sigma_b b_l,     l = 1 .. depth-1,
    f(x)    = h_depth(x)  (one output unit),

W_l^{ij}, b_l^i ~ N(0, 1).  The forward pass has the same law as the standard parameterisation
of the mean-field maps (review eq. 1: W ~ N(0, sigma_w^2/n)), so the NNGP kernel is the one the
maps iterate; only the NTK (the gradient geometry) depends on the choice.

Infinite-width recursions (``depth`` layers, n inputs x_1..x_n in R^d)
----------------------------------------------------------------------
    K^1_ij     = sigma_w^2 x_i.x_j / d + sigma_b^2,              Theta^1 = K^1,
    K^{l+1}_ij = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2,
    Kdot^{l+1}_ij = sigma_w^2 E[phi'(u) phi'(v)],
    Theta^{l+1} = K^{l+1} + Kdot^{l+1} * Theta^l   (entrywise),
with (u, v) ~ N(0, [[K^l_ii, K^l_ij], [K^l_ij, K^l_jj]]).  ``/analysis/nngp`` = K^depth and
``/analysis/ntk`` = Theta^depth.  The expectations use the closed forms where they exist
(relu / leaky relu / linear: arc-cosine kernels of degree 1 and 0, Cho & Saul 2009; erf: the
arcsine kernel, Williams 1997) and otherwise the tensor Gauss–Hermite rule of
:mod:`pdenet.meanfield.maps` (``maps.gauss_hermite``, ``ORDER_2D`` nodes per axis).

Finite networks
---------------
:func:`init_params` draws one network; :func:`jacobian` is the exact Jacobian df(x_i)/dtheta
(per-sample gradients by reverse mode, one row per input, parameters flattened W_0, b_0, W_1,
...), and :func:`empirical_ntk` the Gram matrix J J^T evaluated layer by layer without forming
J: Theta_ij = sum_l (delta_{l+1}(x_i).delta_{l+1}(x_j)) (sigma_w^2 a_l(x_i).a_l(x_j)/n_l +
sigma_b^2), with a_0 = x, a_l = phi(h_l) and delta_l = df/dh_l.  :func:`train_gd` runs full-batch
gradient descent on L = 1/2 sum_i (f(x_i) - y_i)^2; in the infinite-width limit the outputs on the
training inputs follow u_{k+1} = u_k - eta Theta (u_k - y), i.e. u(t) = y + exp(-eta Theta t)(u_0 - y)
in the gradient-flow limit (review eq. 12), decaying at the rate lambda_min(Theta).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .maps import ORDER_2D, activation, gauss_hermite

__all__ = ["kernel_moments", "nngp_ntk", "init_params", "forward", "jacobian", "empirical_ntk",
           "train_gd", "kernel_prediction", "GDTrace"]


def _arccos_moments(k11, k22, k12, alpha):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for phi = alpha s + (1 - alpha) relu(s)."""
    n = np.sqrt(k11 * k22)
    c = np.clip(k12 / n, -1.0, 1.0)
    theta = np.arccos(c)
    k1 = n * (np.sqrt(np.maximum(1.0 - c * c, 0.0)) + (np.pi - theta) * c) / (2.0 * np.pi)
    k0 = (np.pi - theta) / (2.0 * np.pi)
    return alpha * k12 + (1.0 - alpha) ** 2 * k1, alpha + (1.0 - alpha) ** 2 * k0


def _arcsin_moments(k11, k22, k12):
    """erf: E[erf(u) erf(v)] and E[erf'(u) erf'(v)] (Williams 1997)."""
    d = (1.0 + 2.0 * k11) * (1.0 + 2.0 * k22)
    e = (2.0 / np.pi) * np.arcsin(np.clip(2.0 * k12 / np.sqrt(d), -1.0, 1.0))
    ed = (4.0 / np.pi) / np.sqrt(d - 4.0 * k12 * k12)
    return e, ed


def kernel_moments(k11, k22, k12, phi, order: int = ORDER_2D):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for (u, v) centred Gaussian with variances
    k11, k22 and covariance k12 (arrays broadcast).  Closed forms for the arc-cosine and
    arcsine families, tensor Gauss–Hermite of ``order`` nodes per axis otherwise."""
    a = activation(phi)
    k11, k22, k12 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (k11, k22, k12)))
    if a.kernel == "arccos":
        return _arccos_moments(k11, k22, k12, a.alpha)
    if a.kernel == "arcsin":
        return _arcsin_moments(k11, k22, k12)
    z, w = gauss_hermite(order)
    s1, s2 = np.sqrt(k11), np.sqrt(k22)
    c = np.clip(k12 / (s1 * s2), -1.0, 1.0)
    sc = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    e = np.empty(k11.shape)
    ed = np.empty(k11.shape)
    fe, fed = e.reshape(-1), ed.reshape(-1)
    for i, (a1, a2, cc, ss) in enumerate(zip(s1.ravel(), s2.ravel(), c.ravel(), sc.ravel())):
        u = a1 * z                                   # (n,)  along z1
        v = a2 * (cc * z[:, None] + ss * z[None, :])  # (n, n)
        pu, dpu = a.phi(u), a.dphi(u)
        fe[i] = (w * pu) @ (a.phi(v) @ w)
        fed[i] = (w * dpu) @ (a.dphi(v) @ w)
    return e, ed


def _input_gram(X, sw2, sb2):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"inputs must be an (n, d) array, got shape {X.shape}")
    return sw2 * (X @ X.T) / X.shape[1] + sb2


def nngp_ntk(X, depth: int, sw2: float, sb2: float, phi, order: int = ORDER_2D):
    """The infinite-width NNGP kernel K^depth and NTK Theta^depth (NTK parameterisation) of a
    ``depth``-layer network on the rows of ``X`` (n, d).  Returns (K, Theta), each (n, n)."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    K = _input_gram(X, sw2, sb2)
    Theta = K.copy()
    for _ in range(1, depth):
        d = np.diag(K)
        iu = np.triu_indices(K.shape[0])
        e, ed = kernel_moments(d[iu[0]], d[iu[1]], K[iu], phi, order)
        E = np.empty_like(K)
        Ed = np.empty_like(K)
        E[iu], Ed[iu] = e, ed
        E.T[iu], Ed.T[iu] = e, ed
        K_next = sw2 * E + sb2
        Theta = K_next + sw2 * Ed * Theta
        K = K_next
    return K, Theta


# ---------------------------------------------------------------------------------------------
# finite networks in the NTK parameterisation
# ---------------------------------------------------------------------------------------------
def init_params(d: int, width: int, depth: int, seed=0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Standard-normal (W_l, b_l), l = 0..depth-1: W_0 is (width, d), hidden W_l (width, width),
    the last (1, width) (for depth = 1: (1, d))."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sizes = [d] + [width] * (depth - 1) + [1]
    return [(rng.standard_normal((sizes[l + 1], sizes[l])), rng.standard_normal(sizes[l + 1]))
            for l in range(depth)]


def forward(params, X, sw2, sb2, phi):
    """Pre-activations h_1..h_depth (each (n, n_l)) and the layer inputs a_0 = X, a_l = phi(h_l)."""
    a = activation(phi)
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    A = [np.asarray(X, dtype=float)]
    H = []
    for l, (W, b) in enumerate(params):
        h = (sw / math.sqrt(W.shape[1])) * (A[-1] @ W.T) + sb * b
        H.append(h)
        if l < len(params) - 1:
            A.append(a.phi(h))
    return H, A


def _backward(params, H, sw2, phi):
    """delta_{l+1} = df/dh_{l+1} for l = 0..depth-1, each (n, n_{l+1}) (f = h_depth, scalar)."""
    a = activation(phi)
    sw = math.sqrt(sw2)
    n = H[-1].shape[0]
    deltas = [np.ones((n, 1))]
    for l in range(len(params) - 1, 0, -1):
        W = params[l][0]
        deltas.append((sw / math.sqrt(W.shape[1])) * (deltas[-1] @ W) * a.dphi(H[l - 1]))
    return deltas[::-1]


def jacobian(params, X, sw2, sb2, phi) -> np.ndarray:
    """The exact Jacobian J_i = df(x_i)/dtheta, shape (n, P), parameters in the order
    W_0 (row-major), b_0, W_1, b_1, ...; one reverse pass per layer for all inputs."""
    H, A = forward(params, X, sw2, sb2, phi)
    D = _backward(params, H, sw2, phi)
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    cols = []
    for l, (W, _) in enumerate(params):
        gW = (sw / math.sqrt(W.shape[1])) * D[l][:, :, None] * A[l][:, None, :]
        cols += [gW.reshape(gW.shape[0], -1), sb * D[l]]
    return np.concatenate(cols, axis=1)


def empirical_ntk(params, X, sw2, sb2, phi) -> np.ndarray:
    """J J^T of :func:`jacobian`, layer by layer (O(n^2 width) memory instead of n P)."""
    H, A = forward(params, X, sw2, sb2, phi)
    D = _backward(params, H, sw2, phi)
    Theta = np.zeros((A[0].shape[0],) * 2)
    for l, (W, _) in enumerate(params):
        Theta += (D[l] @ D[l].T) * (sw2 * (A[l] @ A[l].T) / W.shape[1] + sb2)
    return Theta


@dataclass(frozen=True)
class GDTrace:
    """Outputs on the training inputs u_k (steps+1, n) and the loss after each step."""

    u: np.ndarray
    loss: np.ndarray


def train_gd(params, X, y, sw2, sb2, phi, eta: float, steps: int) -> GDTrace:
    """Full-batch gradient descent theta <- theta - eta dL/dtheta on L = 1/2 |f(X) - y|^2 (all
    layers trained); ``params`` is updated in place.  Returns the output trajectory."""
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    y = np.asarray(y, dtype=float)
    us = np.empty((steps + 1, y.size))
    for k in range(steps + 1):
        H, A = forward(params, X, sw2, sb2, phi)
        u = H[-1][:, 0]
        us[k] = u
        if k == steps:
            break
        r = u - y
        D = _backward(params, H, sw2, phi)
        grads = []
        for l, (W, _) in enumerate(params):
            Dr = D[l] * r[:, None]
            grads.append(((sw / math.sqrt(W.shape[1])) * (Dr.T @ A[l]), sb * Dr.sum(axis=0)))
        for (W, b), (gW, gb) in zip(params, grads):
            W -= eta * gW
            b -= eta * gb
    loss = 0.5 * ((us - y) ** 2).sum(axis=1)
    return GDTrace(us, loss)


def kernel_prediction(Theta, u0, y, eta: float, steps: int, continuous: bool = False) -> np.ndarray:
    """The linearised (kernel) dynamics on the training inputs, shape (steps+1, n):
    discrete u_k = y + (I - eta Theta)^k (u_0 - y), or with ``continuous`` the gradient flow
    u(t) = y + exp(-eta Theta t)(u_0 - y) at t = k (review eq. 12)."""
    lam, V = np.linalg.eigh(Theta)
    r0 = V.T @ (np.asarray(u0, float) - np.asarray(y, float))
    k = np.arange(steps + 1)[:, None]
    g = np.exp(-eta * lam[None, :] * k) if continuous else (1.0 - eta * lam[None, :]) ** k
    return np.asarray(y, float)[None, :] + (g * r0[None, :]) @ V.T
