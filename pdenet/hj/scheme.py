"""Monotone finite-difference schemes for u_t + H(x, grad u) = nu Lap u on a box mesh.

:class:`HJScheme` assembles the semi-discrete right-hand side
``L(u) = -H_hat(x, D-u, D+u) + nu Lap_h u`` from the numba kernels of
:mod:`pdenet.hj.kernels`, the CFL/diffusion-limited step size, and (for the
IMEX stepper) the implicit diffusion solve. The time stepping itself is
:mod:`solvers.ssp` (generic callables).

Hamiltonians:

* ``quadratic``: H = a/2 |p|^2 + b(x).p with a >= 0 and an optional drift b
  (a = 1, b = 0: the viscous HJ of local entropy; a = 1, b = grad f: the HJB of
  controlled SGD in reversed time; a = 0, b = grad f: backward Kolmogorov;
  a = 0, b = 0: the heat equation). Godunov (exact for this separable convex H)
  or local Lax-Friedrichs.
* ``general``: any H(x, p) given as a callable on arrays, local Lax-Friedrichs
  with dissipation alpha_d = max |dH/dp_d| over the gradient range [p-, p+] at
  each point (a callable, or estimated by central differences in p at p-,
  (p- + p+)/2 and p+).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from solvers.errors import NumericalError
from solvers.ssp import forward_euler_step, imex_ars222_step, imex_euler_step, integrate, ssp_rk3_step

from . import kernels as K

STEPPERS = ("ssp-rk3", "euler", "imex", "imex-euler")
#: largest eigenvalue of -Lap_h times h^2 per dimension (2nd- and 4th-order stencils)
_LAP_EIG = {2: 4.0, 4: 16.0 / 3.0}


class HJScheme:
    """Semi-discrete HJ operator on ``mesh``.

    Parameters
    ----------
    mesh : pdenet.mesh.Mesh (periodic or extrapolate boundaries per dimension)
    nu : diffusion coefficient (>= 0)
    order : 1 (first-order one-sided differences) or 5 (WENO5)
    flux : "godunov" | "llf"
    a : coefficient of |p|^2/2 (quadratic Hamiltonian)
    drift : None or array (ndim, *cells), the b of H = a/2|p|^2 + b.p
    general : None or callable P -> H (P: (ndim, N) array) replacing the quadratic H
    dissipation : None or callable P -> (ndim, N) bound of |dH/dp_d| (general H only)
    lap_order : 2 or 4 (default: 4 with WENO5, 2 with first order)
    cfl : safety factor of the step size
    stepper : "ssp-rk3" | "euler" | "imex" (ARS(2,2,2)) | "imex-euler"
    """

    def __init__(self, mesh, nu=0.0, order=5, flux="godunov", a=1.0, drift=None, general=None,
                 dissipation=None, lap_order=None, cfl=0.5, stepper="ssp-rk3"):
        if order not in (1, 5):
            raise ValueError(f"order must be 1 or 5, got {order}")
        if stepper not in STEPPERS:
            raise ValueError(f"unknown stepper {stepper!r}; one of {', '.join(STEPPERS)}")
        self.mesh, self.nu, self.order, self.flux = mesh, float(nu), int(order), flux
        self.a, self.general, self.dissipation = float(a), general, dissipation
        self.lap_order = lap_order or (4 if order == 5 else 2)
        self.cfl, self.stepper = float(cfl), stepper
        self.shape = tuple(mesh.cells)
        self.N = mesh.size
        self.ndim = mesh.ndim
        self.h = mesh.spacing
        self.periodic = tuple(pair[0].kind == "periodic" for pair in mesh.boundary)
        for d, n in enumerate(self.shape):
            if n < 4:
                raise ValueError(f"the HJ stencils need at least 4 cells per dimension (dimension {d + 1} "
                                 f"has {n})")
        if drift is None:
            self.drift, self.has_drift = np.zeros((self.ndim, 1)), False
        else:
            self.drift = np.ascontiguousarray(np.asarray(drift, float).reshape(self.ndim, self.N))
            self.has_drift = True
        self.dm = np.empty((self.ndim, self.N))
        self.dp = np.empty((self.ndim, self.N))
        self.lap = np.empty(self.N)
        self.hhat = np.empty(self.N)
        self.speed = np.zeros(self.ndim)
        self._lu = {}
        self.evaluations = 0
        # the explicit part carries the diffusion unless it is treated implicitly
        self.nu_explicit = 0.0 if stepper.startswith("imex") else self.nu

    # -- spatial operator ---------------------------------------------------
    def derivatives(self, u, with_lap=True):
        """Fill self.dm, self.dp ((ndim, N)) and self.lap (N) from u (shape of the mesh)."""
        u = np.ascontiguousarray(u, dtype=float).reshape(self.shape)
        lap_order = self.lap_order if with_lap else 0
        if with_lap:
            self.lap.fill(0.0)
        lap = self.lap.reshape(self.shape)
        for d in range(self.ndim):
            if d == self.ndim - 1 and self.ndim > 1:
                # the last axis is contiguous: each line runs through a local buffer with its
                # ghost values (kernels.last_axis_derivatives)
                self._last_axis(u, lap_order)
                continue
            K.axis_derivatives(K.as3(u, d), self.h[d], self.order, self.periodic[d], lap_order,
                               K.as3(self.dm[d].reshape(self.shape), d),
                               K.as3(self.dp[d].reshape(self.shape), d), K.as3(lap, d))
        return self.dm, self.dp, self.lap

    def _last_axis(self, u, lap_order):
        d = self.ndim - 1
        n = self.shape[d]
        rest = self.N // n
        K.last_axis_derivatives(u.reshape(rest, n), self.h[d], self.order, self.periodic[d], lap_order,
                                self.dm[d].reshape(rest, n), self.dp[d].reshape(rest, n),
                                self.lap.reshape(rest, n))

    def numerical_hamiltonian(self):
        """H_hat from the current self.dm/self.dp (also sets self.speed)."""
        if self.general is None:
            kern = K.godunov_quadratic if self.flux == "godunov" else K.llf_quadratic
            kern(self.dm, self.dp, self.a, self.drift, self.has_drift, self.hhat, self.speed)
            return self.hhat
        pm, pp = self.dm, self.dp
        pc = 0.5 * (pm + pp)
        if self.dissipation is not None:
            alpha = np.maximum(np.abs(self.dissipation(pm)), np.abs(self.dissipation(pp)))
        else:
            alpha = np.maximum(np.maximum(self._dHdp(pm), self._dHdp(pp)), self._dHdp(pc))
        alpha = np.broadcast_to(alpha, pm.shape)
        self.hhat[:] = self.general(pc) - 0.5 * np.sum(alpha * (pp - pm), axis=0)
        self.speed[:] = alpha.max(axis=1)
        return self.hhat

    def _dHdp(self, P):
        out = np.empty_like(P)
        for d in range(self.ndim):
            step = 1e-6 * (1.0 + np.abs(P[d]))
            Pp, Pm = P.copy(), P.copy()
            Pp[d] += step
            Pm[d] -= step
            out[d] = np.abs(self.general(Pp) - self.general(Pm)) / (2.0 * step)
        return out

    def _operator(self, u: np.ndarray) -> None:
        """H_hat (and the Laplacian when the diffusion is explicit) of u into self.hhat/self.lap."""
        self.derivatives(u, with_lap=self.nu_explicit > 0.0)
        self.numerical_hamiltonian()
        self.evaluations += 1

    def _ssp_rk3(self, u: np.ndarray, t: float, dt: float, f0: np.ndarray | None) -> np.ndarray:
        """:func:`solvers.ssp.ssp_rk3_step` with each stage's arithmetic fused with the
        right-hand side in one numba pass (:func:`kernels.ssp_rk3_stage`; bit-for-bit the same
        values): no temporaries, three passes over the cells instead of about twelve."""
        u = np.ascontiguousarray(u, dtype=float).reshape(self.N)
        nu = self.nu_explicit
        first = np.empty(self.N)
        if f0 is None:
            self._operator(u)
            K.ssp_rk3_stage(1, self.hhat, self.lap, nu, u, u, dt, first)
        else:
            K.euler_from_rate(np.ascontiguousarray(f0, dtype=float).reshape(self.N), u, dt, first)
        second = np.empty(self.N)
        self._operator(first.reshape(self.shape))
        K.ssp_rk3_stage(2, self.hhat, self.lap, nu, u, first, dt, second)
        self._operator(second.reshape(self.shape))
        K.ssp_rk3_stage(3, self.hhat, self.lap, nu, u, second, dt, first)   # the new state
        return first.reshape(self.shape)

    def rhs(self, u: np.ndarray, t: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
        """L(u) = -H_hat + nu_explicit Lap_h u, shaped like u: written into ``out`` (a C-contiguous
        float array of the mesh's size) or, without it, into a new array (the steppers of
        :mod:`solvers.ssp` need a new one per stage; they update stages in place)."""
        self.derivatives(u, with_lap=self.nu_explicit > 0.0)
        hhat = self.numerical_hamiltonian()
        flat = np.empty(self.N) if out is None else out.reshape(self.N)
        if self.nu_explicit > 0.0:
            K.axpy_rhs(hhat, self.lap, self.nu_explicit, flat)
        else:
            np.negative(hhat, out=flat)
        self.evaluations += 1
        return flat.reshape(self.shape)

    def gradient(self, u):
        """Gradient estimate (D-u + D+u)/2 per dimension, shape (ndim, *cells)."""
        dm, dp, _ = self.derivatives(u, with_lap=False)
        return (0.5 * (dm + dp)).reshape((self.ndim,) + self.shape)

    # -- time stepping ------------------------------------------------------
    def max_dt(self, u: np.ndarray, t: float = 0.0) -> float:
        """CFL- and (explicit) diffusion-limited step: cfl / (sum alpha_d/h_d + nu sum kappa/h_d^2)."""
        return self.dt_and_rhs(u, t)[0]

    def dt_and_rhs(self, u: np.ndarray, t: float = 0.0,
                   out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """``(max_dt(u), L(u))``: the CFL rule evaluates L(u) (the speeds come with H_hat), and a
        step from u can start from it (``step(u, t, dt, f0=L)``); ``out`` as in :meth:`rhs`."""
        L = self.rhs(u, t, out)
        return self.dt_from_speed(self.speed), L

    def dt_from_speed(self, speed):
        """The step of :meth:`max_dt` for the per-dimension maxima ``speed`` of |dH/dp_d|."""
        rate = sum(s / h for s, h in zip(speed, self.h))
        if self.nu_explicit > 0.0:
            kappa = _LAP_EIG[self.lap_order]
            # SSP-RK3 is stable on the negative real axis to 2.51; forward Euler to 2
            reach = 2.0 if self.stepper == "euler" else 2.5
            rate += self.nu_explicit * sum(kappa / h ** 2 for h in self.h) / reach
        if rate == 0.0:
            return np.inf
        return self.cfl / rate

    def step(self, u: np.ndarray, t: float, dt: float, f0: np.ndarray | None = None) -> np.ndarray:
        """One step of the stepper from (u, t); ``f0``: L(u) if already evaluated (it is only read)."""
        if self.stepper == "ssp-rk3":
            return self._ssp_rk3(u, t, dt, f0)
        if self.stepper == "euler":
            return forward_euler_step(self.rhs, u, t, dt, f0)
        if self.stepper == "imex":
            return imex_ars222_step(self.rhs, self.implicit_solve, self.apply_diffusion, u, t, dt, f0)
        return imex_euler_step(self.rhs, self.implicit_solve, u, t, dt, f0)

    # -- implicit diffusion (IMEX) -------------------------------------------
    def laplacian_matrix(self):
        """Sparse 2nd-order Laplacian: periodic wrap, or at an extrapolated end the ghost value of
        the quadratic through the three end cells (the rule of the explicit kernels), which makes
        the second difference of the end cell that of its neighbour: row 0 = (1, -2, 1) on
        cells 0, 1, 2 (and mirrored at the upper end)."""
        mats = []
        for n, h, per in zip(self.shape, self.h, self.periodic):
            main = -2.0 * np.ones(n)
            off = np.ones(n - 1)
            L = sp.diags([off, main, off], [-1, 0, 1], shape=(n, n), format="lil")
            if per:
                L[0, n - 1] = 1.0
                L[n - 1, 0] = 1.0
            else:
                L[0, :3] = [1.0, -2.0, 1.0]
                L[n - 1, n - 3:] = [1.0, -2.0, 1.0]
            mats.append(sp.csr_matrix(L) / h ** 2)
        total = None
        for d, Ld in enumerate(mats):
            term = Ld
            for e in range(self.ndim):
                if e < d:
                    term = sp.kron(sp.identity(self.shape[e]), term)
                elif e > d:
                    term = sp.kron(term, sp.identity(self.shape[e]))
            total = term if total is None else total + term
        return sp.csc_matrix(total)

    def apply_diffusion(self, u):
        """nu Lap_h u with the implicit part's matrix."""
        if getattr(self, "_lapmat", None) is None:
            self._lapmat = sp.csr_matrix(self.laplacian_matrix())
        return (self.nu * (self._lapmat @ np.ascontiguousarray(u).ravel())).reshape(self.shape)

    def implicit_solve(self, rhs, dt):
        """z with z - dt nu Lap_h z = rhs (sparse LU, cached per dt)."""
        key = float(dt)
        lu = self._lu.get(key)
        if lu is None:
            if len(self._lu) > 8:
                self._lu.clear()
            A = sp.identity(self.N, format="csc") - (dt * self.nu) * self.laplacian_matrix()
            lu = self._lu[key] = spla.splu(sp.csc_matrix(A))
        return lu.solve(np.ascontiguousarray(rhs).ravel()).reshape(self.shape)


class HJSystem:
    """An :class:`HJScheme` as an adaptive system of :func:`solvers.march.march`:
    ``advance_to(u, t0, t1)`` steps with the CFL rule (:meth:`HJScheme.max_dt`, the first stage
    of each step taken from its evaluation, kept in the explicit buffer ``rate``) or, with ``dt``,
    with that fixed step (shortened to land on t1), by :func:`solvers.ssp.integrate`. ``steps``
    counts every step taken."""

    def __init__(self, scheme: HJScheme, dt: float | None = None, check_stability: bool = False):
        self.scheme, self.dt = scheme, dt
        # with a given dt: stop when dt exceeds the stability limit at the current state (the
        # model checks t = 0 before the run; this catches a gradient that steepens later)
        self.check_stability = check_stability
        self.rate = np.empty(scheme.shape)
        self.steps = 0

    def _cfl(self, u: np.ndarray, t: float) -> tuple[float, np.ndarray]:
        return self.scheme.dt_and_rhs(u, t, out=self.rate)

    def _checked_fixed(self, u: np.ndarray, t: float) -> tuple[float, np.ndarray]:
        """The fixed step with L(u) (evaluated here once, reused as the step's first stage), or a
        :class:`NumericalError` when the step exceeds the scheme's limit at cfl = 1 at (u, t)."""
        limit, L = self.scheme.dt_and_rhs(u, t, out=self.rate)
        limit /= self.scheme.cfl
        if self.dt > limit * (1 + 1e-6):
            raise NumericalError(
                f"the given dt = {self.dt:.6g} is {self.dt / limit:.3g} times the stability limit {limit:.6g} of "
                f"the {self.scheme.stepper} stepper at t = {t:.6g} (the gradient steepened); give a smaller "
                f"time.dt, leave time.dt and time.steps out for the automatic step, or set "
                f"time.allow_unstable = true")
        return self.dt, L

    def advance_to(self, u: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, int]:
        if self.dt and self.check_stability:
            u, n = integrate(self.scheme.step, u, t0, t1, self._checked_fixed, first_stage=True)
        elif self.dt:
            dt = self.dt
            u, n = integrate(self.scheme.step, u, t0, t1, lambda u_, t_: dt)
        else:
            u, n = integrate(self.scheme.step, u, t0, t1, self._cfl, first_stage=True)
        self.steps += n
        return u, n
