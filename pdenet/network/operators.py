"""The integral operator (B_b f)(y) = int_Y b(y, z) f(z) dz in three representations.

All act on states f of shape (S, N) (S samples, N = cells, row-major over the
mesh) and are piecewise constant in time over K control intervals (index k).
Each returns the *raw* product without the quadrature weight h (cell volume);
the network multiplies by h inside its fused numba kernels, so
B_k f = h * raw(f, k).

* :class:`DenseOperator` b(y, z) sampled at cell centres: ``b`` (K, N, N).
* :class:`LowRankOperator` b = sum_r phi_r(y) psi_r(z): ``phi``, ``psi`` (K, R, N).
* :class:`ConvolutionOperator` b = kappa(y - z) on the uniform mesh: ``kappa``
  (K, 2n_1-1, ..., 2n_d-1) sampled at the offsets (i - j) h, applied by FFT
  (linear, not periodic, convolution).

``add_grad(grad, k, w, f, alpha, fresh)`` adds alpha * d<w, raw(f, k)>/d(params_k)
into the gradient buffers ``grad[name][k]``; ``fresh`` says the slice still holds
zeros, so it may be overwritten instead of accumulated (saves a pass over it).

All matrix products go through numpy's BLAS. (scipy ships its own OpenBLAS
copy; alternating calls into the two libraries makes their thread pools spin
against each other and halved the GEMM rate on 2 cores.)
"""
import numpy as np
from scipy import fft


def _accumulate_outer(G, w, f, alpha, fresh):
    """G += alpha * w^T f (G (N, M); w (S, N), f (S, M)); G = alpha w^T f when ``fresh``."""
    if fresh:
        np.matmul((alpha * w).T, f, out=G)
    else:
        G += np.matmul((alpha * w).T, f)


class DenseOperator:
    kind = "dense"
    names = ("b",)

    def __init__(self, b):
        self.b = np.ascontiguousarray(b, dtype=float)
        if self.b.ndim != 3 or self.b.shape[1] != self.b.shape[2]:
            raise ValueError(f"dense kernel must be (K, N, N), got {self.b.shape}")

    @property
    def params(self):
        return {"b": self.b}

    def raw(self, f, k):
        return f @ self.b[k].T

    def raw_T(self, w, k):
        return w @ self.b[k]

    def add_grad(self, grad, k, w, f, alpha, fresh=False):
        _accumulate_outer(grad["b"][k], w, f, alpha, fresh)

    def matrix(self, k, h):
        return h * self.b[k]

    def quadrature(self, h):
        """Quadrature weight per parameter entry (for Tikhonov terms): dy dz."""
        return {"b": h * h}


class LowRankOperator:
    kind = "lowrank"
    names = ("phi", "psi")

    def __init__(self, phi, psi):
        self.phi = np.ascontiguousarray(phi, dtype=float)
        self.psi = np.ascontiguousarray(psi, dtype=float)
        if self.phi.shape != self.psi.shape or self.phi.ndim != 3:
            raise ValueError(f"low-rank factors must both be (K, R, N), got {self.phi.shape}, {self.psi.shape}")

    @property
    def params(self):
        return {"phi": self.phi, "psi": self.psi}

    def raw(self, f, k):
        return (f @ self.psi[k].T) @ self.phi[k]

    def raw_T(self, w, k):
        return (w @ self.phi[k].T) @ self.psi[k]

    def add_grad(self, grad, k, w, f, alpha, fresh=False):
        c = f @ self.psi[k].T            # (S, R)
        d = w @ self.phi[k].T            # (S, R)
        grad["phi"][k] += alpha * (c.T @ w)
        grad["psi"][k] += alpha * (d.T @ f)

    def matrix(self, k, h):
        return h * (self.phi[k].T @ self.psi[k])

    def quadrature(self, h):
        return {"phi": h, "psi": h}


class ConvolutionOperator:
    kind = "convolution"
    names = ("kappa",)

    def __init__(self, kappa, cells):
        self.cells = tuple(int(c) for c in cells)
        self.kappa = np.ascontiguousarray(kappa, dtype=float)
        want = tuple(2 * n - 1 for n in self.cells)
        if self.kappa.ndim != len(self.cells) + 1 or self.kappa.shape[1:] != want:
            raise ValueError(f"convolution kernel must be (K, {', '.join(map(str, want))}), "
                             f"got {self.kappa.shape}")
        self.nd = len(self.cells)
        self.axes = tuple(range(1, self.nd + 1))
        self.fft_shape = tuple(fft.next_fast_len(2 * n - 1, real=True) for n in self.cells)
        self.window = tuple(slice(n - 1, 2 * n - 1) for n in self.cells)

    @property
    def params(self):
        return {"kappa": self.kappa}

    def _conv(self, f, kern):
        S = f.shape[0]
        fr = f.reshape((S,) + self.cells)
        spec = fft.rfftn(fr, s=self.fft_shape, axes=self.axes)
        spec *= fft.rfftn(kern, s=self.fft_shape)[None]
        full = fft.irfftn(spec, s=self.fft_shape, axes=self.axes)
        return np.ascontiguousarray(full[(slice(None),) + self.window]).reshape(S, -1)

    def raw(self, f, k):
        return self._conv(f, self.kappa[k])

    def raw_T(self, w, k):
        flipped = self.kappa[k][tuple(slice(None, None, -1) for _ in range(self.nd))]
        return self._conv(w, flipped)

    def add_grad(self, grad, k, w, f, alpha, fresh=False):
        S = f.shape[0]
        flip = (slice(None),) + tuple(slice(None, None, -1) for _ in range(self.nd))
        wr = w.reshape((S,) + self.cells)
        fr = f.reshape((S,) + self.cells)[flip]
        spec = (fft.rfftn(wr, s=self.fft_shape, axes=self.axes)
                * fft.rfftn(fr, s=self.fft_shape, axes=self.axes)).sum(axis=0)
        full = fft.irfftn(spec, s=self.fft_shape)
        grad["kappa"][k] += alpha * full[tuple(slice(0, 2 * n - 1) for n in self.cells)]

    def matrix(self, k, h):
        N = int(np.prod(self.cells))
        idx = np.indices(self.cells).reshape(self.nd, N)          # multi-index of each cell
        off = idx[:, :, None] - idx[:, None, :] + (np.array(self.cells) - 1)[:, None, None]
        return h * self.kappa[k][tuple(off)]

    def quadrature(self, h):
        return {"kappa": h}
