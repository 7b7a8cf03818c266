"""The Fokker-Planck time steppers as fixed-step systems of :func:`solvers.march.march`: each
has ``dt`` and ``advance(rho, n0, n)`` (``n`` steps from step ``n0``, time ``n0 * dt``) and
returns the density on the cells.

* :class:`ExplicitSystem` — forward Euler (the numba kernel of :mod:`.fv`; the sparse matrix
  when the diffusion tensor has cross terms), with the operator rebuilt every step for D(t);
* :class:`ImplicitSystem` — implicit Euler, BDF2 or Crank-Nicolson (:class:`solvers.linear.LinearStepper`);
* :class:`PetscLinearSystem` — the same steppers on PETSc (:mod:`solvers.petsc_backend`): the
  state stays in a distributed vector, ``advance`` returns it gathered on every rank;
* :class:`DmdaExplicitSystem` — forward Euler on a PETSc DMDA (:mod:`.dmda`): the state stays
  distributed, ``advance`` returns it gathered on rank 0 (None on the other ranks).

Each has ``summary()`` (its counters for the run's attributes) and ``destroy()`` (frees the
PETSc objects; nothing for the built-in ones).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from solvers.errors import NumericalError
from solvers.linear import LinearStepper

from .fv import FokkerPlanckOperator


def euler(op: FokkerPlanckOperator, rho: np.ndarray, dt: float, nsteps: int) -> np.ndarray:
    """``nsteps`` forward-Euler steps rho <- rho + dt A rho."""
    if op.has_cross_terms:
        A = op.matrix()
        y = rho.ravel()
        for _ in range(nsteps):
            y = y + dt * (A @ y)
        return y.reshape(rho.shape)
    return op.explicit_steps(rho, dt, nsteps)


class ExplicitSystem:
    """Forward Euler of ``op`` (or, with ``operator_at``, of the operator at the start of each
    step: a time-dependent diffusion)."""

    def __init__(self, op: FokkerPlanckOperator, dt: float,
                 operator_at: Callable[[float], FokkerPlanckOperator] | None = None):
        self.op, self.dt, self.operator_at = op, dt, operator_at

    def advance(self, rho: np.ndarray, n0: int, n: int) -> np.ndarray:
        if self.operator_at is None:
            return euler(self.op, rho, self.dt, n)
        for k in range(n):
            rho = euler(self.operator_at((n0 + k) * self.dt), rho, self.dt, 1)
        return rho

    def summary(self) -> dict[str, float]:
        return {}

    def destroy(self) -> None:
        pass


class ImplicitSystem:
    """Implicit Euler / BDF2 / Crank-Nicolson with sparse LU (``matrix``: the generator, or a
    function of t for a time-dependent one)."""

    def __init__(self, stepper: str, matrix: Any, dt: float, pivot: bool):
        self.dt = dt
        self.stepper = LinearStepper(stepper, matrix, dt, pivot=pivot)

    def advance(self, rho: np.ndarray, n0: int, n: int) -> np.ndarray:
        y = rho.ravel().copy()
        for k in range(n):
            y = self.stepper.step(y, (n0 + k) * self.dt)
        return y.reshape(rho.shape)

    def summary(self) -> dict[str, float]:
        return {"factorisations": self.stepper.factorisations}

    def destroy(self) -> None:
        pass


class PetscLinearSystem:
    """:class:`solvers.petsc_backend.PetscLinearStepper` as a fixed-step system: the density
    lives in its distributed vector from construction on; ``advance`` gathers it to every rank."""

    def __init__(self, petsc_backend: Any, stepper: str, A: Any, dt: float, rho0: np.ndarray,
                 comm: Any = None, options: str = "", rtol: float = 1e-12):
        self.dt, self.shape = dt, rho0.shape
        self.stepper = petsc_backend.PetscLinearStepper(stepper, A, dt, comm=comm, options=options, rtol=rtol)
        self.stepper.set_state(rho0.ravel())

    def advance(self, rho: Any, n0: int, n: int) -> np.ndarray:
        self.stepper.advance(n, None)
        return self.stepper.gather().reshape(self.shape)

    def summary(self) -> dict[str, float]:
        return {"krylov_iterations": self.stepper.iterations}

    def destroy(self) -> None:
        self.stepper.destroy()


class DmdaExplicitSystem:
    """Forward Euler on a DMDA over ``comm`` (:class:`.dmda.DmdaEuler`): the density lives on
    the ranks' blocks; ``advance`` checks it is finite everywhere (collectively, so every rank
    stops together) and returns it gathered on rank 0, None on the other ranks."""

    def __init__(self, op: FokkerPlanckOperator, dt: float, rho0: np.ndarray, comm: Any = None):
        from .dmda import DmdaEuler

        self.dt = dt
        self.euler = DmdaEuler(op, comm)
        try:
            self.euler.set_state(rho0)
        except BaseException:
            self.euler.destroy()
            raise

    def advance(self, rho: Any, n0: int, n: int) -> np.ndarray | None:
        self.euler.advance(n, self.dt)
        if not self.euler.all_finite():
            raise NumericalError(f"non-finite density at t = {(n0 + n) * self.dt:g}")
        return self.euler.gather(root_only=True)

    def summary(self) -> dict[str, float]:
        return {}

    def destroy(self) -> None:
        self.euler.destroy()
