"""Mean field for residual networks, including the network PDE's own discretisation
(review §3.1 extended to ResNets: Yang & Schoenholz 2017; the width-depth PDE of
:mod:`pdenet.network.pde`).

Two residual layers, each with fresh independent weights per layer (width N):

``resnet``  h_{l+1} = h_l + tau (W_l phi(h_l) + b_l),   W ~ N(0, sigma_w^2/N), b ~ N(0, sigma_b^2),
            with h_1 = W_0 x + b_0 as for the fully connected network (so h_l is centred);
``pde``     z_{l+1} = z_l + tau phi(a_l - B_l z_l),      B ~ N(0, sigma_w^2/N), a ~ N(0, sigma_b^2),
            z_0 = x: explicit Euler of the network PDE f_t = sigma(a - B_b f) with one layer per
            control interval (``[model] intervals = time.steps``), B = h b, whose random
            initialisation (``model.kernel.init = "random"``, ``model.bias.init = "random"``)
            has exactly these laws with sigma_w = kernel.scale and sigma_b = bias.scale.

Given the layer, the pre-activations of two inputs are, row by row, i.i.d. centred Gaussians
(exactly for the weights are independent of the layer's input): covariance
K = sigma_w^2 Q_l + sigma_b^2 for ``pde`` (pre-activation g = a - B z), where
Q_l^{ab} = z^a.z^b/N, and K = Q_l for ``resnet`` (phi acts on h itself).  With the per-unit means
m_l^a = (1/N) sum_i z_i^a and mu^a = E[phi(g^a)], the width -> infinity maps are

    resnet:  Q_{l+1} = Q_l + tau^2 (sigma_w^2 E[phi(u) phi(v)]_{K=Q_l} + sigma_b^2),      m = 0;
    pde:     Q_{l+1} = Q_l + tau (m_l mu^T + mu m_l^T) + tau^2 E[phi(g^a) phi(g^b)]_{K},
             m_{l+1} = m_l + tau mu,

(the cross term (1/N) sum_i z_i^a phi(g_i^b) -> m^a mu^b because g_i is independent of z_i
given the layer, up to the O(1/sqrt N) diagonal B_ii).  For odd phi (tanh, erf) mu = 0: the
``pde`` map is then Q_{l+1} = Q_l + tau^2 E[phi phi]; neither form has a finite fixed point
for q, which grows like l tau^2 (linear growth for bounded phi; geometric,
(1 + tau^2 sigma_w^2/2)^l, for relu), and the correlation c = Q^{ab}/sqrt(Q^{aa} Q^{bb})
moves towards its limit only algebraically in l: residual networks sit on the edge of chaos
for every sigma_w^2 (Yang & Schoenholz 2017).

Depth limit tau -> 0 at fixed T = L tau (fresh weights each step): the tau^2 terms sum to
T tau -> 0, so the maps converge at first order in tau to the ODE

    dQ/dt = m mu(K(Q))^T + mu m^T,   dm/dt = mu(K(Q)),

i.e. for odd phi to the identity (Q(T) = Q(0)): with independent weights per step the network
PDE's random initial flow is the identity map in the depth limit, and its finite-depth
statistics deviate from it by O(tau) (:func:`depth_limit`).  (With the weights shared over
K < L steps the limit is instead a random ODE, not covered by these maps.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .maps import activation, gaussian_expectation
from .ntk import kernel_moments

FORMS = ("resnet", "pde")


@dataclass(frozen=True)
class ResidualStats:
    """Layer statistics for two inputs, index 0 = the input (z_0 for ``pde``, h_1 for ``resnet``)
    up to ``depth``: Q (depth+1, 2, 2), m (depth+1, 2); q = mean diagonal, c = correlation."""

    Q: np.ndarray
    m: np.ndarray

    @property
    def q(self):
        return 0.5 * (self.Q[..., 0, 0] + self.Q[..., 1, 1])

    @property
    def c(self):
        return self.Q[..., 0, 1] / np.sqrt(self.Q[..., 0, 0] * self.Q[..., 1, 1])


def _mean_phi(a, k):
    if a.kernel == "arcsin" or a.name in ("tanh", "arctan"):
        return 0.0                                          # odd phi
    if a.kernel == "arccos":
        return (1.0 - a.alpha) * math.sqrt(k / (2.0 * math.pi))  # E[relu(sqrt(k) z)]
    return float(gaussian_expectation(a.phi, k))


def _pair_moments(K, a):
    """The 2x2 matrix E[phi(u_i) phi(u_j)] for (u_1, u_2) ~ N(0, K)."""
    e, _ = kernel_moments(np.array([K[0, 0], K[0, 0], K[1, 1]]), np.array([K[0, 0], K[1, 1], K[1, 1]]),
                          np.array([K[0, 0], K[0, 1], K[1, 1]]), a)
    return np.array([[e[0], e[1]], [e[1], e[2]]])


def step(Q, m, sw2, sb2, phi, tau, form="pde"):
    """One layer of the residual mean-field map: (Q_l, m_l) -> (Q_{l+1}, m_{l+1})."""
    a = activation(phi)
    Q = np.asarray(Q, dtype=float)
    m = np.asarray(m, dtype=float)
    if form == "resnet":
        inc = sw2 * _pair_moments(Q, a) + sb2
        return Q + tau * tau * inc, m
    if form != "pde":
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    K = sw2 * Q + sb2
    E = _pair_moments(K, a)
    mu = np.array([_mean_phi(a, K[0, 0]), _mean_phi(a, K[1, 1])])
    return Q + tau * (np.outer(m, mu) + np.outer(mu, m)) + tau * tau * E, m + tau * mu


def propagate(Q0, m0, sw2, sb2, phi, depth: int, tau: float = 1.0, form="pde") -> ResidualStats:
    """Iterate :func:`step` ``depth`` times from (Q0, m0) (the layer-0 statistics)."""
    Q = np.empty((depth + 1, 2, 2))
    m = np.empty((depth + 1, 2))
    Q[0], m[0] = Q0, (m0 if form == "pde" else 0.0)
    for l in range(depth):
        Q[l + 1], m[l + 1] = step(Q[l], m[l], sw2, sb2, phi, tau, form)
    return ResidualStats(Q, m)


def input_stats(X, form="pde", sw2=None, sb2=None):
    """(Q0, m0) of the inputs X (N, 2): for ``pde`` those of z_0 = X, for ``resnet`` the law of
    h_1 = W_0 x + b_0 (Q0 = sigma_w^2 X^T X / N + sigma_b^2, m0 = 0)."""
    N = X.shape[0]
    if form == "pde":
        return X.T @ X / N, X.mean(axis=0)
    return sw2 * (X.T @ X) / N + sb2, np.zeros(2)


def depth_limit(Q0, m0, sw2, sb2, phi, T: float, steps: int = 4000, form="pde") -> ResidualStats:
    """The tau -> 0 limit at fixed T = L tau: the ODE dQ/dt = m mu^T + mu m^T, dm/dt = mu
    (``pde``), or Q constant (``resnet``), integrated by classical RK4 with ``steps`` steps."""
    a = activation(phi)
    if form == "resnet":
        return ResidualStats(np.array([Q0, Q0], float), np.zeros((2, 2)))

    def rhs(Q, m):
        K = sw2 * Q + sb2
        mu = np.array([_mean_phi(a, K[0, 0]), _mean_phi(a, K[1, 1])])
        return np.outer(m, mu) + np.outer(mu, m), mu

    Q, m = np.asarray(Q0, float).copy(), np.asarray(m0, float).copy()
    h = T / steps
    for _ in range(steps):
        k1 = rhs(Q, m)
        k2 = rhs(Q + 0.5 * h * k1[0], m + 0.5 * h * k1[1])
        k3 = rhs(Q + 0.5 * h * k2[0], m + 0.5 * h * k2[1])
        k4 = rhs(Q + h * k3[0], m + h * k3[1])
        Q = Q + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        m = m + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return ResidualStats(np.array([Q0, Q]), np.array([m0, m]))


# ---------------------------------------------------------------------------------------------
# random residual networks
# ---------------------------------------------------------------------------------------------
def random_residual(X, sw2, sb2, phi, depth: int, tau: float = 1.0, form="pde", seed=0) -> ResidualStats:
    """One residual network with explicit weights on the two inputs (columns of X (N, 2));
    ``resnet`` starts with h_1 = W_0 x + b_0.  Returns the measured Q_l, m_l, l = 0..depth."""
    a = activation(phi)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    N = X.shape[0]
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    Z = np.asarray(X, float)
    if form == "resnet":
        Z = (sw / math.sqrt(N)) * (rng.standard_normal((N, N)) @ Z) + sb * rng.standard_normal(N)[:, None]
    Q = np.empty((depth + 1, 2, 2))
    m = np.empty((depth + 1, 2))
    Q[0], m[0] = Z.T @ Z / N, Z.mean(axis=0)
    for l in range(depth):
        B = (sw / math.sqrt(N)) * rng.standard_normal((N, N))
        b = sb * rng.standard_normal(N)[:, None]
        if form == "pde":
            Z = Z + tau * a.phi(b - B @ Z)
        else:
            Z = Z + tau * (B @ a.phi(Z) + b)
        Q[l + 1], m[l + 1] = Z.T @ Z / N, Z.mean(axis=0)
    return ResidualStats(Q, m)


def conditional_residual(X, sw2, sb2, phi, depth: int, tau: float = 1.0, form="pde", replicates=100,
                         seed=0) -> ResidualStats:
    """The same law as :func:`random_residual`, sampled in O(N) per layer and vectorised over
    ``replicates``: given the layer input, the rows of the pre-activation (``pde``: a - B z; the
    increment W phi(h) + b for ``resnet``) are i.i.d. centred Gaussians with the 2x2 covariance
    of the module docstring.  Returns Q (replicates, depth+1, 2, 2) and m."""
    a = activation(phi)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    N = X.shape[0]
    Z = np.broadcast_to(np.asarray(X, float), (replicates, N, 2)).copy()

    def gauss(C):                      # rows ~ N(0, C), C (R, 2, 2)
        l11 = np.sqrt(C[:, 0, 0])
        l21 = C[:, 1, 0] / l11
        l22 = np.sqrt(np.maximum(C[:, 1, 1] - l21 * l21, 0.0))
        z = rng.standard_normal((2, replicates, N))
        return np.stack([l11[:, None] * z[0], l21[:, None] * z[0] + l22[:, None] * z[1]], axis=-1)

    gram = lambda Y: np.einsum("rni,rnj->rij", Y, Y) / N
    if form == "resnet":
        Z = gauss(sw2 * gram(Z) + sb2)
    Q = np.empty((replicates, depth + 1, 2, 2))
    m = np.empty((replicates, depth + 1, 2))
    Q[:, 0], m[:, 0] = gram(Z), Z.mean(axis=1)
    for l in range(depth):
        if form == "pde":
            Z = Z + tau * a.phi(gauss(sw2 * gram(Z) + sb2))
        else:
            P = a.phi(Z)
            Z = Z + tau * gauss(sw2 * gram(P) + sb2)
        Q[:, l + 1], m[:, l + 1] = gram(Z), Z.mean(axis=1)
    return ResidualStats(Q, m)
