"""SGD's own diffusion for a two-parameter model (thesis Lemma 6.3, Remark 6.52): the Fokker-Planck
equation of mini-batch SGD with its true, state-dependent and non-isotropic D(theta).

Mini-batch SGD theta <- theta - lr mean_{k in batch} g_k(theta) (batches of B samples drawn with
replacement) has, for small lr, the Ito diffusion limit (t = n lr)

    d theta = -grad f(theta) dt + sqrt(2 D(theta)) dB,   D(theta) = lr Sigma(theta) / (2 B),
    Sigma(theta) = (1/N) sum_k g_k g_k^T - grad f grad f^T   (the per-sample gradient covariance),

so rho_t = div(grad f rho) + div(div(D rho)) (the Ito form). D is a full 2 x 2 tensor that
depends on theta; beta^-1 = lr / (2B) is the temperature (D = beta^-1 Sigma).

Models: ``linear`` (least squares, l_k = (theta . x_k - y_k)^2 / 2, y_k = theta* . x_k + noise e_k)
and ``logistic`` (l_k = log(1 + exp(-y_k theta . x_k)), P(y_k = 1) = sigmoid(theta* . x_k)); the
features x_k = L z_k with z_k standard normal and L the Cholesky factor of
[[s1^2, c s1 s2], [c s1 s2, s2^2]] (``feature_scales`` s, ``feature_correlation`` c): different
scales make the noise non-isotropic.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.special import expit

LOSSES = ("linear", "logistic")


class SGDProblem2:
    def __init__(self, loss: str, samples: int, theta_star, noise: float, seed: int,
                 scales=(1.0, 1.0), correlation: float = 0.0):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}")
        ts = np.broadcast_to(np.asarray(theta_star, dtype=float), (2,)).copy()
        s = np.broadcast_to(np.asarray(scales, dtype=float), (2,))
        C = np.array([[s[0] ** 2, correlation * s[0] * s[1]], [correlation * s[0] * s[1], s[1] ** 2]])
        rng = np.random.default_rng(seed)
        self.loss, self.theta_star = loss, ts
        self.x = rng.standard_normal((samples, 2)) @ np.linalg.cholesky(C).T
        m = self.x @ ts
        if loss == "linear":
            self.y = m + noise * rng.standard_normal(samples)
        else:
            self.y = np.where(rng.random(samples) < expit(m), 1.0, -1.0)

    # -- per-sample quantities at many points (P, 2) -----------------------------------------
    def _residual(self, th: np.ndarray):
        """(losses (P, N), the scalar factor r with g_k = r_k x_k (P, N))."""
        m = th @ self.x.T                       # (P, N)
        if self.loss == "linear":
            r = m - self.y[None, :]
            return 0.5 * r * r, r
        z = self.y[None, :] * m
        return np.logaddexp(0.0, -z), -self.y[None, :] * expit(-z)

    def f(self, th: np.ndarray) -> np.ndarray:
        return self._residual(np.atleast_2d(th))[0].mean(axis=1)

    def grad(self, th: np.ndarray) -> np.ndarray:
        r = self._residual(np.atleast_2d(th))[1]
        return r @ self.x / self.x.shape[0]

    def sigma(self, th: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Per-sample gradient covariance (P, 2, 2)."""
        th = np.atleast_2d(th)
        out = np.empty((th.shape[0], 2, 2))
        N = self.x.shape[0]
        for a in range(0, th.shape[0], chunk):
            r = self._residual(th[a:a + chunk])[1]          # (p, N)
            g1, g2 = r * self.x[:, 0], r * self.x[:, 1]
            m1, m2 = g1.mean(axis=1), g2.mean(axis=1)
            out[a:a + chunk, 0, 0] = (g1 * g1).sum(axis=1) / N - m1 * m1
            out[a:a + chunk, 1, 1] = (g2 * g2).sum(axis=1) / N - m2 * m2
            out[a:a + chunk, 0, 1] = out[a:a + chunk, 1, 0] = (g1 * g2).sum(axis=1) / N - m1 * m2
        return out

    def diffusion(self, th: np.ndarray, lr: float, batch: int) -> np.ndarray:
        """D(theta) = lr Sigma(theta) / (2 B), (P, 2, 2)."""
        return lr * self.sigma(th) / (2.0 * batch)

    def minimiser(self) -> np.ndarray:
        """argmin f (normal equations for least squares; BFGS for logistic)."""
        if self.loss == "linear":
            return np.linalg.solve(self.x.T @ self.x, self.x.T @ self.y)
        return optimize.minimize(lambda t: self.f(t)[0], self.theta_star, jac=lambda t: self.grad(t)[0],
                                 method="BFGS", options={"gtol": 1e-12}).x

    def hessian(self, th: np.ndarray, h: float = 1e-5) -> np.ndarray:
        th = np.asarray(th, dtype=float)
        H = np.empty((2, 2))
        for d in range(2):
            e = np.zeros(2)
            e[d] = h
            H[:, d] = (self.grad(th + e)[0] - self.grad(th - e)[0]) / (2 * h)
        return 0.5 * (H + H.T)

    def run_chains(self, theta0: np.ndarray, lr: float, batch: int, steps: int, rng, lower, upper) -> np.ndarray:
        """``steps`` SGD steps of independent runs (P, 2), reflected at the box."""
        th = np.array(theta0, dtype=float)
        N = self.x.shape[0]
        lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        for _ in range(steps):
            idx = rng.integers(0, N, size=(th.shape[0], batch))
            x, y = self.x[idx], self.y[idx]                      # (P, B, 2), (P, B)
            m = np.einsum("pbd,pd->pb", x, th)
            r = (m - y) if self.loss == "linear" else -y * expit(-y * m)
            g = np.einsum("pb,pbd->pd", r, x) / batch
            th = th - lr * g
            th = np.where(th < lo, 2 * lo - th, th)
            th = np.where(th > hi, 2 * hi - th, th)
        return th
