"""Mean-field signal propagation through wide random fully-connected networks.

Review (Liu & Theodorou) §3.1–3.2; Poole et al. 2016; Schoenholz et al. 2017.
A layer h_{l+1} = W_l phi(h_l) + b_l with W_ij ~ N(0, sigma_w^2/N), b_i ~ N(0, sigma_b^2)
(review eq. 1) carries, in the limit of infinite width, the deterministic statistics

* length map (review eq. 3)
      q_{l+1} = F(q_l) = sigma_w^2 E[phi(sqrt(q_l) z)^2] + sigma_b^2,     z ~ N(0, 1);
* correlation map (review eqs. 4–6), for two inputs of equal length q,
      c_{l+1} = C(c_l; q_l) = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / F(q_l),
  (u1, u2) centred Gaussian with variances q_l and correlation c_l.  At q = q* the
  denominator is q*, and c = 1 is always a fixed point.

Linearising at the fixed point (review eqs. 7–10):

* chi_1  = sigma_w^2 E[phi'(sqrt(q*) z)^2]                   (slope of C at c = 1),
* chi_c  = sigma_w^2 E[phi'(u1) phi'(u2)] at (q*, c*)          (slope of C at c*, Price's theorem),
* chi_q  = F'(q*) = chi_1 + sigma_w^2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)]   (Stein's lemma),
* depth scales xi_q = -1/log chi_q and xi_c = -1/log chi_c (Schoenholz et al. 2017, eqs. 5 & 9),
  so |q_l - q*| ~ exp(-l/xi_q) and |c_l - c*| ~ exp(-l/xi_c).

The order-to-chaos transition (critical line) is chi_1 = 1: for chi_1 < 1 the fixed point
c* = 1 is stable (ordered phase), for chi_1 > 1 it is unstable and a c* < 1 attracts
(chaotic phase).  At criticality xi_c diverges.

Quadrature
----------
One-dimensional expectations E[f(sqrt(q) z)] (the length map, chi_1, chi_q, hence q* and the
critical line) use, by default (``order=None``), composite Gauss–Legendre panels adapted to
q (:func:`gauss_panels`): in s = sqrt(q) z the breakpoints are 0, +-h, +-2h, +-4h, ...
(h = min(1, sqrt(q))/2, 20 nodes per panel) up to |z| = 9.5, where the Gaussian mass left
out is 2e-21.  The activations' singularities sit at a fixed distance from the real s axis
(tanh: poles at s = i pi/2, sigmoid: i pi, arctan: i) and their kinks at s = 0 (elu), so
panels of width ~1 near 0 and geometrically wider ones outside (where phi is saturated or
linear) resolve every q with 240–640 nodes: relative errors <= 1e-15 for E[phi^2] and
E[phi'^2] of tanh, sigmoid, arctan and elu for 1e-4 <= q <= 1e6 against adaptive quadrature.
A Gauss–Hermite rule, by contrast, converges at a rate that degrades like sqrt(q) (errors of
E[tanh^2] / E[sech^4] with 201 nodes: 3e-12 / 2e-10 at q = 2, 1e-5 / 2e-4 at q = 10), and
only algebraically for elu.  Passing an integer ``order`` selects the Gauss–Hermite rule of
that order (``gaussian_expectation(..., order=201)``).

Two-dimensional expectations are the tensor Gauss–Hermite product with u1 = sqrt(q) z1,
u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2) (``numpy.polynomial.hermite_e.hermegauss``),
``ORDER_2D = 101`` per axis (10201 nodes; the tensor rule costs order^2).  The fixed points
of the usual phase diagrams (sigma_w^2 <= 4, sigma_b^2 <= 1, bounded activations) have
q* <~ 4, where the rule is accurate to ~1e-7 or better.  At larger q (sigmoid's chaotic
phase, q* ~ 46 near its critical line sigma_w^2 ~ 103) c* and chi_c inherit the Gauss–Hermite
error (pass a larger ``order``, up to ~300: numpy's hermegauss overflows beyond); the
correlation map normalises by the 1-D Gauss–Hermite rule of the same order so that C(1) = 1
to round-off.  (Before the panel rule, the 201-node 1-D rule put sigmoid's critical sigma_w^2
at sigma_b^2 = 0.05 at 102.713 against 103.128 from adaptive quadrature, 0.4 % low; the
panel rule agrees with adaptive quadrature to 1e-9.)  Closed forms replace quadrature where they exist:

* relu, leaky relu (max(alpha s, s), alpha = 0.1) and linear, all of the form
  phi(s) = alpha s + (1 - alpha) relu(s): the degree-1 arc-cosine kernel (Cho & Saul 2009)
      E[relu(u1) relu(u2)] = q/(2 pi) (sin theta + (pi - theta) cos theta),  theta = arccos c,
  E[phi(u1) phi(u2)] = q (alpha c + (1 - alpha)^2 k1(c)),
  E[phi'(u1) phi'(u2)] = (1 + alpha^2)(pi - theta)/(2 pi) + alpha theta/pi;
* erf: the arcsine kernel (Williams 1997)
      E[erf(u1) erf(u2)] = (2/pi) arcsin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22))),
      E[erf'(u1) erf'(u2)] = (4/pi) / sqrt((1 + 2 S11)(1 + 2 S22) - 4 S12^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.optimize import brentq
from scipy.special import erf as _erf
from scipy.special import expit as _expit

ORDER_1D = None  # 1-D default: Gauss–Legendre panels adapted to q (an int: Gauss–Hermite)
PANEL_NODES = 20
PANEL_Z_MAX = 9.5
ORDER_2D = 101
LEAK = 0.1  # leaky relu: max(0.1 s, s)

_SQRT_PI = math.sqrt(math.pi)
_TINY_Q = 1e-200  # q -> 0+ limit of the trivial fixed point
_G_NOISE = 1e-13  # |C(c) - c| below this is round-off


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """An activation phi with phi' and phi'' (vectorised numpy callables).

    ``alpha`` is set for the piecewise-linear family phi = alpha s + (1 - alpha) relu(s)
    (relu: 0, leaky relu: 0.1, linear: 1), for which the arc-cosine closed forms are used;
    ``kernel`` names the closed form ("arccos" or "arcsin"), or None for Gauss–Hermite.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    d2phi: Callable[[np.ndarray], np.ndarray]
    kernel: str | None = None
    alpha: float = field(default=0.0)


def _tanh_d(s):
    t = np.tanh(s)
    return 1.0 - t * t


def _tanh_dd(s):
    t = np.tanh(s)
    return -2.0 * t * (1.0 - t * t)


def _erf_d(s):
    return (2.0 / _SQRT_PI) * np.exp(-s * s)


def _erf_dd(s):
    return (-4.0 / _SQRT_PI) * s * np.exp(-s * s)


def _sigmoid_d(s):
    g = _expit(s)
    return g * (1.0 - g)


def _sigmoid_dd(s):
    g = _expit(s)
    return g * (1.0 - g) * (1.0 - 2.0 * g)


def _elu(s):
    return np.where(s > 0.0, s, np.expm1(np.minimum(s, 0.0)))


def _elu_d(s):
    return np.where(s > 0.0, 1.0, np.exp(np.minimum(s, 0.0)))


def _elu_dd(s):
    return np.where(s > 0.0, 0.0, np.exp(np.minimum(s, 0.0)))


def _piecewise_linear(alpha: float, name: str) -> Activation:
    return Activation(
        name=name,
        phi=lambda s: np.where(s > 0.0, s, alpha * s),
        dphi=lambda s: np.where(s > 0.0, 1.0, alpha) + 0.0 * s,
        d2phi=lambda s: 0.0 * s,
        kernel="arccos",
        alpha=alpha,
    )


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", np.tanh, _tanh_d, _tanh_dd),
    "erf": Activation("erf", _erf, _erf_d, _erf_dd, kernel="arcsin"),
    "sigmoid": Activation("sigmoid", _expit, _sigmoid_d, _sigmoid_dd),
    "arctan": Activation(
        "arctan", np.arctan, lambda s: 1.0 / (1.0 + s * s), lambda s: -2.0 * s / (1.0 + s * s) ** 2
    ),
    "elu": Activation("elu", _elu, _elu_d, _elu_dd),
    "relu": _piecewise_linear(0.0, "relu"),
    "leaky_relu": _piecewise_linear(LEAK, "leaky_relu"),
    "linear": _piecewise_linear(1.0, "linear"),
}
ACTIVATIONS["identity"] = ACTIVATIONS["linear"]


def activation(phi: str | Activation) -> Activation:
    """Look an activation up by name ("tanh", "relu", "erf", "sigmoid", "linear", "elu",
    "leaky_relu", "arctan"); an :class:`Activation` is returned unchanged."""
    if isinstance(phi, Activation):
        return phi
    try:
        return ACTIVATIONS[str(phi).lower()]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {phi!r}; known: {known}") from None


# ---------------------------------------------------------------------------------------------
# Gaussian expectations
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def gauss_hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``order``-point rule with E[f(z)] ~ sum_i w_i f(z_i), z ~ N(0,1)."""
    z, w = hermegauss(int(order))
    w = w / math.sqrt(2.0 * math.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


@lru_cache(maxsize=1)
def _legendre():
    x, w = leggauss(PANEL_NODES)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gauss_panels(q: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with E[f(sqrt(q) z)] ~ sum_i w_i f(sqrt(q) z_i), z ~ N(0, 1):
    composite Gauss–Legendre (``PANEL_NODES`` per panel) on |z| <= ``PANEL_Z_MAX`` with
    breakpoints s = sqrt(q) z = 0, +-h, +-2h, +-4h, ... (h = min(1, sqrt(q))/2), i.e. panels of
    width ~1 in s where the activation varies and geometrically wider ones where it is
    saturated (or linear) and only the Gaussian varies.  A breakpoint at s = 0 makes kinks
    there (elu, relu) harmless."""
    r = math.sqrt(float(q))
    s_max = PANEL_Z_MAX * r
    h = 0.5 * min(1.0, r)
    edges = [0.0, min(h, s_max)]
    while edges[-1] < s_max:
        edges.append(min(2.0 * edges[-1], s_max))
    e = np.asarray(edges) / r
    a, b = e[:-1, None], e[1:, None]
    x, w = _legendre()
    z = (0.5 * (b - a) * x + 0.5 * (a + b)).ravel()
    wz = (0.5 * (b - a) * w).ravel()
    z = np.concatenate([-z[::-1], z])
    wz = np.concatenate([wz[::-1], wz]) * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return z, wz


def gaussian_expectation(f: Callable, q, order: int | None = ORDER_1D) -> np.ndarray:
    """E[f(sqrt(q) z)], z ~ N(0, 1); broadcasts over array ``q``.  ``order=None``: the
    q-adapted Gauss–Legendre panels of :func:`gauss_panels`; an int: Gauss–Hermite of that
    order."""
    q = np.asarray(q, dtype=float)
    if order is not None:
        z, w = gauss_hermite(order)
        return f(np.sqrt(q)[..., None] * z) @ w
    out = np.empty(q.shape)
    flat = out.reshape(-1)
    for i, qi in enumerate(q.reshape(-1)):
        if qi > 0.0:
            z, w = gauss_panels(qi)
            flat[i] = f(math.sqrt(qi) * z) @ w
        else:  # the point mass at 0
            flat[i] = float(f(np.zeros(1))[0]) if qi == 0.0 else math.nan
    return out if q.ndim else out[()]


def bivariate_expectation(f: Callable, g: Callable, q, c, order: int = ORDER_2D) -> np.ndarray:
    """E[f(u1) g(u2)] with u1 = sqrt(q) z1, u2 = sqrt(q)(c z1 + sqrt(1 - c^2) z2) (tensor
    Gauss–Hermite); broadcasts over arrays ``q`` and ``c``."""
    z, w = gauss_hermite(order)
    q, c = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(c, dtype=float))
    sq = np.sqrt(q)[..., None, None]
    cc = np.clip(c, -1.0, 1.0)[..., None, None]
    sc = np.sqrt(np.maximum(1.0 - cc * cc, 0.0))
    u1 = sq * z[:, None]
    u2 = sq * (cc * z[:, None] + sc * z[None, :])
    vals = f(u1 + 0.0 * u2) * g(u2)  # (…, n, n)
    return np.einsum("...ij,i,j->...", vals, w, w)


def _k1_arccos(c):
    """Normalised degree-1 arc-cosine kernel E[relu(u1) relu(u2)]/q."""
    c = np.clip(c, -1.0, 1.0)
    theta = np.arccos(c)
    return (np.sqrt(np.maximum(1.0 - c * c, 0.0)) + (np.pi - theta) * c) / (2.0 * np.pi)


def moment_phi2(q, phi, order: int | None = ORDER_1D):
    """E[phi(sqrt(q) z)^2]."""
    a = activation(phi)
    q = np.asarray(q, dtype=float)
    if a.kernel == "arccos":
        return q * (1.0 + a.alpha**2) / 2.0
    if a.kernel == "arcsin":
        return (2.0 / np.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q))
    return gaussian_expectation(lambda s: a.phi(s) ** 2, q, order)


def moment_dphi2(q, phi, order: int | None = ORDER_1D):
    """E[phi'(sqrt(q) z)^2] (for the piecewise-linear family the value at q > 0, which is
    also the q -> 0+ limit)."""
    a = activation(phi)
    q = np.asarray(q, dtype=float)
    if a.kernel == "arccos":
        return np.full_like(q, (1.0 + a.alpha**2) / 2.0)
    if a.kernel == "arcsin":
        return (4.0 / np.pi) / np.sqrt(1.0 + 4.0 * q)
    return gaussian_expectation(lambda s: a.dphi(s) ** 2, q, order)


def moment_dq(q, phi, order: int | None = ORDER_1D):
    """d/dq E[phi(sqrt(q) z)^2] = E[phi'^2 + phi phi''] (Stein's lemma; the delta in phi''
    at a kink does not contribute because phi(0) = 0 for every kinked activation here)."""
    a = activation(phi)
    q = np.asarray(q, dtype=float)
    if a.kernel == "arccos":
        return np.full_like(q, (1.0 + a.alpha**2) / 2.0)
    if a.kernel == "arcsin":
        return (4.0 / np.pi) / ((1.0 + 2.0 * q) * np.sqrt(1.0 + 4.0 * q))
    return gaussian_expectation(lambda s: a.dphi(s) ** 2 + a.phi(s) * a.d2phi(s), q, order)


def moment_phiphi(q, c, phi, order: int = ORDER_2D):
    """E[phi(u1) phi(u2)] for variances q and correlation c."""
    a = activation(phi)
    q = np.asarray(q, dtype=float)
    c = np.asarray(c, dtype=float)
    if a.kernel == "arccos":
        return q * (a.alpha * c + (1.0 - a.alpha) ** 2 * _k1_arccos(c))
    if a.kernel == "arcsin":
        return (2.0 / np.pi) * np.arcsin(np.clip(2.0 * q * c / (1.0 + 2.0 * q), -1.0, 1.0))
    return bivariate_expectation(a.phi, a.phi, q, c, order)


def moment_dphidphi(q, c, phi, order: int = ORDER_2D):
    """E[phi'(u1) phi'(u2)] for variances q and correlation c."""
    a = activation(phi)
    q = np.asarray(q, dtype=float)
    c = np.asarray(c, dtype=float)
    if a.kernel == "arccos":
        theta = np.arccos(np.clip(c, -1.0, 1.0))
        return (1.0 + a.alpha**2) * (np.pi - theta) / (2.0 * np.pi) + a.alpha * theta / np.pi + 0.0 * q
    if a.kernel == "arcsin":
        return (4.0 / np.pi) / np.sqrt((1.0 + 2.0 * q) ** 2 - 4.0 * q * q * c * c)
    return bivariate_expectation(a.dphi, a.dphi, q, c, order)


# ---------------------------------------------------------------------------------------------
# the maps
# ---------------------------------------------------------------------------------------------
def length_map(q, sw2, sb2, phi, order: int | None = ORDER_1D):
    """q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) z)^2] + sigma_b^2   (review eq. 3)."""
    return sw2 * moment_phi2(q, phi, order) + sb2


def correlation_map(c, q, sw2, sb2, phi, order: int = ORDER_2D):
    """c_{l+1} = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q_{l+1}   (review eqs. 4–6).

    (u1, u2) have variance ``q`` and correlation ``c``; q_{l+1} = length_map(q) (= q* at the
    fixed point, which is the usual form of the map).  The normaliser uses the 1-D rule of
    the same ``order`` as the tensor rule, so that C(1) = 1 holds to round-off for any q.
    """
    q_next = length_map(q, sw2, sb2, phi, order)
    return (sw2 * moment_phiphi(q, c, phi, order) + sb2) / q_next


def propagate(q_in, c_in, sw2, sb2, phi, depth: int, order: int = ORDER_2D):
    """Iterate the maps through ``depth`` layers for two inputs of squared length q_in (per
    coordinate) and correlation c_in, with the convention h_1 = W_0 x + b_0 (the input is not
    passed through phi).  Returns (q, c), each of shape (depth,), for layers 1..depth."""
    q = np.empty(depth)
    c = np.empty(depth)
    q[0] = sw2 * q_in + sb2
    c[0] = (sw2 * q_in * c_in + sb2) / q[0]
    for l in range(1, depth):
        q[l] = length_map(q[l - 1], sw2, sb2, phi)
        c[l] = correlation_map(c[l - 1], q[l - 1], sw2, sb2, phi, order)
    return q, c


# ---------------------------------------------------------------------------------------------
# fixed points
# ---------------------------------------------------------------------------------------------
def fixed_point_q(sw2, sb2, phi, q0: float = 1.0, order: int | None = ORDER_1D, q_max: float = 1e12):
    """The fixed point q* = F(q*) of the length map that attracts q_0 = ``q0``.

    F is increasing in q, so its iterates move monotonically to the nearest root of
    G(q) = F(q) - q in the direction of sign G(q0).  The root is bracketed by geometric steps
    (factor 4) and polished with brentq (relative tolerance 4 eps).  Returns 0.0 for the
    trivial fixed point (sigma_b = 0, subcritical, phi(0) = 0) and ``inf`` when q grows
    without bound (unbounded phi in the chaotic regime).
    """
    G = lambda q: float(length_map(q, sw2, sb2, phi, order)) - q
    g0 = G(q0)
    if g0 == 0.0:
        return float(q0)
    if g0 > 0.0:
        lo = q0
        while True:
            hi = 4.0 * lo
            if hi > q_max:
                return math.inf
            if G(hi) <= 0.0:
                break
            lo = hi
    else:
        hi = q0
        while True:
            lo = hi / 4.0
            if lo < _TINY_Q:
                return 0.0
            if G(lo) >= 0.0:
                break
            hi = lo
    return brentq(G, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def chi_1(sw2, sb2, phi, q_star=None, order: int | None = ORDER_1D):
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]   (review eq. 8 at c* = 1)."""
    if q_star is None:
        q_star = fixed_point_q(sw2, sb2, phi, order=order)
    if math.isinf(q_star):  # unbounded phi in the chaotic regime: the q -> inf limit
        a = activation(phi)
        big = np.array([-1e300, 1e300])
        return float(sw2 * np.mean(a.dphi(big) ** 2))
    return float(sw2 * moment_dphi2(max(q_star, _TINY_Q), phi, order))


def chi_q(sw2, sb2, phi, q_star=None, order: int | None = ORDER_1D):
    """chi_q = F'(q*) = chi_1 + sigma_w^2 E[phi'' phi]  (review eq. 7; Schoenholz et al. eq. 5)."""
    if q_star is None:
        q_star = fixed_point_q(sw2, sb2, phi, order=order)
    if math.isinf(q_star):
        return math.inf
    return float(sw2 * moment_dq(max(q_star, _TINY_Q), phi, order))


def fixed_point_c(sw2, sb2, phi, q_star=None, order: int = ORDER_2D):
    """The stable fixed point c* of the correlation map at q = q*.

    c = 1 is always a fixed point; it is the stable one iff chi_1 <= 1 (ordered phase).
    Otherwise (chaotic phase) C(c) < c just below 1, C(-1) >= -1, and C is increasing, so the
    correlations of nearby inputs are attracted to the largest root of C(c) - c below 1: it is
    bracketed by a scan of [-1, 1) (denser towards 1; values of |C(c) - c| below 1e-13, whose
    sign is round-off, are skipped) and polished by brentq.
    """
    if q_star is None:
        q_star = fixed_point_q(sw2, sb2, phi)
    if math.isinf(q_star) or q_star <= 0.0:
        return 1.0
    if chi_1(sw2, sb2, phi, q_star) <= 1.0:
        return 1.0
    G = lambda c: correlation_map(c, q_star, sw2, sb2, phi, order) - c
    c_grid = np.concatenate([np.linspace(-1.0, 0.9, 20), 1.0 - np.geomspace(0.1, 1e-12, 23)[1:]])
    g = np.asarray(G(c_grid), dtype=float)
    reliable = np.abs(g) > _G_NOISE  # signs of smaller values are round-off
    idx = np.nonzero(reliable)[0][::-1]  # reliable points, from the top down
    k_neg = next((k for k in idx if g[k] < 0.0), None)
    if k_neg is None:  # chi_1 - 1 below resolution: c* indistinguishable from 1
        return 1.0
    k_pos = next((k for k in idx if k < k_neg and g[k] > 0.0), None)
    if k_pos is None:
        return -1.0
    # the crossing lies between the positive point and the lowest negative point above it
    k_hi = min(k for k in idx if k_pos < k <= k_neg)
    return brentq(lambda c: float(G(c)), c_grid[k_pos], c_grid[k_hi], xtol=1e-15,
                  rtol=4 * np.finfo(float).eps)


def chi_c(sw2, sb2, phi, q_star=None, c_star=None, order: int = ORDER_2D):
    """chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at (q*, c*) = dC/dc at c*   (review eq. 8)."""
    if q_star is None:
        q_star = fixed_point_q(sw2, sb2, phi)
    if c_star is None:
        c_star = fixed_point_c(sw2, sb2, phi, q_star, order)
    if c_star == 1.0:
        return chi_1(sw2, sb2, phi, q_star)
    return float(sw2 * moment_dphidphi(q_star, c_star, phi, order))


def depth_scale(chi) -> float:
    """xi = -1/log|chi| (review eqs. 9–10); inf at or beyond |chi| = 1."""
    chi = abs(float(chi))
    if not chi < 1.0:
        return math.inf
    if chi == 0.0:
        return 0.0
    return -1.0 / math.log(chi)


def xi_q(sw2, sb2, phi, q_star=None):
    """Depth scale of the length map, xi_q^{-1} = -log(chi_1 + sigma_w^2 E[phi'' phi])
    (Schoenholz et al. 2017 eq. 5, i.e. -log F'(q*))."""
    return depth_scale(chi_q(sw2, sb2, phi, q_star))


def xi_c(sw2, sb2, phi, q_star=None, c_star=None):
    """Depth scale of the correlation map, xi_c^{-1} = -log chi_c (Schoenholz et al. 2017
    eq. 9), chi_c evaluated at the stable c*."""
    return depth_scale(chi_c(sw2, sb2, phi, q_star, c_star))


def trainable_depth(sw2, sb2, phi, factor: float = 6.0):
    """Maximal trainable depth ~ factor * xi_c (Schoenholz et al. 2017: about 6 xi_c; the
    review's Fig. 1b finds ~4.5 xi_c on MNIST)."""
    return factor * xi_c(sw2, sb2, phi)


# ---------------------------------------------------------------------------------------------
# critical line and phase diagram
# ---------------------------------------------------------------------------------------------
def critical_sw2(sb2, phi, bracket=(1e-3, 1e4)):
    """The critical sigma_w^2 of the order-to-chaos transition, chi_1(sigma_w^2) = 1.

    Root of g(sigma_w^2) = chi_1(sigma_w^2, q*(sigma_w^2)) - 1 by scipy.optimize.brentq
    (bracket expanded geometrically from ``bracket``).

    For sigma_b^2 = 0 and phi(0) = 0 the transition is the loss of stability of the trivial
    fixed point q* = 0; there g is linear on the ordered side but only quadratic (tangential)
    on the chaotic side, so the root is sought on the trivial branch, g = sigma_w^2
    E[phi'(sqrt(q) z)^2]|_{q -> 0+} - 1, which crosses transversally.
    """
    a = activation(phi)
    trivial = sb2 == 0.0 and float(a.phi(np.array(0.0))) == 0.0
    if trivial:
        def g(sw2):
            return float(sw2 * moment_dphi2(_TINY_Q, a)) - 1.0
    else:
        def g(sw2):
            return chi_1(sw2, sb2, a) - 1.0
    lo, hi = bracket
    while g(lo) > 0.0:
        lo /= 4.0
        if lo < 1e-12:
            raise ValueError(f"no ordered phase found for {a.name} at sigma_b^2 = {sb2}")
    while g(hi) < 0.0:
        hi *= 4.0
        if hi > 1e12:
            raise ValueError(f"no chaotic phase found for {a.name} at sigma_b^2 = {sb2}")
    # shrink the bracket geometrically before polishing (g is cheap, brentq likes a tight one)
    for _ in range(12):
        mid = math.sqrt(lo * hi)
        if g(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    return brentq(g, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)


@dataclass(frozen=True)
class PhaseDiagram:
    """Mean-field phase diagram on a (sigma_w^2, sigma_b^2) grid; 2-D arrays are indexed
    [i_sw2, i_sb2]; ``critical_sw2`` is indexed by sigma_b^2."""

    activation: str
    sw2: np.ndarray
    sb2: np.ndarray
    q_star: np.ndarray
    c_star: np.ndarray
    chi_1: np.ndarray
    chi_c: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    critical_sw2: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in
                ("sw2", "sb2", "q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "critical_sw2")}


def phase_diagram(sw2_grid, sb2_grid, phi, progress: Callable[[int, int], None] | None = None) -> PhaseDiagram:
    """q*, c*, chi_1, chi_c, xi_q, xi_c over the grid, and the critical line sigma_w^2(sigma_b^2).

    ``progress(done, total)`` is called after each grid point if given.
    """
    a = activation(phi)
    sw2_grid = np.asarray(sw2_grid, dtype=float)
    sb2_grid = np.asarray(sb2_grid, dtype=float)
    shape = (sw2_grid.size, sb2_grid.size)
    out = {k: np.empty(shape) for k in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")}
    total = sw2_grid.size * sb2_grid.size
    done = 0
    for i, sw2 in enumerate(sw2_grid):
        for j, sb2 in enumerate(sb2_grid):
            qs = fixed_point_q(sw2, sb2, a)
            cs = fixed_point_c(sw2, sb2, a, qs)
            c1 = chi_1(sw2, sb2, a, qs)
            cc = chi_c(sw2, sb2, a, qs, cs)
            out["q_star"][i, j] = qs
            out["c_star"][i, j] = cs
            out["chi_1"][i, j] = c1
            out["chi_c"][i, j] = cc
            out["xi_q"][i, j] = depth_scale(chi_q(sw2, sb2, a, qs))
            out["xi_c"][i, j] = depth_scale(cc)
            done += 1
            if progress is not None:
                progress(done, total)
    crit = np.array([critical_sw2(sb2, a) for sb2 in sb2_grid])
    return PhaseDiagram(a.name, sw2_grid, sb2_grid, critical_sw2=crit, **out)
