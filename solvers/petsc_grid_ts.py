"""PETSc TS time stepping of a grid ODE u' = E(u) [+ A u] on a :class:`~solvers.petsc_dmda.GridDM`.

The state is a global vector of the GridDM. The explicit part E is evaluated by a
callback on the rank's ghosted local array: :class:`GridTS` fills the ghosts
shared with other ranks and the periodic wrap (``update_ghosts``), the callback
``explicit(padded, t, out)`` fills the padding beyond physical boundaries by its
own boundary rule and writes E(u) on the owned cells into ``out``. The optional
stiff linear part A (a scipy sparse matrix in natural ordering, e.g. a diffusion
operator) is treated implicitly.

Methods (``method``):

* ``"ssp-rk3"``: the three-stage, third-order SSP Runge-Kutta method of Shu &
  Osher in its Shu-Osher form, the scheme of :func:`solvers.ssp.ssp_rk3_step`
  (same stages, same convex combinations), as a TS of type ``python``
  (:class:`ShuOsherRK3`). PETSc's own ``-ts_type ssp -ts_ssp_type rks3`` is a
  different method (Ketcheson's low-storage SSP(s,3) with s = n^2 >= 4 stages;
  SSP(4,3) by default), selectable from the options.
* ``"euler"``: TS ``euler`` (forward Euler).
* ``"arkimex"``: TS ``arkimex`` (additive Runge-Kutta IMEX, PETSc's default
  tableau unless ``-ts_arkimex_type`` says otherwise): E explicit (RHS function),
  A implicit (IFunction ``F = u' - A u`` with the assembled IJacobian
  ``shift I - A``; one linear solve per implicit stage: SNES ``ksponly``).

The step size is the caller's: :meth:`GridTS.advance` steps from the current time
to ``t1`` with ``dt = min(dt_of(t), t1 - t)`` (so it lands exactly on ``t1``, as
:func:`solvers.ssp.integrate` does) and calls ``ts.step()`` once per step (TS
adaptivity is off by default: ``-ts_adapt_type none``). ``dt_of`` may call
:meth:`GridTS.explicit_rhs` for the current state (e.g. for a CFL bound); that
evaluation is reused by the first stage.

Options: the defaults, then ``options`` (the case file's), then the command
line's (:func:`solvers.petsc_backend.set_command_line_options`), in force while
the TS is set up and while it steps. Nothing here imports pdenet.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from . import petsc_backend as pb
from .errors import NumericalError
from .protocol import Array, GridExplicit, Matrix

if TYPE_CHECKING:
    from .petsc_dmda import GridDM

METHODS = ("ssp-rk3", "euler", "arkimex")
DEFAULTS = {
    "ssp-rk3": "",
    "euler": "-ts_type euler",
    "arkimex": "-ts_type arkimex -ts_adapt_type none -snes_type ksponly -ksp_type gmres",
}


class ShuOsherRK3:
    """TS ``python`` context: one step of the Shu-Osher SSP-RK3 method,
    u1 = u + dt E(u); u2 = 3/4 u + 1/4 (u1 + dt E(u1)); u_new = 1/3 u + 2/3 (u2 + dt E(u2))."""

    def __init__(self) -> None:
        self.work: list[Any] | None = None

    def step(self, ts: Any) -> None:
        t, dt = ts.getTime(), ts.getTimeStep()
        u = ts.getSolution()
        if self.work is None:
            self.work = [u.duplicate() for _ in range(3)]
        u1, u2, F = self.work
        ts.computeRHSFunction(t, u, F)
        u.copy(u1)
        u1.axpy(dt, F)                              # u1 = u + dt E(u)
        ts.computeRHSFunction(t + dt, u1, F)
        F.scale(dt)                                 # u2 = 1/4 (u1 + dt E(u1)) + 3/4 u
        F.axpy(1.0, u1)
        u.copy(u2)
        u2.axpby(0.25, 0.75, F)
        ts.computeRHSFunction(t + 0.5 * dt, u2, F)
        F.scale(dt)                                 # u_new = 2/3 (u2 + dt E(u2)) + 1/3 u
        F.axpy(1.0, u2)
        u.axpby(2.0 / 3.0, 1.0 / 3.0, F)
        ts.setTime(t + dt)

    def reset(self, ts: Any) -> None:
        for v in self.work or ():
            v.destroy()
        self.work = None

    def destroy(self, ts: Any) -> None:
        self.reset(ts)


class GridTS:
    """u' = E(u) [+ A u] on ``grid`` through a PETSc TS (see the module docstring).

    ``explicit(padded, t, out)``: E on the owned cells (``out``: owned shape) from the padded
    local array (``grid.local_shape``; ghosts of other ranks and periodic wraps filled, the
    padding beyond physical boundaries for the callback to fill). ``implicit``: None or a scipy
    sparse matrix A (natural ordering) for ``arkimex``. ``rtol``: relative tolerance of the
    implicit solves.
    """

    def __init__(self, grid: GridDM, explicit: GridExplicit, method: str = "ssp-rk3", implicit: Matrix = None,
                 options: pb.Options = "", rtol: float = 1e-12, atol: float = 1e-300) -> None:
        P = pb.petsc()
        if method not in METHODS:
            raise ValueError(f"unknown TS method {method!r}; one of {', '.join(METHODS)}")
        if (method == "arkimex") != (implicit is not None):
            raise ValueError("arkimex needs the implicit operator (and only arkimex takes one)")
        self.grid, self.explicit, self.method = grid, explicit, method
        self.X = grid.global_vec()
        self.local = grid.local_vec()
        self.F = self.X.duplicate()
        self._cache: tuple[Any, Any, float] | None = None  # (vec handle, vec state, t) of the last explicit evaluation in self.F
        self.evaluations = 0
        self.steps = 0
        self.t = 0.0
        self.opts = pb._Options(DEFAULTS[method], options, " ".join(pb._command_line))
        ts = self.ts = P.TS().create(comm=grid.comm)
        ts.setProblemType(P.TS.ProblemType.NONLINEAR)
        ts.setRHSFunction(self._rhs, self.X.duplicate())
        self.A: Any = None
        self.J: Any = None
        if implicit is not None:
            A = sp.csr_matrix(implicit, dtype=float)
            self.A = grid.to_petsc_matrix(A)
            # the Jacobian's pattern includes the diagonal (A may lack some diagonal entries)
            self.J = grid.to_petsc_matrix(A + sp.identity(A.shape[0], format="csr"))
            self._shift: float | None = None
            self._Au = self.X.duplicate()
            ts.setIFunction(self._ifunction, self.X.duplicate())
            ts.setIJacobian(self._ijacobian, self.J, self.J)
            ts.getSNES().getKSP().setTolerances(rtol=rtol, atol=atol, max_it=10000)
        if method == "ssp-rk3":
            ts.setType(P.TS.Type.PYTHON)
            ts.setPythonContext(ShuOsherRK3())
        ts.setMaxTime(1e300)       # the steps are driven by advance()
        ts.setExactFinalTime(P.TS.ExactFinalTime.MATCHSTEP)
        ts.setTime(0.0)
        ts.setTimeStep(1.0)
        with self.opts:
            # petsc4py cannot ask a TS ssp for its method: it is read from the options
            self._ssp_type = P.Options().getString("ts_ssp_type", "rks2")
            ts.setFromOptions()
            ts.setSolution(self.X)
            ts.setUp()

    # -- description -------------------------------------------------------------
    def description(self) -> str:
        """'python/shu-osher-rk3', 'ssp/rks3', 'euler', 'arkimex/3 gmres/ilu', ..."""
        ts = self.ts
        kind = ts.getType()
        if kind == "python":
            return "python/shu-osher-rk3"
        if kind == "ssp":
            return f"ssp/{self._ssp_type}"
        if kind == "arkimex":
            ksp = ts.getSNES().getKSP()
            return f"arkimex/{ts.getARKIMEXType()} {ksp.getType()}/{ksp.getPC().getType()}"
        return kind

    # -- state -------------------------------------------------------------------
    def set_state(self, whole: npt.ArrayLike, t: float = 0.0) -> None:
        self.grid.scatter(whole, self.X)
        self.t = float(t)
        self.ts.setTime(self.t)
        self._cache = None

    def gather(self, root_only: bool = False) -> Array | None:
        return self.grid.gather(self.X, root_only=root_only)

    # -- callbacks -----------------------------------------------------------------
    def _evaluate(self, t: float, X: Any, F: Any) -> None:
        self.grid.update_ghosts(X, self.local)
        padded = self.grid.local_array(self.local)
        self.explicit(padded, t, self.grid.owned_array(F))
        self.evaluations += 1

    def explicit_rhs(self, t: float | None = None) -> Any:
        """E at the current state (kept for the first stage of the next step)."""
        t = self.t if t is None else t
        self._evaluate(t, self.X, self.F)
        self._cache = (self.X.handle, self.X.stateGet(), t)
        return self.F

    def _rhs(self, ts: Any, t: float, X: Any, F: Any) -> None:
        c = self._cache
        if c is not None and c[0] == X.handle and c[1] == X.stateGet() and c[2] == t:
            self.F.copy(F)
            return
        self._evaluate(t, X, F)

    def _ifunction(self, ts: Any, t: float, X: Any, Xdot: Any, F: Any) -> None:
        self.A.mult(X, self._Au)
        Xdot.copy(F)
        F.axpy(-1.0, self._Au)                      # F = u' - A u

    def _ijacobian(self, ts: Any, t: float, X: Any, Xdot: Any, shift: float, J: Any, Jp: Any) -> None:
        if shift == self._shift:
            return   # the assembled matrix is unchanged: the preconditioner is kept
        P = pb.petsc()
        J.zeroEntries()
        J.axpy(-1.0, self.A, P.Mat.Structure.SUBSET_NONZERO_PATTERN)
        J.shift(shift)
        J.assemble()
        self._shift = shift

    # -- stepping ------------------------------------------------------------------
    def advance(self, t1: float, dt_of: Callable[[float], float], max_steps: int = 10_000_000) -> int:
        """Step to ``t1`` with ``dt = min(dt_of(t), t1 - t)``; returns the number of steps."""
        ts, t, n = self.ts, self.t, 0
        tol = 1e-14 * max(1.0, abs(t1))
        with self.opts:
            while t < t1 - tol:
                dt = float(dt_of(t))
                if not dt > 0.0:
                    raise NumericalError(f"step size {dt!r} at t = {t:.6g} (state blew up or CFL bound is zero)")
                dt = min(dt, t1 - t)
                ts.setTime(t)
                ts.setTimeStep(dt)
                ts.step()
                reason = ts.getConvergedReason()
                if reason < 0:
                    raise NumericalError(f"PETSc TS {ts.getType()}: step failed at t = {t:.6g} (reason "
                                         f"{reason}); set other [solver] petsc_options")
                t = t1 if t + dt >= t1 - tol else t + dt
                ts.setTime(t)
                n += 1
                self.steps += 1
                ts.monitor(self.steps, t, self.X)
                if not np.isfinite(self.X.norm()):
                    raise NumericalError(f"non-finite state at t = {t:.6g} after {n} steps")
                if n >= max_steps:
                    raise NumericalError(f"more than {max_steps} steps to reach t = {t1:.6g}")
        self.t = t
        return n

    def linear_iterations(self) -> int:
        if self.method != "arkimex":
            return 0
        return int(self.ts.getKSPIterations())

    def destroy(self) -> None:
        for obj in (self.ts, self.X, self.local, self.F, self.A, self.J, getattr(self, "_Au", None)):
            if obj is not None:
                obj.destroy()
