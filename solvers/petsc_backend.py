"""PETSc backend for sparse linear problems: y' = A y and steady states A p = 0.

The caller hands a scipy sparse matrix (the same generator the built-in
backend uses); it becomes a PETSc AIJ matrix whose rows are split in
contiguous blocks over the ranks of ``comm`` (MPIAIJ; on one rank SeqAIJ).
Every rank passes the whole matrix and the whole initial state (they are
cheap to build redundantly) and gets whole arrays back from :meth:`gather`;
the solves themselves are distributed.

* :class:`PetscLinearStepper`: implicit Euler, BDF2 (started by one
  Crank-Nicolson step) and Crank-Nicolson, one KSP solve per step with the
  matrix I - c dt A assembled once — the same schemes as
  :class:`solvers.linear.LinearStepper`, so the two backends agree to the
  Krylov tolerance. Default: GMRES with block Jacobi/ILU(0) (PETSc's default).
* :func:`steady_state`: the null vector of A, normalised by ``weights``: one
  value is pinned (its row and column eliminated, which keeps the matrix
  structurally symmetric for algebraic multigrid), then GMRES preconditioned
  by PETSc's algebraic multigrid GAMG (smoothed aggregation with ILU(0) smoothing).

Options: the defaults above, then ``options`` (e.g. the case file's
``[solver] petsc_options``), then the options given to
:func:`set_command_line_options` (the command line) — later ones win. They are
inserted into PETSc's options database for the ``setFromOptions`` of each
solver and removed afterwards, so one run's options never leak into the next.
``PETSC_OPTIONS`` in the environment is read by PETSc itself at start-up.

petsc4py is imported on first use; :func:`available` says whether it can be.
Nothing here imports pdenet.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Iterable, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .errors import NumericalError
from .linear import density_peak, pinned_system
from .protocol import Array, Matrix, Progress

#: an options text (``"-ksp_type cg -pc_type gamg"``) or its tokens
Options = str | Iterable[str]

INSTALL_HINT = "install it with scripts/setup-petsc.sh (MPI, petsc, petsc4py, mpi4py)"
_PETSc: Any = None
_command_line: list[str] = []


class PetscUnavailable(ImportError):
    """petsc4py cannot be imported (the message says how to install it)."""


def petsc() -> Any:
    """The ``petsc4py.PETSc`` module, initialised once (raises :class:`PetscUnavailable`)."""
    global _PETSc
    if _PETSc is None:
        try:
            import petsc4py
        except ImportError as exc:
            raise PetscUnavailable(f"petsc4py is not installed ({exc}); {INSTALL_HINT}") from None
        petsc4py.init([])
        from petsc4py import PETSc

        _PETSc = PETSc
    return _PETSc


def available() -> tuple[bool, str]:
    """``(True, version)`` when petsc4py imports, else ``(False, reason)``."""
    try:
        P = petsc()
    except PetscUnavailable as exc:
        return False, str(exc)
    return True, ".".join(map(str, P.Sys.getVersion()))


def set_command_line_options(options: Options) -> None:
    """Options from the command line (a string or a list of tokens), applied after the
    case file's, so they win."""
    global _command_line
    _command_line = list(shlex.split(options) if isinstance(options, str) else options)


def parse_options(text: Options) -> list[tuple[str, str | None]]:
    """``'-ksp_type cg -pc_type gamg -ksp_monitor'`` -> [('ksp_type', 'cg'), ..., ('ksp_monitor', None)].

    An option starts with ``-`` and a letter; a following token that is not an option is its value
    (so ``-ksp_atol -1e-3``-style negative numbers are values)."""
    tokens = shlex.split(text) if isinstance(text, str) else list(text)
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not (tok.startswith("-") and len(tok) > 1 and tok.lstrip("-")[:1].isalpha()):
            raise ValueError(f"PETSc options: expected an option (-name), got {tok!r}")
        name = tok.lstrip("-")
        value = None
        if i + 1 < len(tokens):
            nxt = tokens[i + 1]
            if not (nxt.startswith("-") and nxt.lstrip("-")[:1].isalpha()):
                value = nxt
                i += 1
        out.append((name, value))
        i += 1
    return out


class _Options:
    """Insert options into PETSc's database for the duration of a ``with`` block."""

    def __init__(self, *texts: Options | None) -> None:
        self.items: list[tuple[str, str | None]] = []
        for t in texts:
            if t:
                self.items.extend(parse_options(t))

    def __enter__(self) -> _Options:
        opts = petsc().Options()
        self.saved: dict[str, Any] = {}
        for name, value in self.items:
            if name not in self.saved:
                self.saved[name] = opts.getString(name, None) if opts.hasName(name) else _ABSENT
            opts.setValue(name, "" if value is None else value)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        opts = petsc().Options()
        for name, old in self.saved.items():
            if old is _ABSENT:
                opts.delValue(name)
            else:
                opts.setValue(name, old)
        return False


_ABSENT = object()


def _comm(comm: Any) -> Any:
    P = petsc()
    if comm is None:
        return P.COMM_SELF
    if isinstance(comm, P.Comm):
        return comm
    if getattr(comm, "Get_size", None) and comm.Get_size() == 1:
        return P.COMM_SELF
    return P.Comm(comm)  # an mpi4py communicator


def to_petsc(A: Matrix, comm: Any = None) -> Any:
    """A scipy sparse matrix -> PETSc AIJ with contiguous row blocks over ``comm``
    (every rank passes the whole matrix, each keeps its own rows)."""
    P = petsc()
    comm = _comm(comm)
    A = sp.csr_matrix(A, dtype=float)
    A.sort_indices()
    n, m = A.shape
    rows = P.Mat().createAIJ(size=((P.DECIDE, n), (P.DECIDE, m)), comm=comm)
    rows.setUp()  # decides the row ownership
    r0, r1 = rows.getOwnershipRange()
    c0, c1 = rows.getOwnershipRangeColumn()
    rows.destroy()
    local = A[r0:r1]
    M = P.Mat().createAIJ(size=((r1 - r0, n), (c1 - c0, m)),
                          csr=(local.indptr.astype(P.IntType), local.indices.astype(P.IntType),
                               local.data), comm=comm)
    M.assemble()
    return M


def _vec_from(M: Any, y: npt.ArrayLike) -> Any:
    v = M.createVecLeft()
    r0, r1 = v.getOwnershipRange()
    v.getArray()[:] = np.asarray(y, dtype=float).ravel()[r0:r1]
    return v


def gather_vec(v: Any) -> Array:
    """The whole vector on every rank (numpy)."""
    P = petsc()
    if v.comm.getSize() == 1:
        return v.getArray().copy()
    scatter, full = P.Scatter.toAll(v)
    scatter.scatter(v, full, P.InsertMode.INSERT, P.ScatterMode.FORWARD)
    out = full.getArray().copy()
    scatter.destroy()
    full.destroy()
    return out


@dataclass
class _Krylov:
    """A KSP and the options it was set up with, put back in force during each solve (for
    -ksp_monitor, -ksp_view, -ksp_converged_reason)."""

    ksp: Any
    options: _Options


def _ksp(M: Any, defaults: str, options: Options, rtol: float, atol: float) -> _Krylov:
    """A KSP on M set up from the defaults, then ``options``, then the command line."""
    P = petsc()
    ksp = P.KSP().create(M.comm)
    ksp.setOperators(M)
    opts = _Options(defaults, options, " ".join(_command_line))
    with opts:
        ksp.setTolerances(rtol=rtol, atol=atol, max_it=10000)
        ksp.setFromOptions()
        ksp.setUp()
    return _Krylov(ksp, opts)


def _solve(solver: _Krylov, b: Any, x: Any, what: str) -> int:
    ksp = solver.ksp
    with solver.options:
        ksp.solve(b, x)
    reason = ksp.getConvergedReason()
    if reason < 0:
        raise NumericalError(f"PETSc {what}: KSP {ksp.getType()}/{ksp.getPC().getType()} did not converge "
                             f"(reason {reason}, {ksp.getIterationNumber()} iterations, residual "
                             f"{ksp.getResidualNorm():.3g}); set other [solver] petsc_options")
    return ksp.getIterationNumber()


class PetscLinearStepper:
    """beuler | bdf2 | cn for y' = A y with a constant sparse A, on PETSc.

    beuler and cn run as a PETSc TS (types ``beuler``, ``cn``; problem type
    linear, SNES ``ksponly``: one KSP solve per step on shift I - A, the constant
    right-hand-side Jacobian A copied into TS's work matrix before each shift),
    so TS options apply (``-ts_monitor``, even ``-ts_type`` — which changes the
    scheme). bdf2 (started by one Crank-Nicolson step, like the built-in one;
    PETSc's TS ``bdf`` starts with backward Euler instead) runs its own KSP
    solves on the matrices I - c dt A assembled once.

    The state lives in a distributed PETSc vector between :meth:`set_state` and
    :meth:`gather`; :meth:`advance` takes any number of steps without gathering.
    """

    COEF = {"beuler": 1.0, "cn": 0.5, "bdf2": 2.0 / 3.0}
    DEFAULTS = "-ksp_type gmres -ksp_gmres_restart 60"
    TS_DEFAULTS = "-ts_adapt_type none -snes_type ksponly"

    def __init__(self, name: str, A: Matrix, dt: float, comm: Any = None, options: Options = "",
                 rtol: float = 1e-12, atol: float = 1e-300) -> None:
        if name not in self.COEF:
            raise ValueError(f"unknown linear stepper {name!r}; one of beuler, bdf2, cn")
        self.name, self.dt = name, float(dt)
        A = sp.csr_matrix(A, dtype=float)
        n = A.shape[0]
        eye = sp.identity(n, format="csr")
        self.A = to_petsc(A, comm)
        self._ksp: dict[str, _Krylov] = {}
        self._ts: Any = None
        if name == "bdf2":
            for kind in ("cn", "bdf2"):
                M = to_petsc(eye - (self.COEF[kind] * self.dt) * A, comm)
                self._ksp[kind] = _ksp(M, self.DEFAULTS, options, rtol, atol)
        else:
            self._ts = self._make_ts(name, options, rtol, atol)
        self.y: Any = None
        self.prev: Any = None
        self.rhs = self.A.createVecLeft()
        self.work = self.A.createVecLeft()
        self.steps = 0
        self.iterations = 0

    @property
    def comm_size(self) -> int:
        return self.A.comm.getSize()

    def set_state(self, y: npt.ArrayLike) -> None:
        if self.y is not None:
            self.y.destroy()
        self.y = _vec_from(self.A, y)
        self.prev = None

    def gather(self) -> Array:
        return gather_vec(self.y)

    def _make_ts(self, name: str, options: Options, rtol: float, atol: float) -> Any:
        P = petsc()
        A = self.A
        ts = P.TS().create(A.comm)
        ts.setProblemType(P.TS.ProblemType.LINEAR)
        ts.setType(name)
        ts.setRHSFunction(lambda ts, t, u, F: A.mult(u, F), A.createVecLeft())
        # TS shifts its Jacobian matrix in place (shift I - J), so it gets a copy of A, refreshed
        # from A whenever TS asks for the right-hand-side Jacobian
        J = A.duplicate(copy=True)
        same = P.Mat.Structure.SAME_NONZERO_PATTERN
        ts.setRHSJacobian(lambda ts, t, u, Jm, Pm: A.copy(Jm, structure=same), J, J)
        ts.setTimeStep(self.dt)
        ts.setMaxTime(1e300)
        ts.setExactFinalTime(P.TS.ExactFinalTime.MATCHSTEP)
        ts.setErrorIfStepFails(False)
        opts = _Options(self.TS_DEFAULTS, self.DEFAULTS, options, " ".join(_command_line))
        with opts:
            ts.getSNES().getKSP().setTolerances(rtol=rtol, atol=atol, max_it=10000)
            ts.setFromOptions()
        self._ts_options, self._J = opts, J
        return ts

    def ksp_description(self) -> str:
        k = self._ts.getSNES().getKSP() if self._ts is not None else next(iter(self._ksp.values())).ksp
        return f"{k.getType()}/{k.getPC().getType()}"

    def ts_description(self) -> str:
        """The TS type (``none`` for bdf2, which runs its own KSP solves)."""
        return self._ts.getType() if self._ts is not None else "none"

    def _ts_advance(self, nsteps: int, progress: Progress | None) -> None:
        ts = self._ts
        ksp = ts.getSNES().getKSP()
        monitor = None
        if progress is not None:
            def monitor(ts: Any, step: int, t: float, u: Any) -> None:
                if step > self.steps:
                    progress(1)
            ts.setMonitor(monitor)
        try:
            ts.setStepNumber(self.steps)
            ts.setMaxSteps(self.steps + int(nsteps))
            with self._ts_options:
                ts.solve(self.y)
        finally:
            if monitor is not None:
                ts.monitorCancel()
        self.iterations = ts.getKSPIterations()
        if ts.getConvergedReason() < 0:
            raise NumericalError(
                f"PETSc {self.name} step: KSP {ksp.getType()}/{ksp.getPC().getType()} did not converge "
                f"(reason {ksp.getConvergedReason()}, {ksp.getIterationNumber()} iterations, residual "
                f"{ksp.getResidualNorm():.3g}; TS reason {ts.getConvergedReason()}); set other "
                "[solver] petsc_options")
        self.steps = ts.getStepNumber()

    def _step(self) -> None:
        y, rhs, dt = self.y, self.rhs, self.dt
        new = y.duplicate()
        if self.name == "beuler":
            y.copy(rhs)
            kind = "beuler"
        elif self.name == "cn" or self.prev is None:
            self.A.mult(y, rhs)          # rhs = y + dt/2 A y
            rhs.aypx(0.5 * dt, y)
            kind = "cn"
        else:                            # bdf2: (4 y_n - y_{n-1}) / 3
            rhs.set(0.0)
            rhs.axpy(4.0 / 3.0, y)
            rhs.axpy(-1.0 / 3.0, self.prev)
            kind = "bdf2"
        new.set(0.0)
        self.iterations += _solve(self._ksp[kind], rhs, new, f"{self.name} step")
        if self.prev is not None:
            self.prev.destroy()
        self.prev, self.y = y, new
        self.steps += 1

    def advance(self, nsteps: int, progress: Progress | None = None) -> None:
        if self._ts is not None:
            self._ts_advance(nsteps, progress)
        for _ in range(0 if self._ts is not None else int(nsteps)):
            self._step()
            if progress is not None:
                progress(1)
        norm = self.y.norm()
        if not np.isfinite(norm):
            raise NumericalError(f"{self.name} (PETSc): non-finite state after step {self.steps}")

    def destroy(self) -> None:
        if self._ts is not None:
            self._ts.destroy()
            self._J.destroy()
        for solver in self._ksp.values():
            k = solver.ksp
            k.getOperators()[0].destroy()
            k.destroy()
        for v in (self.A, self.y, self.prev, self.rhs, self.work):
            if v is not None:
                v.destroy()


#: GAMG with one Richardson/ILU(0) smoothing step per level (block ILU under MPI): GAMG's default
#: Chebyshev/Jacobi smoother diverges on drift-dominated and rotating (non-gradient) generators,
#: ILU smoothing converges in ~10-15 iterations on every shipped case and on 1024^2
STEADY_DEFAULTS = ("-ksp_type gmres -ksp_gmres_restart 100 -pc_type gamg -mg_levels_ksp_type richardson "
                   "-mg_levels_ksp_max_it 1 -mg_levels_pc_type bjacobi -mg_levels_sub_pc_type ilu")


def steady_state(A: Matrix, weights: npt.ArrayLike, total: float = 1.0, comm: Any = None, options: Options = "",
                 rtol: float = 1e-12, atol: float = 1e-300) -> tuple[Array, float, dict[str, Any]]:
    """The null vector p of A with weights . p = total, by KSP (default GMRES + GAMG).

    One value p_r is pinned to 1 (row and column r eliminated, the column moved to
    the right-hand side), the rest solved for, then p is normalised. The pinned
    value must be among the largest of p (a density may span 20 decades; pinned in
    a tail the system is hopelessly scaled), so r is the peak of a detailed-balance
    estimate (:func:`solvers.linear.density_peak`); r moves once more to the largest entry of the first
    solution when that is much larger than p_r. Returns (p, residual, info) with the residual
    ||A p||_max / (||A||_max ||p||_max) as :func:`solvers.linear.steady_state` and
    info = {iterations, ksp, pc}."""
    A = sp.csr_matrix(A, dtype=float)
    weights = np.asarray(weights, dtype=float).ravel()
    r = density_peak(A)
    p, iters, desc = _pinned_solve(A, r, comm, options, rtol, atol)
    r2 = int(np.argmax(np.abs(p)))
    if abs(p[r2]) > 1e3 * abs(p[r]):
        p2, it2, desc = _pinned_solve(A, r2, comm, options, rtol, atol, guess=p / p[r2])
        p, iters = p2, iters + it2
    s = weights @ p
    if not np.isfinite(s) or s == 0:
        raise NumericalError("steady state (PETSc): zero or non-finite mass (is the generator reducible?)")
    p = p * (total / s)
    scale = abs(A).max() * np.abs(p).max()
    resid = float(np.abs(A @ p).max() / scale) if scale > 0 else 0.0
    return p, resid, {"iterations": iters, "ksp": desc[0], "pc": desc[1]}


def _pinned_solve(A: Matrix, r: int, comm: Any, options: Options, rtol: float, atol: float,
                  guess: Array | None = None) -> tuple[Array, int, tuple[str, str]]:
    n = A.shape[0]
    M, b = pinned_system(A, r)
    Mp = to_petsc(M, comm)
    solver = _ksp(Mp, STEADY_DEFAULTS, options, rtol, atol)
    ksp = solver.ksp
    bv = _vec_from(Mp, b)
    x = _vec_from(Mp, guess if guess is not None else np.zeros(n))
    if guess is not None:
        ksp.setInitialGuessNonzero(True)
    it = _solve(solver, bv, x, "steady state")
    p = gather_vec(x)
    desc = (ksp.getType(), ksp.getPC().getType())
    for o in (ksp, Mp, bv, x):
        o.destroy()
    return p, it, desc
