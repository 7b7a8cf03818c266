"""Functional HJB of Liu & Markowich Sect. 4.3 for a reduced (one- or two-mode) network.

Reduction
---------
Take m <= 2 disjoint intervals Y_r of the label space Y = (0, 1), the modes
phi_r = 1_{Y_r}, a fixed finite-rank kernel b(y, z) = sum_r phi_r(y) psi_r(z),
the control a(y, t) = alpha(t) sum_r e_r phi_r(y) with a scalar amplitude
alpha(t) in [alpha-, alpha+], and f_I = sum_r c0_r phi_r. For an activation with
sigma(0) = 0, sigma(a - B f) is again a combination of the indicators, so the
span is invariant and f(t) = sum_r c_r(t) phi_r with

    c_r' = sigma(alpha e_r - (G c)_r),     G_rk = (psi_r, phi_k),

(the network PDE restricted to the span; on a label mesh whose faces contain
the interval end points the midpoint-rule network is *exactly* this ODE with
the discrete Gram matrix G_rk = h sum_i psi_r(y_i) phi_k(y_i)). The cost is

    J = int_0^T lambda/2 int_Y |a|^2 dy dt + 1/2 int_Y |f(T) - f~|^2 dy
      = int_0^T l(alpha) dt + Phi(c(T)),
    l(alpha) = rc alpha^2 / 2, rc = lambda ||sum e_r phi_r||^2,
    Phi(c) = 1/2 sum_r |Y_r| (c_r - d_r)^2       (target f~ = sum d_r phi_r),

so the value function V(c, t) of the functional HJB restricted to the span solves

    -V_t + max_alpha { -F(c, alpha) . grad_c V - l(alpha) } = 0,   V(c, T) = Phi(c),

F(c, alpha) = sigma(alpha e - G c); the optimal feedback is the minimiser of
F . grad V + l.

Discretisation
--------------
Semi-Lagrangian dynamic programming with the *same* explicit Euler step as the
network (depth L, dt = T/L):

    V^n(c) = min_{alpha in box} dt l(alpha) + I[V^{n+1}](c + dt F(c, alpha)),  V^L = Phi,

I the bilinear (1-D: linear) interpolation between the cell centres of the c-grid,
constant outside them. It is monotone and, without interpolation, *is* the dynamic
programme of the Euler-discretised control problem with one control per step, so
V^0(c0) converges to the discrete optimum as the grid is refined (second order
where V is smooth). The minimum over alpha: the best of ``alpha_points``
equispaced values (the box ends included), refined by golden-section search on the
two neighbouring grid intervals (the better of the two is kept, so the refinement
never increases the value). The feedback at any point c (on or off the grid) is
the same minimiser with V^{n+1}; the closed loop applies it along the Euler path.

The open-loop reference minimises the same discrete cost over alpha in box^L by
L-BFGS-B, with the exact gradient of the full network (:class:`NetworkPDE` with the
low-rank kernel), not of the reduced ODE, so the comparison also checks the
reduction.
"""
import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import optimize

from .. import activations as act
from ..heads import Head
from ..operators import LowRankOperator
from ..pde import NetworkPDE

__all__ = ["ReducedProblem", "ReductionError", "HJBSolution", "ClosedLoop", "closed_loop_report", "solve_hjb",
           "open_loop", "MODE_ACTIVATIONS",
           "sup_sigma", "kernels"]

#: activations with sigma(0) = 0 (the span of the indicator modes is invariant)
MODE_ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "tanh", "arctan")
_GOLDEN = 0.5 * (math.sqrt(5.0) - 1.0)


def sup_sigma(name):
    """sup |sigma| (inf for the unbounded activations): bounds |c'| and so the reachable set."""
    return {"tanh": 1.0, "arctan": 0.5 * math.pi}.get(name, math.inf)


# -- numba kernels ----------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _interp(V, lo0, h0, lo1, h1, x0, x1):
    """Bilinear interpolation of V (n0, n1) given at the centres lo + (i + 1/2) h; clamped."""
    n0, n1 = V.shape
    s0 = (x0 - lo0) / h0 - 0.5
    s1 = (x1 - lo1) / h1 - 0.5
    if n0 == 1 or s0 <= 0.0:
        i0, w0 = 0, 0.0
    elif s0 >= n0 - 1:
        i0, w0 = n0 - 2, 1.0
    else:
        i0 = int(math.floor(s0))
        w0 = s0 - i0
    if n1 == 1 or s1 <= 0.0:
        i1, w1 = 0, 0.0
    elif s1 >= n1 - 1:
        i1, w1 = n1 - 2, 1.0
    else:
        i1 = int(math.floor(s1))
        w1 = s1 - i1
    j0 = i0 + 1 if n0 > 1 else 0
    j1 = i1 + 1 if n1 > 1 else 0
    return ((1.0 - w0) * ((1.0 - w1) * V[i0, i1] + w1 * V[i0, j1])
            + w0 * ((1.0 - w1) * V[j0, i1] + w1 * V[j0, j1]))


@numba.njit(cache=True, inline="always")
def _stage(V, lo, h, c0, c1, alpha, G, e, m, code, dt, rc):
    """dt l(alpha) + I[V](c + dt sigma(alpha e - G c))."""
    u0 = alpha * e[0] - G[0, 0] * c0 - G[0, 1] * c1
    x0 = c0 + dt * act.sigma(u0, code)
    x1 = c1
    if m == 2:
        u1 = alpha * e[1] - G[1, 0] * c0 - G[1, 1] * c1
        x1 = c1 + dt * act.sigma(u1, code)
    return 0.5 * dt * rc * alpha * alpha + _interp(V, lo[0], h[0], lo[1], h[1], x0, x1)


@numba.njit(cache=True)
def sl_minimise(V, lo, h, points, m, G, e, code, dt, rc, alphas, refine, A, Q):
    """For every point c (row of ``points`` (P, 2)): A = argmin_alpha, Q = min of the stage cost.

    ``alphas``: the candidate grid (sorted, box ends included); ``refine``
    golden-section iterations on [alphas[k-1], alphas[k+1]] around the best one.
    """
    P = points.shape[0]
    na = alphas.shape[0]
    for p in range(P):
        c0, c1 = points[p, 0], points[p, 1]
        best, kbest = math.inf, 0
        for k in range(na):
            v = _stage(V, lo, h, c0, c1, alphas[k], G, e, m, code, dt, rc)
            if v < best:
                best, kbest = v, k
        abest = alphas[kbest]
        if refine > 0 and na > 1:
            a = alphas[max(kbest - 1, 0)]
            b = alphas[min(kbest + 1, na - 1)]
            x1 = b - _GOLDEN * (b - a)
            x2 = a + _GOLDEN * (b - a)
            f1 = _stage(V, lo, h, c0, c1, x1, G, e, m, code, dt, rc)
            f2 = _stage(V, lo, h, c0, c1, x2, G, e, m, code, dt, rc)
            for _ in range(refine):
                if f1 <= f2:
                    b, x2, f2 = x2, x1, f1
                    x1 = b - _GOLDEN * (b - a)
                    f1 = _stage(V, lo, h, c0, c1, x1, G, e, m, code, dt, rc)
                else:
                    a, x1, f1 = x1, x2, f2
                    x2 = a + _GOLDEN * (b - a)
                    f2 = _stage(V, lo, h, c0, c1, x2, G, e, m, code, dt, rc)
            if f1 < best:
                best, abest = f1, x1
            if f2 < best:
                best, abest = f2, x2
        A[p] = abest
        Q[p] = best


@numba.njit(cache=True)
def sl_interpolate(V, lo, h, points, out):
    for p in range(points.shape[0]):
        out[p] = _interp(V, lo[0], h[0], lo[1], h[1], points[p, 0], points[p, 1])


def kernels():
    """The numba dispatchers of this module (for compile/cache statistics)."""
    return [sl_minimise, sl_interpolate]


# -- the reduced problem -------------------------------------------------------------------
class ReductionError(ValueError):
    """A bad argument of :class:`ReducedProblem`; ``argument`` names it (``activation``,
    ``intervals``, ``box``) so that a caller can point at where it came from."""

    def __init__(self, argument, message):
        super().__init__(message)
        self.argument = argument


class ReducedProblem:
    """The m-mode reduction (m = 1, 2) of a network on Y = (0, 1) meshed into ``label_cells``.

    ``intervals``: m pairs (lo_r, hi_r), disjoint, on cell faces; ``psi`` (m, N): the
    kernel's second factors at the label cell centres; ``control`` e (m,); ``box``
    (alpha-, alpha+); ``tikhonov`` lambda >= 0; ``c0``, ``target`` (m,) amplitudes;
    ``T``, ``steps``: horizon and Euler steps.
    """

    def __init__(self, activation, label_cells, intervals, psi, control, box, tikhonov, c0, target,
                 T, steps):
        self.activation = act.Activation(activation)
        if activation not in MODE_ACTIVATIONS:
            raise ReductionError("activation", f"activation {activation!r} has sigma(0) != 0: the span of "
                                 f"the modes is not invariant; use one of {', '.join(MODE_ACTIVATIONS)}")
        N = int(label_cells)
        self.N, self.h = N, 1.0 / N
        self.intervals = [(float(lo), float(hi)) for lo, hi in intervals]
        m = self.m = len(self.intervals)
        if m not in (1, 2):
            raise ReductionError("intervals", f"one or two modes, got {m}")
        y = (np.arange(N) + 0.5) * self.h
        phi = np.zeros((m, N))
        for r, (lo, hi) in enumerate(self.intervals):
            if not 0.0 <= lo < hi <= 1.0:
                raise ReductionError("intervals", f"mode {r + 1}: interval ({lo}, {hi}) is not inside (0, 1)")
            for x in (lo, hi):
                if abs(x * N - round(x * N)) > 1e-9:
                    raise ReductionError("intervals", f"mode {r + 1}: end point {x} is not a face of the "
                                         f"{N}-cell label mesh (a multiple of 1/{N})")
            phi[r] = (y > lo) & (y < hi)
        if np.any(phi.sum(axis=0) > 1):
            raise ReductionError("intervals", "the mode intervals overlap")
        self.y, self.phi = y, phi
        self.psi = np.asarray(psi, dtype=float).reshape(m, N)
        self.e = np.broadcast_to(np.asarray(control, dtype=float), (m,)).copy()
        self.box = (float(box[0]), float(box[1]))
        if not self.box[0] <= self.box[1]:
            raise ReductionError("box", f"box {box}: lower > upper")
        self.tikhonov = float(tikhonov)
        self.c0 = np.asarray(c0, dtype=float).reshape(m)
        self.target = np.asarray(target, dtype=float).reshape(m)
        self.T, self.steps = float(T), int(steps)
        self.dt = self.T / self.steps
        # discrete Gram matrix, mode measures, running-cost weight
        self.G = self.h * self.psi @ self.phi.T                  # G_rk = h sum_i psi_r phi_k
        self.weights = self.h * phi.sum(axis=1)                  # |Y_r|
        self.chi = self.e @ phi                                  # sum_r e_r phi_r on the cells
        self.rc = self.tikhonov * self.h * float(self.chi @ self.chi)

    # -- dynamics and cost --------------------------------------------------------------
    def rhs(self, c, alpha):
        """F(c, alpha) = sigma(alpha e - G c); c (..., m), alpha (...)."""
        c = np.asarray(c, dtype=float)
        u = np.asarray(alpha, dtype=float)[..., None] * self.e - c @ self.G.T
        return self.activation(u)

    def running(self, alpha):
        return 0.5 * self.rc * np.asarray(alpha, dtype=float) ** 2

    def terminal(self, c):
        d = np.asarray(c, dtype=float) - self.target
        return 0.5 * np.sum(self.weights * d * d, axis=-1)

    def trajectory(self, alphas, c0=None):
        """Euler path (L+1, m) under the control sequence ``alphas`` (L,)."""
        c = np.empty((self.steps + 1, self.m))
        c[0] = self.c0 if c0 is None else c0
        for n in range(self.steps):
            c[n + 1] = c[n] + self.dt * self.rhs(c[n], alphas[n])
        return c

    def cost(self, alphas):
        """Discrete J = dt sum_n l(alpha_n) + Phi(c_L) and the path."""
        c = self.trajectory(alphas)
        return float(self.dt * np.sum(self.running(alphas)) + self.terminal(c[-1])), c

    # -- the full network ----------------------------------------------------------------
    def network(self):
        """(NetworkPDE, f0 (1, N), target (1, N)): low-rank kernel, one control interval per step."""
        from solvers import Schedule, make_stepper

        from ...mesh import Mesh

        L, m, N = self.steps, self.m, self.N
        mesh = Mesh([0.0], [1.0], [N])
        op = LowRankOperator(np.repeat(self.phi[None], L, 0), np.repeat(self.psi[None], L, 0))
        net = NetworkPDE(mesh, self.activation.name, np.zeros((L, N)), op,
                         Head("identity", "l2", self.h, N), Schedule(L, self.dt, L), make_stepper("euler"))
        return net, (self.c0 @ self.phi)[None], (self.target @ self.phi)[None]

    def network_cost(self, alphas, net=None, grad=False):
        """The same discrete cost computed by the full network (and dJ/dalpha with ``grad``)."""
        net, f0, target = net or self.network()
        net.a[...] = np.asarray(alphas, dtype=float)[:, None] * self.chi[None, :]
        run = self.dt * np.sum(self.running(alphas))
        if not grad:
            J, _ = net.loss(f0, target)
            return float(J + run)
        J, g, _, _ = net.loss_and_gradient(f0, target)
        return float(J + run), g["a"] @ self.chi + self.dt * self.rc * np.asarray(alphas, dtype=float)


# -- HJB --------------------------------------------------------------------------------
@dataclass
class HJBSolution:
    """V (L+1, n0, n1) and the grid feedback A (L, n0, n1) on the cell centres of ``mesh``."""

    problem: ReducedProblem
    mesh: object
    V: np.ndarray
    A: np.ndarray
    alphas: np.ndarray
    refine: int

    def _geom(self):
        lo = np.zeros(2)
        h = np.ones(2)
        lo[:self.mesh.ndim] = self.mesh.lower
        h[:self.mesh.ndim] = self.mesh.spacing
        return lo, h

    @staticmethod
    def _pad(points, m):
        pts = np.zeros((len(points), 2))
        pts[:, :m] = np.asarray(points, dtype=float).reshape(len(points), m)
        return pts

    def value(self, n, points):
        """I[V^n] at the points (P, m)."""
        lo, h = self._geom()
        pts = self._pad(points, self.problem.m)
        out = np.empty(len(pts))
        sl_interpolate(self.V[n], lo, h, pts, out)
        return out

    def feedback(self, n, points):
        """alpha*(c, t_n) at arbitrary points: the minimiser with V^{n+1} (not interpolated)."""
        p = self.problem
        lo, h = self._geom()
        pts = self._pad(points, p.m)
        A, Q = np.empty(len(pts)), np.empty(len(pts))
        sl_minimise(self.V[n + 1], lo, h, pts, p.m, _G2(p), _e2(p), p.activation.code, p.dt, p.rc,
                    self.alphas, self.refine, A, Q)
        return A

    def closed_loop(self, c0=None):
        """Closed-loop Euler path (L+1, m), controls (L,), cost, and V(c_n, t_n) along it."""
        p = self.problem
        c = np.empty((p.steps + 1, p.m))
        c[0] = p.c0 if c0 is None else c0
        alphas = np.empty(p.steps)
        for n in range(p.steps):
            alphas[n] = self.feedback(n, c[n][None])[0]
            c[n + 1] = c[n] + p.dt * p.rhs(c[n], alphas[n])
        cost = float(p.dt * np.sum(p.running(alphas)) + p.terminal(c[-1]))
        along = np.array([self.value(n, c[n][None])[0] for n in range(p.steps + 1)])
        return c, alphas, cost, along


@dataclass
class ClosedLoop:
    """The closed loop of a :class:`HJBSolution` and its checks against the full network."""

    path: np.ndarray
    """amplitudes c_n (L+1, m)"""
    alphas: np.ndarray
    """controls alpha*(c_n, t_n) (L,)"""
    cost: float
    value: np.ndarray
    """V(c_n, t_n) along the path (L+1,)"""
    cost_to_go: np.ndarray
    """dt sum_{k>=n} l(alpha_k) + Phi(c_L) (L+1,)"""
    network_cost: float
    """the same controls through the full network"""
    reduction_error: float
    """max |f_n - sum_r c_n,r phi_r| of the full network's states"""


def closed_loop_report(sol):
    """Run the closed loop of ``sol`` and the same controls through the full network."""
    p = sol.problem
    path, alphas, cost, along = sol.closed_loop()
    run_cost = p.dt * p.running(alphas)
    to_go = p.terminal(path[-1]) + np.concatenate([np.cumsum(run_cost[::-1])[::-1], [0.0]])
    # the same closed-loop controls through the full network: same cost, state in the span
    netdata = p.network()
    net_cost = p.network_cost(alphas, netdata)
    net, f0, _ = netdata
    states = np.full((p.steps + 1, p.N), np.nan)

    def on_state(n, t, y, lin):
        states[n] = y[0]
    net.forward(f0, on_state=on_state)
    reduction_error = float(np.max(np.abs(states - path @ p.phi)))
    return ClosedLoop(path, alphas, cost, along, to_go, net_cost, reduction_error)


def _G2(p):
    G = np.zeros((2, 2))
    G[:p.m, :p.m] = p.G
    return G


def _e2(p):
    e = np.zeros(2)
    e[:p.m] = p.e
    return e


def solve_hjb(problem, mesh, alpha_points=41, refine=40, progress=lambda k: None):
    """Semi-Lagrangian dynamic programme on the cell centres of ``mesh`` (m-D, m = problem.m)."""
    p = problem
    if mesh.ndim != p.m:
        raise ValueError(f"the c-grid has {mesh.ndim} dimensions for {p.m} modes")
    if alpha_points < 2 and p.box[0] < p.box[1]:
        raise ValueError("alpha_points must be >= 2")
    cells = tuple(mesh.cells) + (1,) * (2 - p.m)
    centres = np.stack(np.meshgrid(*mesh.axes, indexing="ij"), axis=-1).reshape(-1, p.m)
    pts = np.zeros((len(centres), 2))
    pts[:, :p.m] = centres
    alphas = np.linspace(p.box[0], p.box[1], max(int(alpha_points), 1))
    L = p.steps
    V = np.empty((L + 1,) + cells)
    A = np.empty((L,) + cells)
    V[L] = p.terminal(centres).reshape(cells)
    sol = HJBSolution(p, mesh, V, A, alphas, int(refine))
    lo, h = sol._geom()
    G, e = _G2(p), _e2(p)
    a_buf, q_buf = np.empty(len(pts)), np.empty(len(pts))
    for n in range(L - 1, -1, -1):
        sl_minimise(V[n + 1], lo, h, pts, p.m, G, e, p.activation.code, p.dt, p.rc, alphas, sol.refine,
                    a_buf, q_buf)
        V[n] = q_buf.reshape(cells)
        A[n] = a_buf.reshape(cells)
        progress(1)
    return sol


# -- open loop ----------------------------------------------------------------------------
def open_loop(problem, starts=None, maxiter=1000, gtol=1e-10):
    """Minimise the discrete cost over alpha in box^L by L-BFGS-B with the network's gradient.

    ``starts``: initial control sequences (default: 0 clipped to the box, and both box
    ends). Returns (best alphas, best cost, list of (cost, iterations) per start).
    """
    p = problem
    lo, hi = p.box
    if starts is None:
        starts = [np.full(p.steps, np.clip(0.0, lo, hi)), np.full(p.steps, lo), np.full(p.steps, hi)]
    netdata = p.network()
    fun = lambda x: p.network_cost(x, netdata, grad=True)  # noqa: E731
    best, runs = None, []
    for x0 in starts:
        res = optimize.minimize(fun, np.clip(x0, lo, hi), jac=True, method="L-BFGS-B",
                                bounds=optimize.Bounds(np.full(p.steps, lo), np.full(p.steps, hi)),
                                options={"maxiter": maxiter, "gtol": gtol, "ftol": 1e-15, "maxcor": 30})
        x = np.clip(res.x, lo, hi)
        J = p.network_cost(x, netdata)
        runs.append((J, int(res.nit)))
        if best is None or J < best[1]:
            best = (x, J)
    return best[0], best[1], runs
