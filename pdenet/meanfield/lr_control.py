"""Optimal learning-rate control of SGD's stochastic modified equation (review §4.4).

Setting (Li, Tai & E 2017; review eqs. 44–47).  SGD on the quadratic f(x) = a x^2 / 2 with
stochastic gradients a x + xi, Var xi = Sigma, learning rate eta and a rescaling factor
u_k in [0, 1],

    x_{k+1} = x_k - eta u_k (a x_k + xi_k),

is approximated, with t = k eta, by the stochastic modified equation
dX = -u a X dt + u sqrt(eta Sigma) dW (review eq. 44).  Itô's lemma (review eq. 45) gives for
the second moment m(t) = E[X_t^2] (the expected loss is E f = a m / 2)

    m' = -2 a u m + eta Sigma u^2,        u(t) in [0, 1].                  (*)

Minimising E f(X_T), i.e. m(T), over schedules u (review eq. 46): the HJB equation is

    -V_t = min_{u in [0,1]} V_m (-2 a u m + eta Sigma u^2),   V(m, T) = m,

and since V_m > 0 the pointwise minimiser is u* = min(1, a m / (eta Sigma)) — the feedback
law of review eq. 47 (there written up to the normalisation of m and Sigma).  Along the
optimal path (closed form, writing kappa = eta Sigma):

* full rate u = 1 while m > kappa/a:  m(t) = kappa/(2a) + (m0 - kappa/(2a)) e^{-2 a t},
  until the switching time  t* = log(2 a m0 / kappa - 1) / (2a)  (t* = 0 if m0 <= kappa/a);
* then the 1/t-type decay  u(t) = 1 / (1 + a (t - t*)),  m(t) = kappa / (a (1 + a (t - t*))).

Numerically, :func:`solve_hjb` solves the HJB backward in time on an (m, t) grid by a
semi-Lagrangian scheme whose minimisation over u in [0, 1] is exact at every node (the
image of [0, 1] under the quadratic dynamics is an interval, over which the piecewise-linear
interpolant of V is minimised exactly), and reads off the feedback control and the switching
time of the optimal path.  :func:`simulate_sgd` runs the discrete SGD itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np


@dataclass(frozen=True)
class QuadraticSGD:
    """SGD on f(x) = a x^2/2 with gradient-noise variance Sigma, learning rate eta, initial
    second moment m0 = E[x_0^2] and horizon T (in SME time t = k eta)."""

    a: float = 1.0
    eta: float = 0.1
    Sigma: float = 1.0
    m0: float = 1.0
    T: float = 10.0

    def __post_init__(self):
        if not (self.a > 0 and self.eta > 0 and self.Sigma > 0 and self.m0 >= 0 and self.T > 0):
            raise ValueError("QuadraticSGD needs a, eta, Sigma, T > 0 and m0 >= 0")

    @property
    def kappa(self) -> float:
        """Noise coefficient eta Sigma of the moment equation (*)."""
        return self.eta * self.Sigma

    @property
    def steps(self) -> int:
        """Number of SGD steps K = T / eta."""
        return int(round(self.T / self.eta))

    def drift(self, m, u):
        """Right-hand side of (*): -2 a u m + eta Sigma u^2."""
        return -2.0 * self.a * u * m + self.kappa * u * u

    def loss(self, m):
        """Expected loss E f = a m / 2."""
        return 0.5 * self.a * np.asarray(m)


# ---------------------------------------------------------------------------------------------
# closed form
# ---------------------------------------------------------------------------------------------
def switching_time(p: QuadraticSGD) -> float:
    """t* = log(2 a m0 / (eta Sigma) - 1) / (2a), the end of the full-rate phase (0 if m0 is
    already below eta Sigma / a)."""
    r = 2.0 * p.a * p.m0 / p.kappa - 1.0
    return 0.5 * math.log(r) / p.a if r > 1.0 else 0.0


def optimal_feedback(m, p: QuadraticSGD):
    """u*(m) = min(1, a m / (eta Sigma)) (review eq. 47)."""
    return np.minimum(1.0, p.a * np.asarray(m, dtype=float) / p.kappa)


def optimal_schedule(t, p: QuadraticSGD):
    """Open-loop optimal schedule: u = 1 for t <= t*, u = 1/(1 + a (t - t*)) after."""
    t = np.asarray(t, dtype=float)
    ts = switching_time(p)
    return np.where(t <= ts, 1.0, 1.0 / (1.0 + p.a * np.maximum(t - ts, 0.0)))


def optimal_moment(t, p: QuadraticSGD):
    """m(t) = E[X_t^2] along the optimal schedule (closed form)."""
    t = np.asarray(t, dtype=float)
    ts = switching_time(p)
    k, a = p.kappa, p.a
    if ts > 0.0:
        full = k / (2 * a) + (p.m0 - k / (2 * a)) * np.exp(-2 * a * t)
        m_s = k / a
    else:
        full = np.full_like(t, p.m0)
        m_s = p.m0
    # after t*: 1/m = 1/m_s + a^2 (t - t*)/kappa
    decay = 1.0 / (1.0 / m_s + a * a * np.maximum(t - ts, 0.0) / k)
    return np.where(t <= ts, full, decay)


def constant_schedule(t, p: QuadraticSGD, u: float = 1.0):
    """u(t) = const (plain SGD at rate u eta)."""
    return np.full_like(np.asarray(t, dtype=float), u)


def inverse_time_schedule(t, p: QuadraticSGD, t0: float | None = None):
    """The classical 1/t annealing u(t) = 1/(1 + t/t0), t0 = 1/a by default."""
    t0 = 1.0 / p.a if t0 is None else t0
    return 1.0 / (1.0 + np.asarray(t, dtype=float) / t0)


SCHEDULES: dict[str, Callable] = {
    "optimal": optimal_schedule,
    "constant": constant_schedule,
    "inverse_time": inverse_time_schedule,
}


# ---------------------------------------------------------------------------------------------
# HJB on an (m, t) grid
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _interp_uniform(V, dm, y):
    n = V.shape[0]
    s = y / dm
    if s <= 0.0:
        return V[0]
    if s >= n - 1:
        return V[n - 1]
    j = int(s)
    w = s - j
    return (1.0 - w) * V[j] + w * V[j + 1]


@numba.njit(cache=True)
def _hjb_backward(n_m, dm, n_t, dt, a, kappa):
    """Semi-Lagrangian backward sweep V_k(m_i) = min_u V_{k+1}(m_i + dt f(m_i, u)) for
    f = -2 a u m + kappa u^2 on the uniform grid m_i = i dm, with the exact minimum over
    u in [0, 1] of the piecewise-linear interpolant (endpoints of the reachable interval and
    the grid nodes inside it).  Returns V (n_t+1, n_m) and u (n_t, n_m)."""
    m_max = (n_m - 1) * dm
    V = np.empty((n_t + 1, n_m))
    U = np.empty((n_t, n_m))
    for i in range(n_m):
        V[n_t, i] = i * dm  # terminal cost m(T)
    for k in range(n_t - 1, -1, -1):
        Vn = V[k + 1]
        for i in range(n_m):
            m = i * dm
            # reachable interval of arrival points as u ranges over [0, 1]
            u_lo = min(max(a * m / kappa, 0.0), 1.0)
            f_lo = -2.0 * a * m * u_lo + kappa * u_lo * u_lo
            f1 = kappa - 2.0 * a * m
            u_hi = 1.0 if f1 > 0.0 else 0.0
            f_hi = f1 if f1 > 0.0 else 0.0
            y_lo = min(max(m + dt * f_lo, 0.0), m_max)
            y_hi = min(max(m + dt * f_hi, 0.0), m_max)
            best = _interp_uniform(Vn, dm, y_lo)
            u_best = u_lo
            v = _interp_uniform(Vn, dm, y_hi)
            if v < best:
                best = v
                u_best = u_hi
            j0 = int(math.floor(y_lo / dm)) + 1
            j1 = int(math.ceil(y_hi / dm)) - 1
            for j in range(max(j0, 0), min(j1, n_m - 1) + 1):
                if Vn[j] < best:
                    best = Vn[j]
                    # control reaching m_j: kappa u^2 - 2 a m u - (m_j - m)/dt = 0
                    d = (j * dm - m) / dt
                    disc = math.sqrt(max(a * a * m * m + kappa * d, 0.0))
                    r1 = (a * m - disc) / kappa
                    r2 = (a * m + disc) / kappa
                    u_best = -1.0  # the admissible root nearest the vertex u_lo
                    for r in (r1, r2):
                        if -1e-12 <= r <= 1.0 + 1e-12:
                            if u_best < 0.0 or abs(r - u_lo) < abs(u_best - u_lo):
                                u_best = min(max(r, 0.0), 1.0)
                    if u_best < 0.0:
                        u_best = u_lo
            V[k, i] = best
            U[k, i] = u_best
    return V, U


@dataclass(frozen=True)
class HJBSolution:
    """Value function V[k, i] ~ V(m_i, t_k) and feedback control u[k, i] on the grid."""

    problem: QuadraticSGD
    m: np.ndarray
    t: np.ndarray
    V: np.ndarray
    u: np.ndarray

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0])

    @property
    def dm(self) -> float:
        return float(self.m[1] - self.m[0])

    def feedback(self, m, k: int):
        """u(m, t_k) interpolated linearly in m."""
        return np.interp(m, self.m, self.u[k])

    def trajectory(self, m0: float | None = None):
        """Optimal path from m0 under the grid feedback, the control held on each time step
        and (*) integrated exactly over the step.  Returns (m at t_0..t_K, u at t_0..t_{K-1})."""
        p = self.problem
        m = np.empty(self.t.size)
        u = np.empty(self.t.size - 1)
        m[0] = p.m0 if m0 is None else m0
        for k in range(u.size):
            u[k] = self.feedback(m[k], k)
            if u[k] > 0.0:
                m_inf = p.kappa * u[k] / (2.0 * p.a)
                m[k + 1] = m_inf + (m[k] - m_inf) * math.exp(-2.0 * p.a * u[k] * self.dt)
            else:
                m[k + 1] = m[k]
        return m, u

    def switching_time(self, m0: float | None = None, tol: float = 1e-9) -> float:
        """First grid time at which the feedback along the optimal path drops below 1.
        Accurate to max(dt, dm / (eta Sigma)) (the path crosses the switching value
        m = eta Sigma / a with speed |m'| = eta Sigma)."""
        _, u = self.trajectory(m0)
        below = np.nonzero(u < 1.0 - tol)[0]
        return float(self.t[below[0]]) if below.size else math.inf


def solve_hjb(p: QuadraticSGD, n_m: int = 1201, n_t: int = 1000, m_max: float | None = None) -> HJBSolution:
    """Solve the HJB of (*) backward on [0, m_max] x [0, T] (uniform grids; m_max defaults to
    1.2 max(m0, eta Sigma / a))."""
    if m_max is None:
        m_max = 1.2 * max(p.m0, p.kappa / p.a)
    dm = m_max / (n_m - 1)
    dt = p.T / n_t
    V, U = _hjb_backward(int(n_m), float(dm), int(n_t), float(dt), float(p.a), float(p.kappa))
    return HJBSolution(p, np.arange(n_m) * dm, np.arange(n_t + 1) * dt, V, U)


# ---------------------------------------------------------------------------------------------
# SGD itself
# ---------------------------------------------------------------------------------------------
def step_times(p: QuadraticSGD) -> np.ndarray:
    """SME times t_k = k eta of the SGD steps k = 0..K-1."""
    return np.arange(p.steps) * p.eta


def expected_loss_recursion(u, p: QuadraticSGD) -> float:
    """Exact expected final loss of the discrete SGD for rates u_k (k = 0..K-1):
    E[x_{k+1}^2] = (1 - eta u_k a)^2 E[x_k^2] + eta^2 u_k^2 Sigma."""
    m = p.m0
    for uk in np.asarray(u, dtype=float):
        m = (1.0 - p.eta * uk * p.a) ** 2 * m + (p.eta * uk) ** 2 * p.Sigma
    return float(p.loss(m))


def expected_loss_path(u, p: QuadraticSGD) -> np.ndarray:
    """Exact expected loss E f(x_k) of the discrete SGD at steps k = 0..K for rates u_k
    (the recursion of :func:`expected_loss_recursion`, every step kept); shape (K + 1,)."""
    u = np.asarray(u, dtype=float)
    m = np.empty(u.size + 1)
    m[0] = p.m0
    for k, uk in enumerate(u):
        m[k + 1] = (1.0 - p.eta * uk * p.a) ** 2 * m[k] + (p.eta * uk) ** 2 * p.Sigma
    return p.loss(m)


def simulate_sgd(u, p: QuadraticSGD, runs: int = 20000, seed=0) -> np.ndarray:
    """Final losses f(x_K) of ``runs`` independent SGD runs (vectorised over runs) from
    x_0 = sqrt(m0), with rates u_k eta and Gaussian gradient noise of variance Sigma."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = np.full(runs, math.sqrt(p.m0))
    s = math.sqrt(p.Sigma)
    for uk in np.asarray(u, dtype=float):
        x -= p.eta * uk * (p.a * x + s * rng.standard_normal(runs))
    return p.loss(x * x)


def compare_schedules(p: QuadraticSGD, runs: int = 20000, seed=0) -> dict[str, dict[str, float]]:
    """Final expected loss of SGD under the optimal, constant (u = 1) and 1/t schedules:
    Monte Carlo mean and its standard error (common random numbers across schedules), the
    exact discrete expectation, and the SME prediction (the optimal one in closed form)."""
    t = step_times(p)
    out = {}
    for name, schedule in SCHEDULES.items():
        u = schedule(t, p)
        losses = simulate_sgd(u, p, runs, seed)
        out[name] = {
            "mc_mean": float(losses.mean()),
            "mc_stderr": float(losses.std(ddof=1) / math.sqrt(runs)),
            "exact": expected_loss_recursion(u, p),
        }
    out["optimal"]["sme"] = float(p.loss(optimal_moment(p.T, p)))
    return out
