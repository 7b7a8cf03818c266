"""What :mod:`solvers` asks of a model, as :class:`typing.Protocol` classes.

``solvers`` never imports ``pdenet``: it knows a model only through the protocols here. They are
structural: a model satisfies one by having the methods (no base class to inherit), and mypy
checks that it does wherever a model object is handed to a solver.

* :class:`ControlledSystem` — y' = F(y; p_k), what the steppers of :mod:`solvers.steppers` and the
  sweeps of :mod:`solvers.integrate` differentiate (``rhs``, ``linearise``, ``jvp``, ``vjp`` with
  an explicit gradient buffer); :class:`Stepper` is what those sweeps ask of a stepper.
* :class:`Objective` and :class:`PMPSystem` — what the training drivers of :mod:`solvers.optim`
  call; :class:`HasMetrics` and :class:`HasSqnorm` are the optional extras they look for.
* The callables of the array-level solvers: :class:`RHS`, :class:`ImplicitSolve`,
  :class:`LinearMap`, :class:`StepSize`, :class:`Step` (:mod:`solvers.ssp`),
  :class:`MatrixOfTime` (:mod:`solvers.linear`), :class:`ResidualAndJacobian`
  (:mod:`solvers.newton`), :class:`GridExplicit` (:mod:`solvers.petsc_grid_ts`) and
  :class:`TimeFunction` (:mod:`solvers.petsc_ts`).
* The marching loop's protocols, re-exported from :mod:`solvers.march`: :class:`FixedStepSystem`,
  :class:`AdaptiveSystem`, :class:`Observer` (and the :class:`Frame` an observer receives).

Arrays are numpy arrays of floats (:data:`Array`); sparse matrices are scipy's (:data:`Matrix`:
scipy ships no type information, so to mypy they are ``Any``).
"""
from __future__ import annotations

from typing import Any, Callable, MutableMapping, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .march import AdaptiveSystem, FixedStepSystem, Frame, Observer

__all__ = [
    "Array", "Matrix", "Linearisation", "Gradient", "Params",
    "ControlledSystem", "Stepper", "Objective", "PMPSystem", "HasMetrics", "HasSqnorm",
    "RHS", "ImplicitSolve", "LinearMap", "StepSize", "Step", "OnStep", "MatrixOfTime",
    "ResidualAndJacobian", "GridExplicit", "TimeFunction", "Progress",
    "FixedStepSystem", "AdaptiveSystem", "Observer", "Frame",
]

#: a numpy array of floats (a state, a right-hand side, a co-state, a parameter)
Array = npt.NDArray[np.float64]
#: a scipy sparse matrix (or anything scipy.sparse accepts: a dense array)
Matrix = Any
#: the opaque record a :meth:`ControlledSystem.linearise` returns and its derivative products read
Linearisation = Any
#: the trainable parameters, name -> array; the drivers update the arrays in place
Params = MutableMapping[str, Array]
#: the explicit gradient buffer of a backward sweep: name -> array shaped like the parameter
#: (for a controlled system, a leading axis over the control intervals). It is created (zeroed)
#: by whoever starts the sweep and handed down to every ``vjp``, which *adds* into it; nothing
#: about it is remembered by the system between calls. A model may hand a richer mapping (e.g.
#: one that records which intervals are still untouched, so that the first ``vjp`` of an
#: interval may overwrite instead of add): the solvers only pass it through.
Gradient = MutableMapping[str, Array]
#: ``progress(k)``: k more units of work done (a progress bar)
Progress = Callable[[int], Any]


# -- the controlled system of the steppers ----------------------------------------------------
@runtime_checkable
class ControlledSystem(Protocol):
    """A *controlled system* y' = F(y; p_k), with parameters p_k piecewise constant over the
    control intervals k of a :class:`~solvers.schedule.Schedule`.

    The steppers use only these calls, so every model gets the exact discrete adjoint of every
    stepper: the gradient of the discrete loss, not of a discretised continuous adjoint.
    Explicit Runge-Kutta steppers call ``linearise`` and ``vjp``; the implicit theta-method also
    ``jvp``. ``rhs`` is the plain evaluation (no linearisation record), for forward-only use.
    """

    def rhs(self, y: Array, k: int) -> Array:
        """The right-hand side F(y; p_k) at state ``y`` (any array shape); a new array."""
        ...

    def linearise(self, y: Array, k: int) -> tuple[Array, Linearisation]:
        """``(F, lin)``: the right-hand side and an opaque record ``lin`` of what the derivative
        products below need at ``y`` (for the network: y and the pre-activation u)."""
        ...

    def jvp(self, lin: Linearisation, k: int, v: Array) -> Array:
        """Jacobian-vector product dF/dy v at the linearisation point (implicit steppers only)."""
        ...

    def vjp(self, lin: Linearisation, k: int, w: Array, grad: Gradient | None) -> Array:
        """Vector-Jacobian product (dF/dy)^T w; if ``grad`` is not None also *adds*
        (dF/dp_k)^T w into the gradient buffer ``grad`` (see :data:`Gradient`). With ``grad``
        None it must not touch any gradient (the transposed solves of an implicit step call it
        so)."""
        ...


@runtime_checkable
class Stepper(Protocol):
    """One time step of a :class:`ControlledSystem` and its exact adjoint
    (:class:`~solvers.steppers.ExplicitRK`, :class:`~solvers.steppers.Theta`)."""

    name: str
    order: int
    implicit: bool

    def step(self, system: ControlledSystem, y: Array, k: int, dt: float,
             keep: bool) -> tuple[Array, Any, Linearisation]:
        """``(y_next, tape, lin)``: the next state, the record the adjoint needs (None unless
        ``keep``) and the linearisation at ``y``."""
        ...

    def adjoint_step(self, system: ControlledSystem, tape: Any, k: int, dt: float, lam: Array,
                     grad: Gradient | None) -> Array:
        """dJ/dy_n from ``lam`` = dJ/dy_{n+1}, adding the step's parameter gradient into ``grad``."""
        ...


# -- the training drivers of solvers.optim ----------------------------------------------------
@runtime_checkable
class Objective(Protocol):
    """What ``gd``, ``adam`` and ``pam`` of :mod:`solvers.optim` call.

    ``params``: name -> float ndarray, the trainable arrays, *updated in place* by the drivers.
    ``loss_and_gradient() -> (J, grad)``: J at the current ``params`` and its exact gradient,
    ``grad[name]`` shaped like ``params[name]``.

    Optional (looked up with ``getattr``): ``metrics()`` (:class:`HasMetrics`) and ``sqnorm``
    (:class:`HasSqnorm`). A ``loss()`` (J alone) is customary for objectives but no driver calls it.
    """

    @property
    def params(self) -> Params: ...

    def loss_and_gradient(self) -> tuple[float, Gradient]: ...


@runtime_checkable
class PMPSystem(Protocol):
    """What the method of successive approximations (``msa``, ``emsa`` of :mod:`solvers.optim`)
    calls; e.g. :class:`pdenet.network.pmp.NetworkPMP`. ``params`` and the optional
    ``metrics()`` as for :class:`Objective`."""

    @property
    def params(self) -> Params: ...

    def sweep(self) -> tuple[float, Gradient]:
        """Forward and backward (co-state) solve at the current controls: ``(J, grad)``;
        remembers the trajectory for the next :meth:`maximise`."""
        ...

    def hamiltonian(self) -> float:
        """int_0^T H dt along the remembered trajectory, at the current controls."""
        ...

    def maximise(self, rho: float) -> float:
        """Replace the controls, interval by interval, by the maximiser of the (augmented,
        ``rho`` > 0) Hamiltonian along the remembered trajectory; returns the maximised
        int_0^T H~ dt."""
        ...


@runtime_checkable
class HasMetrics(Protocol):
    """Optional on an :class:`Objective`/:class:`PMPSystem`: scalar metrics (e.g. ``accuracy``)
    at the params of the most recent evaluation; every key becomes a history entry."""

    def metrics(self) -> dict[str, float] | None: ...


@runtime_checkable
class HasSqnorm(Protocol):
    """Optional on an :class:`Objective` (``gd``, ``adam``): the squared Euclidean norm of a dict
    of parameter-shaped arrays (gradients, steps), for objectives whose ``params`` are pieces of
    parameters split over processes (each process steps its own piece; the norms, and the
    ``gtol`` test that depends on them, must be global). Default: the local sum of squares."""

    def sqnorm(self, arrays: dict[str, Array]) -> float: ...


# -- callables of the array-level solvers -----------------------------------------------------
class RHS(Protocol):
    """``rhs(u, t) -> du/dt`` (:mod:`solvers.ssp`); returns a new array on every call."""

    def __call__(self, u: Array, t: float, /) -> Array: ...


class ImplicitSolve(Protocol):
    """``solve(b, c) -> z`` with z - c A z = b, A the stiff linear part (:mod:`solvers.ssp`)."""

    def __call__(self, b: Array, c: float, /) -> Array: ...


class LinearMap(Protocol):
    """``apply(v) -> A v`` for an array ``v`` (the stiff part of :func:`solvers.ssp.imex_ars222_step`,
    the Jacobian of :func:`solvers.newton.solve_shifted`)."""

    def __call__(self, v: Array, /) -> Array: ...


class StepSize(Protocol):
    """``dt_of(u, t)``: the largest stable step at state ``u`` and time ``t`` (a CFL bound; inf
    for none) — :func:`solvers.ssp.integrate`."""

    def __call__(self, u: Array, t: float, /) -> float: ...


class Step(Protocol):
    """``step(u, t, dt) -> u_new`` (:func:`solvers.ssp.integrate`)."""

    def __call__(self, u: Array, t: float, dt: float, /) -> Array: ...


class OnStep(Protocol):
    """``on_step(u, t)`` after every step of :func:`solvers.ssp.integrate`."""

    def __call__(self, u: Array, t: float, /) -> Any: ...


class MatrixOfTime(Protocol):
    """``matrix(t)``: the sparse matrix A(t) of a time-dependent linear system y' = A(t) y
    (:class:`solvers.linear.LinearStepper`)."""

    def __call__(self, t: float, /) -> Matrix: ...


class ResidualAndJacobian(Protocol):
    """``residual_and_jac(y) -> (G, apply_dG, state)`` for :func:`solvers.newton.newton_krylov`:
    the residual G(y), its Jacobian-vector product and whatever the caller wants back at the
    solution."""

    def __call__(self, y: Array, /) -> tuple[Array, LinearMap | Callable[[Array], Array], Any]: ...


class GridExplicit(Protocol):
    """``explicit(padded, t, out)`` of :class:`solvers.petsc_grid_ts.GridTS`: E(u) on the owned
    cells into ``out`` from the ghost-padded local array (the callback fills the padding beyond
    physical boundaries)."""

    def __call__(self, padded: Array, t: float, out: Array, /) -> Any: ...


class TimeFunction(Protocol):
    """``f(t, y)`` of :func:`solvers.petsc_ts.ts_adjoint`: the right-hand side (flat array),
    its Jacobian dF/dy (dense or sparse) or dF/dp."""

    def __call__(self, t: float, y: Array, /) -> Any: ...
