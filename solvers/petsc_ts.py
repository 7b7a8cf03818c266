"""PETSc TS on plain callables: integrate y' = F(t, y; p) and the gradient of a terminal cost by
PETSc's own discrete adjoint (TSAdjoint).

:func:`ts_adjoint` takes

* ``rhs(t, y) -> F`` (flat arrays of length n),
* ``jacobian(t, y) -> dF/dy`` (n x n, a dense array or a scipy sparse matrix),
* ``jacobian_p(t, y) -> dF/dp`` (n x n_params, dense; only for parameter gradients),

integrates ``nsteps`` fixed steps of size ``dt`` from ``y0`` with a PETSc TS (default ``cn``:
TSTHETA with theta = 1/2 at the end points, i.e. y_{n+1} = y_n + dt/2 [F(t_n, y_n) + F(t_{n+1},
y_{n+1})], the same scheme as :class:`solvers.steppers.Theta` ``cn``), saving the trajectory;
then, given ``terminal_gradient(y_T) = dPhi/dy(T)``, runs ``TSAdjointSolve`` with
``setCostGradients(lambda=[dPhi/dy(T)], mu=[0])`` and returns dPhi/dy0 and dPhi/dp. The adjoint is
that of the discrete scheme PETSc integrated (TSTHETA and TSRK support it), so it is a reference
implementation independent of pdenet's own adjoint (:mod:`solvers.steppers`): the two agree to
the nonlinear/linear solver tolerances when both integrate the same scheme.

The implicit stages are solved by SNES (Newton with the assembled ``jacobian``) and, by default,
a direct LU factorisation of the shifted Jacobian (``-ksp_type preonly -pc_type lu``) with tight
Newton tolerances, so the forward solution is exact to round-off. Options: :data:`DEFAULTS`, then
``options`` (a string or tokens), then the command-line options of
:func:`solvers.petsc_backend.set_command_line_options` — later ones win (e.g. ``-ts_type beuler``,
``-ts_type rk -ts_rk_type 4``, ``-ts_monitor``, ``-snes_monitor``); they are in force for the
whole call and removed afterwards. The time step is fixed (``-ts_adapt_type none``).

Serial (PETSc.COMM_SELF): this is a cross-check and a small-problem tool, not a distributed
solver. Nothing here imports pdenet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from . import petsc_backend as _pb
from .errors import NumericalError
from .protocol import Array, TimeFunction

DEFAULTS = ("-ts_type cn -ts_adapt_type none -snes_type newtonls -snes_linesearch_type basic "
            "-snes_rtol 1e-14 -snes_atol 1e-14 -snes_stol 1e-16 -snes_max_it 50 "
            "-ksp_type preonly -pc_type lu")


@dataclass
class TSResult:
    """What :func:`ts_adjoint` returns: the final state, and the gradients when asked for."""

    y_final: Array
    grad_y0: Array | None = None
    grad_p: Array | None = None
    info: dict[str, Any] = field(default_factory=dict)


class _DenseOrSparse:
    """Copies a callable's dense array or scipy sparse matrix into a PETSc Mat (dense or AIJ,
    decided by the first value; an AIJ keeps the union of all patterns seen)."""

    def __init__(self, P: Any, value: Any, shape: tuple[int, int], what: str) -> None:
        self.P, self.shape, self.what = P, shape, what
        self.sparse = sp.issparse(value)
        if self.sparse:
            A = sp.csr_matrix(value, dtype=float)
            A.sort_indices()
            self.mat = P.Mat().createAIJ(size=shape, nnz=np.maximum(np.diff(A.indptr), 1).astype(P.IntType),
                                         comm=P.COMM_SELF)
            self.mat.setOption(P.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        else:
            self.mat = P.Mat().createDense(shape, comm=P.COMM_SELF)
        self.mat.setUp()
        self.fill(value)
        self.mat.assemble()

    def fill(self, value: Any) -> None:
        if (sp.issparse(value)) != self.sparse:
            raise TypeError(f"{self.what} returned a {'sparse' if sp.issparse(value) else 'dense'} matrix "
                            f"after a {'sparse' if self.sparse else 'dense'} one")
        if value.shape != self.shape:
            raise ValueError(f"{self.what} returned shape {value.shape}, expected {self.shape}")
        M = self.mat
        if self.sparse:
            A = sp.csr_matrix(value, dtype=float)
            A.sort_indices()
            M.zeroEntries()
            M.setValuesCSR(A.indptr.astype(self.P.IntType), A.indices.astype(self.P.IntType), A.data)
        else:
            M.getDenseArray()[...] = np.asarray(value, dtype=float)
        M.assemble()


def _array(v: Any) -> Array:
    return v.getArray(readonly=True)


def _run(P: Any, fn: Callable[..., Any], *args: Any, what: str) -> None:
    """Call a PETSc solve; its error (e.g. a step whose SNES diverged) becomes a NumericalError
    carrying PETSc's own last line."""
    try:
        fn(*args)
    except P.Error as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"error code {exc.ierr}"
        raise NumericalError(f"{what}: {last}; check the SNES/KSP options") from None


def ts_adjoint(rhs: TimeFunction, jacobian: TimeFunction, y0: npt.ArrayLike, dt: float, nsteps: int,
               terminal_gradient: Callable[[Array], npt.ArrayLike] | None = None,
               jacobian_p: TimeFunction | None = None, n_params: int = 0, t0: float = 0.0,
               options: _pb.Options = "") -> TSResult:
    """Integrate y' = rhs(t, y) with a PETSc TS and (when ``terminal_gradient`` is given) compute
    the gradient of Phi(y(T)) by TSAdjointSolve. Returns a :class:`TSResult`
    (``grad_p`` when ``jacobian_p`` and ``n_params`` are given). See the module docstring."""
    P = _pb.petsc()
    y0 = np.ascontiguousarray(y0, dtype=float).ravel()
    n = y0.size
    nsteps, dt, t0 = int(nsteps), float(dt), float(t0)
    if nsteps < 1 or not dt > 0:
        raise ValueError(f"need nsteps >= 1 and dt > 0, got nsteps={nsteps}, dt={dt}")
    want_p = terminal_gradient is not None and jacobian_p is not None and n_params > 0

    def rhs_cb(ts: Any, t: float, u: Any, f: Any) -> None:
        out = np.asarray(rhs(t, _array(u)), dtype=float).ravel()
        if out.size != n:
            raise ValueError(f"rhs returned {out.size} values, expected {n}")
        f.getArray()[:] = out

    J0 = jacobian(t0, y0)
    Jw = _DenseOrSparse(P, J0, (n, n), "jacobian")

    def jac_cb(ts: Any, t: float, u: Any, A: Any, B: Any) -> None:
        Jw.fill(jacobian(t, _array(u)))
        if B is not None and B.handle != A.handle:
            B.assemble()

    if want_p:
        assert jacobian_p is not None  # want_p says so
        jac_p = jacobian_p
        Jp = _DenseOrSparse(P, np.asarray(jac_p(t0, y0), dtype=float), (n, int(n_params)), "jacobian_p")

        def jacp_cb(ts: Any, t: float, u: Any, C: Any) -> None:
            Jp.fill(np.asarray(jac_p(t, _array(u)), dtype=float))

    u = P.Vec().createSeq(n, comm=P.COMM_SELF)
    u.getArray()[:] = y0
    ts = P.TS().create(comm=P.COMM_SELF)
    objs = [u, ts, Jw.mat]
    try:
        ts.setProblemType(P.TS.ProblemType.NONLINEAR)
        ts.setRHSFunction(rhs_cb, u.duplicate())
        ts.setRHSJacobian(jac_cb, Jw.mat, Jw.mat)
        if want_p:
            ts.setRHSJacobianP(jacp_cb, Jp.mat)
            objs.append(Jp.mat)
        if terminal_gradient is not None:
            ts.setSaveTrajectory()
        ts.setTime(t0)
        ts.setTimeStep(dt)
        ts.setMaxSteps(nsteps)
        # a final time half a step beyond t0 + nsteps dt: exactly nsteps steps of dt, whatever the
        # round-off of the accumulated time
        ts.setMaxTime(t0 + (nsteps + 0.5) * dt)
        ts.setExactFinalTime(P.TS.ExactFinalTime.STEPOVER)
        cmd = " ".join(_pb._command_line)
        with _pb._Options(DEFAULTS, options, cmd):
            ts.setFromOptions()
            _run(P, ts.solve, u, what=f"PETSc TS {ts.getType()}")
            steps = ts.getStepNumber()
            reason = ts.getConvergedReason()
            if reason < 0 or steps != nsteps:
                raise NumericalError(f"PETSc TS {ts.getType()}: stopped after {steps} of {nsteps} steps "
                                     f"(reason {reason}); check the SNES/KSP options")
            y_final = u.getArray().copy()
            info = {"ts_type": ts.getType(), "steps": steps, "time": ts.getTime(),
                    "snes_iterations": ts.getSNESIterations(), "ksp_iterations": ts.getKSPIterations(),
                    "snes_failures": ts.getSNESFailures()}
            if ts.getType() in ("theta", "cn", "beuler"):
                info["theta"] = ts.getTheta()
                info["endpoint"] = ts.getThetaEndpoint()
            result = TSResult(y_final, info=info)
            if not np.all(np.isfinite(y_final)):
                raise NumericalError(f"PETSc TS {ts.getType()}: non-finite state at t = {ts.getTime():g}")
            if terminal_gradient is None:
                return result
            lam = u.duplicate()
            lam.getArray()[:] = np.asarray(terminal_gradient(y_final.copy()), dtype=float).ravel()
            objs.append(lam)
            mu = None
            if want_p:
                mu = P.Vec().createSeq(int(n_params), comm=P.COMM_SELF)
                mu.set(0.0)
                objs.append(mu)
                ts.setCostGradients([lam], [mu])
            else:
                ts.setCostGradients([lam])
            _run(P, ts.adjointSolve, what=f"PETSc TS {ts.getType()} adjoint")
            result.grad_y0 = lam.getArray().copy()
            if want_p:
                assert mu is not None
                result.grad_p = mu.getArray().copy()
            return result
    finally:
        for o in objs:
            o.destroy()
