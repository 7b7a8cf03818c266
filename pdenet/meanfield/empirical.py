"""Wide random fully-connected networks, measured layer by layer (review §3.1).

A pair of inputs x^a, x^b in R^{N_0} is propagated through

    h_1 = W_0 x + b_0,    h_{l+1} = W_l phi(h_l) + b_l,
    W_l^{ij} ~ N(0, sigma_w^2 / N_l),   b_l^i ~ N(0, sigma_b^2)      (review eq. 1),

and at each layer the measured statistics are (review eq. 2 and the correlation of eq. 4–6)

    q_l^a = (1/N) sum_i (h_l^{a,i})^2,   q_l^b likewise,
    c_l   = (1/N) sum_i h_l^{a,i} h_l^{b,i} / sqrt(q_l^a q_l^b).

Two samplers:

* :func:`random_network` draws the weight matrices explicitly (seeded ``numpy.random.Generator``);
* :func:`conditional_network` samples the same law in O(N) per layer: given the previous
  activations X (N x 2), the rows of H = W X + b 1^T are i.i.d. N(0, K) with
  K = sigma_w^2 X^T X / N + sigma_b^2 1 1^T (a 2 x 2 matrix), because the rows of W and the
  entries of b are independent Gaussians.  This is exact in distribution (not a mean-field
  approximation), and is vectorised over independent replicates; it gives the
  finite-width sampling error of the measured q_l, c_l cheaply.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .maps import activation


@dataclass(frozen=True)
class Measured:
    """Per-layer measurements, shape (..., depth) for layers 1..depth (leading axes:
    replicates, if any)."""

    q_a: np.ndarray
    q_b: np.ndarray
    c: np.ndarray

    @property
    def q(self) -> np.ndarray:
        """Mean squared pre-activation, averaged over the two inputs."""
        return 0.5 * (self.q_a + self.q_b)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def correlated_inputs(q_in: float, c_in: float, dim: int, rng) -> np.ndarray:
    """Two inputs as the columns of a (dim, 2) array with x.x/dim = q_in exactly for both and
    correlation exactly c_in (random orthonormal directions by Gram–Schmidt)."""
    rng = _rng(rng)
    g = rng.standard_normal((dim, 2))
    e1 = g[:, 0] / np.linalg.norm(g[:, 0])
    v = g[:, 1] - (g[:, 1] @ e1) * e1
    e2 = v / np.linalg.norm(v)
    scale = math.sqrt(q_in * dim)
    s = math.sqrt(max(1.0 - c_in * c_in, 0.0))
    return scale * np.stack([e1, c_in * e1 + s * e2], axis=1)


def _measure(H: np.ndarray):
    """q^a, q^b, c of pre-activations H shaped (..., N, 2)."""
    n = H.shape[-2]
    qa = np.einsum("...i,...i->...", H[..., 0], H[..., 0]) / n
    qb = np.einsum("...i,...i->...", H[..., 1], H[..., 1]) / n
    qab = np.einsum("...i,...i->...", H[..., 0], H[..., 1]) / n
    return qa, qb, qab / np.sqrt(qa * qb)


def random_network(q_in, c_in, sw2, sb2, phi, depth: int, width: int = 2000, seed=0,
                   input_dim: int | None = None, dtype=np.float64) -> Measured:
    """Propagate two inputs (length q_in, correlation c_in) through one random network of
    ``depth`` layers of ``width`` units with explicit weights W ~ N(0, sigma_w^2/N_in),
    b ~ N(0, sigma_b^2); returns the measured q_l^a, q_l^b, c_l for layers 1..depth.

    ``dtype`` is the type in which the weights are drawn (float32 halves the cost of the
    Gaussian draws, which dominate); products are accumulated in float64.
    """
    a = activation(phi)
    rng = _rng(seed)
    n_in = width if input_dim is None else int(input_dim)
    X = correlated_inputs(q_in, c_in, n_in, rng)
    qa = np.empty(depth)
    qb = np.empty(depth)
    c = np.empty(depth)
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    for l in range(depth):
        W = rng.standard_normal((width, X.shape[0]), dtype=dtype)
        b = rng.standard_normal(width) * sb
        H = (sw / math.sqrt(X.shape[0])) * (W @ X.astype(dtype, copy=False)).astype(np.float64)
        H += b[:, None]
        qa[l], qb[l], c[l] = _measure(H)
        X = a.phi(H)
    return Measured(qa, qb, c)


def conditional_network(q_in, c_in, sw2, sb2, phi, depth: int, width: int = 2000,
                        replicates: int = 1, seed=0, input_dim: int | None = None) -> Measured:
    """Same law as :func:`random_network`, sampled in O(width) per layer through the exact
    conditional Gaussian law of the layer given the previous one; ``replicates`` independent
    networks at once.  Returns arrays shaped (replicates, depth)."""
    a = activation(phi)
    rng = _rng(seed)
    n_in = width if input_dim is None else int(input_dim)
    X0 = correlated_inputs(q_in, c_in, n_in, rng)
    K = np.broadcast_to(sw2 * (X0.T @ X0) / n_in + sb2, (replicates, 2, 2)).copy()
    out = np.empty((3, replicates, depth))
    for l in range(depth):
        l11 = np.sqrt(K[:, 0, 0])
        l21 = K[:, 1, 0] / l11
        l22 = np.sqrt(np.maximum(K[:, 1, 1] - l21 * l21, 0.0))
        Z = rng.standard_normal((2, replicates, width))
        H = np.empty((replicates, width, 2))
        H[..., 0] = l11[:, None] * Z[0]
        H[..., 1] = l21[:, None] * Z[0] + l22[:, None] * Z[1]
        out[0, :, l], out[1, :, l], out[2, :, l] = _measure(H)
        X = a.phi(H)
        K = sw2 * np.einsum("rni,rnj->rij", X, X) / width + sb2
    return Measured(out[0], out[1], out[2])


def sampling_error(measured: Measured) -> Measured:
    """Standard deviation over replicates (axis 0) of q^a, q^b and c: the finite-width
    sampling error of a single network's measurement."""
    return Measured(measured.q_a.std(axis=0, ddof=1), measured.q_b.std(axis=0, ddof=1),
                    measured.c.std(axis=0, ddof=1))
