"""The Hamilton-Jacobi scheme on PETSc (``[solver] backend = "petsc"``).

The state u lives in a global vector of a :class:`solvers.petsc_dmda.GridDM`
(cells split in boxes over the ranks) padded by ``kernels.ghost_width`` cells
(3 for WENO5, 1 or 2 for first order). The right-hand side
-H_hat(D-u, D+u) [+ nu Lap_h u] is evaluated on each rank's ghosted local array:
the DMDA fills the ghosts of other ranks and the periodic wrap, the padding beyond
an extrapolated boundary is filled by the serial boundary rule
(:func:`pdenet.hj.kernels.extrapolate_padding`, the quadratic of ``_ghost``), then
:func:`pdenet.hj.kernels.padded_derivatives` runs the same per-point arithmetic as
the serial line kernels over the owned cells, and the serial numerical-Hamiltonian
kernels run on the owned cells. The step size is the serial CFL rule
(:meth:`HJScheme.dt_from_speed`) with the speeds maximised over all ranks, so a run
takes the same steps as the built-in backend.

Steppers: ``ssp-rk3`` (Shu-Osher SSP-RK3 as a TS, the built-in scheme: same
answers to round-off), ``euler`` (TS euler) and ``imex`` (TS arkimex: -H explicit,
nu Lap_h u implicit with the assembled Jacobian shift I - nu L; a different IMEX
tableau than the built-in ARS(2,2,2), so the two agree to the time-discretisation
error, not to round-off). See docs/hamilton-jacobi.md.
"""
import math

import numpy as np

from . import kernels as K

#: the steppers that backend = "petsc" runs, and the TS method of each
PETSC_STEPPERS = {"ssp-rk3": "ssp-rk3", "euler": "euler", "imex": "arkimex"}


class PetscHJ:
    """One HJScheme stepped on PETSc (see the module docstring). ``comm``: mpi4py
    communicator or None; ``options``: the case file's PETSc options; ``rtol``: tolerance of
    the implicit (arkimex) linear solves; ``dt``: a fixed step (default: the CFL step).

    It is an adaptive system of :func:`solvers.march.march`: the state stays distributed in the
    TS between saves (:meth:`set_state` before marching) and :meth:`advance_to` returns the
    gathered u."""

    def __init__(self, scheme, comm=None, options="", rtol=1e-12, dt=None):
        from solvers.petsc_dmda import GridDM
        from solvers.petsc_grid_ts import GridTS

        if scheme.general is not None:
            raise ValueError("a general Hamiltonian runs on the built-in backend")
        if scheme.stepper not in PETSC_STEPPERS:
            raise ValueError(f"stepper {scheme.stepper!r} runs on the built-in backend")
        self.scheme = s = scheme
        self.g = K.ghost_width(s.order, s.lap_order)
        grid = self.grid = GridDM(s.shape, s.periodic, ghost=self.g, comm=comm)
        for d, (lo, hi) in enumerate(grid.at_boundary):
            if (lo or hi) and grid.owned_shape[d] < 3:
                grid.destroy()
                raise ValueError(f"a rank at the boundary of dimension {d + 1} owns {grid.owned_shape[d]} cells; "
                                 "the boundary rule needs 3 (use fewer ranks or more cells)")
        nd = s.ndim
        self.pad3 = (1,) * (3 - nd) + grid.local_shape
        own3 = (1,) * (3 - nd) + grid.owned_shape
        N = math.prod(grid.owned_shape)
        self.dm = np.empty((nd, N))
        self.dp = np.empty((nd, N))
        self.lap = np.empty(N)
        self.hhat = np.empty(N)
        self.speed = np.zeros(nd)
        self.dm4 = self.dm.reshape((nd,) + own3)
        self.dp4 = self.dp.reshape((nd,) + own3)
        self.lap3 = self.lap.reshape(own3)
        if s.has_drift:
            whole = s.drift.reshape((nd,) + s.shape)
            self.drift = np.ascontiguousarray(whole[(slice(None),) + grid.owned].reshape(nd, N))
        else:
            self.drift = s.drift
        self.h = np.asarray(s.h, dtype=float)
        self.kernel = K.godunov_quadratic if s.flux == "godunov" else K.llf_quadratic
        self.lap_order = s.lap_order if s.nu_explicit > 0.0 else 0
        self.method = PETSC_STEPPERS[s.stepper]
        implicit = s.nu * s.laplacian_matrix() if self.method == "arkimex" else None
        self.ts = GridTS(grid, self._explicit, self.method, implicit=implicit, options=options, rtol=rtol)
        self._mpi = grid.comm.tompi4py() if grid.comm.getSize() > 1 else None
        self.dt = dt
        self.steps = 0

    def _explicit(self, padded, t, out):
        s, grid, g = self.scheme, self.grid, self.g
        for d in range(s.ndim):
            lo, hi = grid.at_boundary[d]
            if lo or hi:
                K.extrapolate_padding(K.as3(padded, d), g, lo, hi)
        K.padded_derivatives(padded.reshape(self.pad3), g, self.h, s.order, self.lap_order,
                             self.dm4, self.dp4, self.lap3)
        self.kernel(self.dm, self.dp, s.a, self.drift, s.has_drift, self.hhat, self.speed)
        flat = out.reshape(-1)
        if s.nu_explicit > 0.0:
            K.axpy_rhs(self.hhat, self.lap, s.nu_explicit, flat)
        else:
            np.negative(self.hhat, out=flat)

    def max_dt(self, t):
        """The serial CFL step (:meth:`HJScheme.max_dt`) with |dH/dp| maximised over the ranks."""
        self.ts.explicit_rhs(t)
        speed = self.speed.copy()
        if self._mpi is not None:
            from mpi4py import MPI

            self._mpi.Allreduce(MPI.IN_PLACE, speed, op=MPI.MAX)
        return self.scheme.dt_from_speed(speed)

    def set_state(self, u, t=0.0):
        self.ts.set_state(u, t)

    def advance(self, t1, dt_fixed=None):
        """Step to t1 (the CFL step, or ``dt_fixed``); returns the number of steps."""
        dt_of = (lambda t: dt_fixed) if dt_fixed else self.max_dt
        return self.ts.advance(t1, dt_of)

    def advance_to(self, state: np.ndarray | None, t0: float, t1: float) -> tuple[np.ndarray, int]:
        """Step the distributed state (``state``, the last gathered copy, is not read) to t1;
        returns (gathered u, steps)."""
        n = self.advance(t1, self.dt)
        self.steps += n
        return self.gather(), n

    def gather(self):
        return self.ts.gather().reshape(self.scheme.shape)

    @property
    def evaluations(self):
        return self.ts.evaluations

    def description(self):
        return self.ts.description()

    def ranks(self):
        return self.grid.comm.getSize()

    def destroy(self):
        self.ts.destroy()
        self.grid.destroy()
