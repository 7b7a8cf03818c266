"""Time steppers and their exact discrete adjoints.

Explicit Runge-Kutta with a Butcher tableau (Euler is the ResNet of the paper;
Heun and RK4 are other architectures with the same parameters), and the
theta-method y_{n+1} = y_n + dt[(1-theta) F(y_n) + theta F(y_{n+1})]
(theta = 1 backward Euler, 1/2 Crank-Nicolson) solved by Newton-Krylov.

``step`` returns the next state, the tape the adjoint needs (linearisation
records, or None when not kept) and the linearisation at the current state.
``adjoint_step`` maps dJ/dy_{n+1} to dJ/dy_n and adds the parameter gradient
of the step: reverse-mode differentiation of exactly the computation ``step``
performed.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .newton import newton_krylov, solve_shifted
from .protocol import Array, ControlledSystem, Gradient, Linearisation


class ExplicitRK:
    """Explicit Runge-Kutta method with strictly lower-triangular ``a`` and weights ``b``."""

    implicit = False

    def __init__(self, name: str, a: Sequence[Sequence[float]], b: Sequence[float], order: int) -> None:
        self.name, self.order = name, order
        self.a = [list(map(float, row)) for row in a]
        self.b = list(map(float, b))
        self.stages = len(self.b)

    def step(self, system: ControlledSystem, y: Array, k: int, dt: float,
             keep: bool) -> tuple[Array, list[Linearisation] | None, Linearisation]:
        ks: list[Array] = []
        lins: list[Linearisation] = []
        for i in range(self.stages):
            Y = y
            for j, aij in enumerate(self.a[i][:i]):
                if aij != 0.0:
                    Y = Y + (dt * aij) * ks[j]
            F, lin = system.linearise(Y, k)
            ks.append(F)
            lins.append(lin)
        y_next = y.copy()
        for bi, Fi in zip(self.b, ks):
            if bi != 0.0:
                y_next += (dt * bi) * Fi
        return y_next, (lins if keep else None), lins[0]

    def adjoint_step(self, system: ControlledSystem, tape: list[Linearisation], k: int, dt: float,
                     lam: Array, grad: Gradient | None) -> Array:
        lins = tape
        ybar = lam.copy()
        Ybar: list[Array | None] = [None] * self.stages
        for i in reversed(range(self.stages)):
            kbar: Array | None = None
            if self.b[i] != 0.0:
                kbar = (dt * self.b[i]) * lam
            for m in range(i + 1, self.stages):
                ami = self.a[m][i]
                Ym = Ybar[m]
                if ami != 0.0 and Ym is not None:
                    term = (dt * ami) * Ym
                    kbar = term if kbar is None else kbar + term
            if kbar is None:
                continue
            Yi = Ybar[i] = system.vjp(lins[i], k, kbar, grad)
            ybar += Yi
        return ybar


class Theta:
    """theta-method, Newton-Krylov for the implicit stage; its adjoint uses transposed GMRES."""

    implicit = True
    stages = 2

    def __init__(self, name: str, theta: float, newton_tol: float = 1e-12, newton_maxiter: int = 50,
                 krylov_tol: float = 1e-13) -> None:
        if not 0.0 < theta <= 1.0:
            raise ValueError(f"theta must be in (0, 1], got {theta}")
        self.name, self.theta = name, float(theta)
        self.order = 2 if abs(theta - 0.5) < 1e-15 else 1
        self.newton_tol, self.newton_maxiter, self.krylov_tol = newton_tol, newton_maxiter, krylov_tol

    def step(self, system: ControlledSystem, y: Array, k: int, dt: float,
             keep: bool) -> tuple[Array, tuple[Linearisation, Linearisation] | None, Linearisation]:
        th = self.theta
        F0, lin0 = system.linearise(y, k)
        const = y + (dt * (1.0 - th)) * F0 if th < 1.0 else y

        def residual_and_jac(z: Array) -> tuple[Array, Any, Linearisation]:
            Fz, linz = system.linearise(z, k)
            g = z - const - (dt * th) * Fz
            return g, (lambda v: v - (dt * th) * system.jvp(linz, k, v)), linz

        z, linz = newton_krylov(residual_and_jac, y + dt * F0, self.newton_tol,
                                self.newton_maxiter, self.krylov_tol)
        return z, ((lin0, linz) if keep else None), lin0

    def adjoint_step(self, system: ControlledSystem, tape: tuple[Linearisation, Linearisation], k: int,
                     dt: float, lam: Array, grad: Gradient | None) -> Array:
        lin0, linz = tape
        th = self.theta
        mu = solve_shifted(lambda v: system.vjp(linz, k, v, None), lam, dt * th, self.krylov_tol)
        if grad is not None:
            system.vjp(linz, k, (dt * th) * mu, grad)
        ybar = mu
        if th < 1.0:
            ybar = mu + system.vjp(lin0, k, (dt * (1.0 - th)) * mu, grad)
        return ybar


def _tableaux() -> dict[str, ExplicitRK]:
    return {
        "euler": ExplicitRK("euler", [[]], [1.0], 1),
        "heun": ExplicitRK("heun", [[], [1.0]], [0.5, 0.5], 2),
        "rk4": ExplicitRK("rk4", [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
                          [1 / 6, 1 / 3, 1 / 3, 1 / 6], 4),
    }


STEPPERS = ("euler", "heun", "rk4", "beuler", "cn", "theta")


def make_stepper(name: str, theta: float | None = None, **newton: Any) -> ExplicitRK | Theta:
    """Stepper by name: euler | heun | rk4 | beuler | cn | theta (with ``theta``)."""
    explicit = _tableaux()
    if name in explicit:
        return explicit[name]
    if name == "beuler":
        return Theta("beuler", 1.0, **newton)
    if name == "cn":
        return Theta("cn", 0.5, **newton)
    if name == "theta":
        if theta is None:
            raise ValueError("stepper 'theta' needs a theta value")
        return Theta(f"theta({theta:g})", theta, **newton)
    raise ValueError(f"unknown stepper {name!r}; one of {', '.join(STEPPERS)}")


def finite(y: Array) -> bool:
    """True when every entry of y is finite (one reduction, no temporary mask)."""
    return bool(np.isfinite(np.sum(y)))
