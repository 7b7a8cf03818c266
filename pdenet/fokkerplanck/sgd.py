"""SGD's own diffusion (PRODUCT.md 1.2, thesis Lemma 6.3) for a one-parameter model.

Mini-batch SGD theta <- theta - lr * mean_{k in batch} g_k(theta) with batches of B samples
drawn with replacement has, for small lr, the diffusion limit (t = n lr)

    d theta = -f'(theta) dt + sqrt(lr Sigma(theta) / B) dW,
    Sigma(theta) = (1/N) sum_k g_k^2 - g^2         (the per-sample gradient variance),

so its density obeys rho_t = (rho f')' + (D rho)'' with D = lr Sigma / (2 B), i.e. in the
model's form rho_t = (rho f')' - (b rho)' + (D rho')' with the Ito drift b = -D'.

Models: ``linear`` (least squares, l_k = (theta x_k - y_k)^2 / 2, y_k = theta* x_k + noise e_k)
and ``logistic`` (l_k = log(1 + exp(-y_k theta x_k)), y_k = +-1 with P(y = 1) =
sigmoid(theta* x_k)); x_k, e_k standard normal, seeded.
"""
import numpy as np
from scipy.special import expit

LOSSES = ("linear", "logistic")


class SGDProblem:
    def __init__(self, loss, samples, theta_star, noise, seed):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}")
        rng = np.random.default_rng(seed)
        self.loss = loss
        self.x = rng.standard_normal(samples)
        if loss == "linear":
            self.y = theta_star * self.x + noise * rng.standard_normal(samples)
        else:
            self.y = np.where(rng.random(samples) < expit(theta_star * self.x), 1.0, -1.0)

    def per_sample(self, theta):
        """Losses and gradients of every sample at each theta: arrays (len(theta), N)."""
        th = np.asarray(theta, dtype=float).reshape(-1, 1)
        x, y = self.x.reshape(1, -1), self.y.reshape(1, -1)
        if self.loss == "linear":
            r = th * x - y
            return 0.5 * r * r, r * x
        m = y * th * x
        return np.logaddexp(0.0, -m), -y * x * expit(-m)

    def f(self, theta):
        return self.per_sample(theta)[0].mean(axis=1).reshape(np.shape(theta))

    def minimiser(self):
        """argmin f (closed form for least squares, bounded scalar minimisation for logistic)."""
        if self.loss == "linear":
            return float(self.x @ self.y / (self.x @ self.x))
        from scipy.optimize import minimize_scalar
        return float(minimize_scalar(lambda t: float(self.f(np.array([t]))[0]), bounds=(-50, 50),
                                     method="bounded", options={"xatol": 1e-12}).x)

    def sigma(self, theta):
        g = self.per_sample(theta)[1]
        return (np.mean(g * g, axis=1) - np.mean(g, axis=1) ** 2).reshape(np.shape(theta))

    def diffusion(self, theta, lr, batch):
        """D(theta) = lr Sigma(theta) / (2 B)."""
        return lr * self.sigma(theta) / (2.0 * batch)

    def ito_drift(self, theta, lr, batch, h=1e-6):
        """b = -D'(theta) (central differences)."""
        return -(self.diffusion(theta + h, lr, batch) - self.diffusion(theta - h, lr, batch)) / (2 * h)

    def run_chains(self, theta0, lr, batch, steps, rng, lower=-np.inf, upper=np.inf):
        """``steps`` SGD steps of independent chains started at theta0 (reflected at the box)."""
        th = np.array(theta0, dtype=float)
        N = self.x.size
        for _ in range(steps):
            idx = rng.integers(0, N, size=(th.size, batch))
            x, y = self.x[idx], self.y[idx]
            if self.loss == "linear":
                g = ((th[:, None] * x - y) * x).mean(axis=1)
            else:
                g = (-y * x * expit(-y * th[:, None] * x)).mean(axis=1)
            th = th - lr * g
            th = np.where(th < lower, 2 * lower - th, th)
            th = np.where(th > upper, 2 * upper - th, th)
        return th
