"""Weak order of the SDE approximation of SGD (thesis Theorem 6.5), computed exactly.

For a 1-D least-squares problem f_i(theta) = (1/2)(x_i theta - y_i)^2 the mini-batch gradient is
affine, g_B(theta) = A_B theta - C_B (A_B, C_B the batch means of a_i = x_i^2, c_i = x_i y_i), so the
first two moments m_k = E theta_k, s_k = E theta_k^2 of SGD theta_{k+1} = theta_k - eta g_B(theta_k)
obey a closed linear recursion (the batch drawn independently of theta_k):

    m' = (1 - eta E A) m + eta E C
    s' = (1 - 2 eta E A + eta^2 E A^2) s + 2 eta (E C - eta E AC) m + eta^2 E C^2,

expectations over the exact distribution of batches (enumerated; with or without replacement).
The SDE dX = -f'(X) dt + sqrt(eta Sigma_B(X)) dW with the mini-batch covariance
Sigma_B(X) = Var_B(A_B X - C_B) (= batch factor x Sigma_D, :mod:`pdenet.network.sgd_noise`) has
moments obeying the closed linear ODE

    m' = -abar m + cbar,   s' = -2 abar s + 2 cbar m + eta (Var A s - 2 Cov(A, C) m + Var C),

solved here by a matrix exponential. Both sides are exact (no sampling), so the weak error
|E phi(theta_k) - E phi(X(k eta))| at fixed T = k eta is measured to round-off, and its observed
order over halvings of eta is Theorem 6.5's weak order (1).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from .problems import LeastSquares, batches

__all__ = ["BatchMoments", "sgd_moments", "sde_moments", "weak_errors", "observed_orders", "order_table"]


class BatchMoments:
    """E A, E C, E A^2, E C^2, E AC over the batch distribution of a 1-D :class:`LeastSquares`."""

    def __init__(self, problem: LeastSquares, batch: int, replacement: bool = True):
        if problem.d != 1:
            raise ValueError("the exact moment recursion is for one parameter (d = 1)")
        x, y = problem.X[:, 0], problem.y
        a, c = x * x, x * y
        idx, p = batches(problem.N, batch, replacement)
        A, C = a[idx].mean(axis=1), c[idx].mean(axis=1)
        self.EA, self.EC = p @ A, p @ C
        self.EA2, self.EC2, self.EAC = p @ (A * A), p @ (C * C), p @ (A * C)
        self.varA, self.varC = self.EA2 - self.EA ** 2, self.EC2 - self.EC ** 2
        self.covAC = self.EAC - self.EA * self.EC

    def sigma(self, theta):
        """Sigma_B(theta) = Var_B(A_B theta - C_B)."""
        return self.varA * theta * theta - 2 * self.covAC * theta + self.varC


def sgd_moments(bm: BatchMoments, eta: float, steps: int, theta0: float):
    """(m_k, s_k) of SGD after ``steps`` steps from the deterministic theta0."""
    m, s = float(theta0), float(theta0) ** 2
    for _ in range(int(steps)):
        m, s = ((1 - eta * bm.EA) * m + eta * bm.EC,
                (1 - 2 * eta * bm.EA + eta ** 2 * bm.EA2) * s + 2 * eta * (bm.EC - eta * bm.EAC) * m
                + eta ** 2 * bm.EC2)
    return m, s


def sde_moments(bm: BatchMoments, eta: float, T: float, theta0: float):
    """(E X(T), E X(T)^2) of dX = -(abar X - cbar) dt + sqrt(eta Sigma_B(X)) dW, X(0) = theta0."""
    M = np.array([[-bm.EA, 0.0, bm.EC],
                  [2 * bm.EC - 2 * eta * bm.covAC, -2 * bm.EA + eta * bm.varA, eta * bm.varC],
                  [0.0, 0.0, 0.0]])
    y = expm(M * T) @ np.array([theta0, theta0 ** 2, 1.0])
    return float(y[0]), float(y[1])


def weak_errors(problem: LeastSquares, batch: int, etas, T: float, theta0: float, replacement: bool = True):
    """Per eta: (|E theta_k - E X(T)|, |E theta_k^2 - E X(T)^2|) with k = T / eta (must be an integer)."""
    bm = BatchMoments(problem, batch, replacement)
    out = []
    for eta in etas:
        k = T / eta
        if abs(k - round(k)) > 1e-9:
            raise ValueError(f"T / eta = {k} is not an integer")
        m, s = sgd_moments(bm, eta, int(round(k)), theta0)
        M, S = sde_moments(bm, eta, T, theta0)
        out.append((abs(m - M), abs(s - S)))
    return np.array(out)


def observed_orders(etas, errors) -> np.ndarray:
    """log(e_i / e_{i+1}) / log(eta_i / eta_{i+1}) of successive learning rates."""
    e, h = np.asarray(errors, float), np.asarray(etas, float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])


def order_table(etas, errors, name="|E phi(theta_k) - E phi(X(T))|") -> str:
    """The convergence table of ``pdenet converge``'s form: eta, error, observed order."""
    orders = observed_orders(etas, errors)
    lines = [f"{'eta':>12}  {name:>32}  {'order':>7}"]
    for i, (h, e) in enumerate(zip(etas, errors)):
        o = f"{orders[i - 1]:7.3f}" if i else f"{'':>7}"
        lines.append(f"{h:12.6g}  {e:32.6e}  {o}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m pdenet.sgd.weak``: the weak-order table of the demo problem (docs/sgd-noise.md)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, 8)
    y = 2.0 * x + 0.5 * rng.standard_normal(8)
    problem = LeastSquares(x, y)
    etas = [0.1 / 2 ** i for i in range(6)]
    err = weak_errors(problem, 2, etas, T=2.0, theta0=-1.0)
    print("SGD on 1-D least squares, N = 8, batch 2 with replacement, theta0 = -1, T = 2")
    print(order_table(etas, err[:, 0], "phi = theta"))
    print(order_table(etas, err[:, 1], "phi = theta^2"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
