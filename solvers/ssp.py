"""Strong-stability-preserving Runge-Kutta and IMEX stepping on plain callables.

These steppers know nothing about meshes: a state is any numpy array, the
right-hand side a callable ``rhs(u, t) -> du/dt`` and the implicit part a
callable ``solve(rhs_array, dt) -> z`` with ``z - dt*A z = rhs_array`` (A the
stiff linear operator, e.g. the Laplacian times the diffusion coefficient).

* :func:`ssp_rk3_step` — the three-stage, third-order SSP method of
  Shu & Osher (convex combinations of forward-Euler steps: every property a
  forward-Euler step has under a CFL restriction, e.g. monotonicity of a
  monotone numerical Hamiltonian, survives with the same restriction).
* :func:`imex_euler_step` — forward Euler for the non-stiff part, backward
  Euler for the stiff linear part (first order, unconditionally stable for
  the stiff part; for large diffusion coefficients).
* :func:`imex_ars222_step` — the second-order, L-stable IMEX Runge-Kutta
  method ARS(2,2,2) (two implicit solves per step).
* :func:`integrate` — steps from ``t0`` to ``t1`` with a step size chosen
  by ``dt_of(u, t)`` (CFL), landing exactly on requested output times.
"""
from typing import Any, Callable

import numpy as np

from .errors import NumericalError
from .protocol import RHS, Array, ImplicitSolve, LinearMap, OnStep


def ssp_rk3_step(rhs: RHS, u: Array, t: float, dt: float, f0: Array | None = None) -> Array:
    """One SSP-RK3 step: u1 = u + dt L(u); u2 = 3/4 u + 1/4 (u1 + dt L(u1));
    u_new = 1/3 u + 2/3 (u2 + dt L(u2)).

    ``rhs(v, s)`` must return a new array on each call: the stepper updates the second and third
    stage values in place (the third becomes the returned state). ``f0``: L(u, t) when the caller
    has it already (a CFL rule evaluates it); it is only read."""
    u1 = dt * (rhs(u, t) if f0 is None else f0)
    u1 += u
    u2 = rhs(u1, t + dt)
    u2 *= dt
    u2 += u1
    u2 *= 0.25
    u2 += 0.75 * u
    out = rhs(u2, t + 0.5 * dt)
    out *= dt
    out += u2
    out *= 2.0 / 3.0
    out += u / 3.0
    return out


def forward_euler_step(rhs: RHS, u: Array, t: float, dt: float, f0: Array | None = None) -> Array:
    """u + dt rhs(u, t) (``f0``: rhs(u, t) if already evaluated)."""
    return u + dt * (rhs(u, t) if f0 is None else f0)


def imex_euler_step(rhs: RHS, solve: ImplicitSolve, u: Array, t: float, dt: float,
                    f0: Array | None = None) -> Array:
    """u_new = (I - dt A)^{-1} (u + dt rhs(u, t)): explicit non-stiff part, implicit stiff part
    (``f0``: rhs(u, t) if already evaluated)."""
    return solve(u + dt * (rhs(u, t) if f0 is None else f0), dt)


ARS_GAMMA = 1.0 - 1.0 / 2.0 ** 0.5
ARS_DELTA = 1.0 - 1.0 / (2.0 * ARS_GAMMA)


def imex_ars222_step(rhs: RHS, solve: ImplicitSolve, apply_implicit: LinearMap, u: Array, t: float,
                     dt: float, f0: Array | None = None) -> Array:
    """One step of the L-stable, second-order IMEX Runge-Kutta method ARS(2,2,2) of Ascher,
    Ruuth & Spiteri (1997), gamma = 1 - 1/sqrt(2), delta = 1 - 1/(2 gamma):

        U2 = u + dt g E(u) + dt g I(U2)
        U3 = u + dt [d E(u) + (1 - d) E(U2)] + dt [(1 - g) I(U2) + g I(U3)],  u_new = U3

    (E = ``rhs`` the explicit part, I = A the stiff linear part; ``solve(b, c)`` returns z with
    z - c A z = b, ``apply_implicit(z)`` returns A z). Stiffly accurate: u_new is the last stage.
    ``f0``: E(u) at t if already evaluated."""
    g, d = ARS_GAMMA, ARS_DELTA
    e1 = rhs(u, t) if f0 is None else f0
    U2 = solve(u + (dt * g) * e1, dt * g)
    e2 = rhs(U2, t + g * dt)
    b = u + dt * (d * e1 + (1.0 - d) * e2) + (dt * (1.0 - g)) * apply_implicit(U2)
    return solve(b, dt * g)


def integrate(step: Callable[..., Array], u: Array, t0: float, t1: float, dt_of: Callable[..., Any],
              on_step: OnStep | None = None, max_steps: int = 10_000_000,
              first_stage: bool = False) -> tuple[Array, int]:
    """Advance ``u`` from ``t0`` to ``t1`` with ``step(u, t, dt)``; the step size is
    ``min(dt_of(u, t), t1 - t)`` so that the last step lands on ``t1``.

    ``first_stage``: ``dt_of(u, t)`` returns ``(dt, f)`` with ``f`` the right-hand side at
    (u, t), which a CFL rule evaluates anyway, and the step is called as ``step(u, t, dt, f)``
    so that it need not evaluate it again.

    ``on_step(u, t)`` is called after every step. Returns (u, number of steps).
    Raises :class:`NumericalError` on a non-finite state or a non-positive step size.
    """
    t, n = float(t0), 0
    while t < t1 - 1e-14 * max(1.0, abs(t1)):
        if first_stage:
            dt, f = dt_of(u, t)
            dt = float(dt)
        else:
            dt = float(dt_of(u, t))
        if not dt > 0.0:  # NaN or non-positive (inf: no restriction, one step to t1)
            raise NumericalError(f"step size {dt!r} at t = {t:.6g} (state blew up or CFL bound is zero)")
        dt = min(dt, t1 - t)
        u = step(u, t, dt, f) if first_stage else step(u, t, dt)
        t = t1 if t + dt >= t1 - 1e-14 * max(1.0, abs(t1)) else t + dt
        n += 1
        if not np.isfinite(np.sum(u)):
            raise NumericalError(f"non-finite state at t = {t:.6g} after {n} steps")
        if on_step is not None:
            on_step(u, t)
        if n >= max_steps:
            raise NumericalError(f"more than {max_steps} steps to reach t = {t1:.6g}")
    return u, n
