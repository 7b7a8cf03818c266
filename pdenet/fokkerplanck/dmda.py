"""Forward Euler for the Fokker-Planck operator on a PETSc DMDA (``[solver] backend = "petsc"``,
stepper ``explicit``), on one rank or spread over the ranks of an MPI communicator.

The density lives in a :class:`solvers.petsc_dmda.GridDM` global vector (one ghost cell, star
stencil: the scheme is dimension by dimension). A step is

1. ``update_ghosts``: the owned block into the rank's ghosted local array, the ghosts shared
   with other ranks and the periodic wrap filled by PETSc; the padding beyond a physical
   boundary stays 0 (set once), which is exactly the serial kernel's boundary rule: a
   no-flux face has zero coefficients and an absorbing face reads a zero ghost;
2. one pass of :func:`~pdenet.fokkerplanck.fv._fp_euler_local` over the owned cells, which
   computes each cell with the serial kernel's own per-cell function
   (:func:`~pdenet.fokkerplanck.fv._fp_cell`) from the face coefficients of the same
   :class:`~pdenet.fokkerplanck.fv.FokkerPlanckOperator`, sliced to the rank's block.

The arithmetic per cell is the serial one, operation for operation, so the result agrees
with :meth:`FokkerPlanckOperator.explicit_steps` to round-off (in practice bit for bit).
Absorbing cells (the ``keep`` mask) are sliced the same way. Full diffusion tensors (cross
terms) are not supported here.
"""
import numpy as np

from solvers.petsc_dmda import GridDM

from .fv import _fp_euler_local, _pad3


class DmdaEuler:
    """Forward Euler ``rho <- rho + dt A rho`` of ``op`` on a DMDA over ``comm``.

    ``set_state(rho)`` (the whole grid, on every rank), ``advance(nsteps, dt)``,
    ``gather(root_only)``, ``all_finite()`` (collective), ``destroy()``."""

    def __init__(self, op, comm=None):
        if op.has_cross_terms:
            raise ValueError("DmdaEuler: a full diffusion tensor (cross terms) is not supported")
        self.op = op
        mesh, nd = op.mesh, op.ndim
        self.grid = g = GridDM(mesh.cells, op.periodic, ghost=1, comm=comm)
        self.g = [g.global_vec(), g.global_vec()]
        self.loc = g.local_vec()
        self.loc.set(0.0)          # the padding beyond physical boundaries stays 0
        lead = 3 - nd
        self._loc3 = g.local_array(self.loc).reshape((1,) * lead + g.local_shape)
        self._own3 = [g.owned_array(v).reshape((1,) * lead + g.owned_shape) for v in self.g]
        # the operator's face coefficients of the owned block (faces start .. stop along d)
        k = []
        for a in range(3):
            d = a - lead
            if d < 0:
                k += [op._k[2 * a], op._k[2 * a + 1]]
                continue
            sl = list(g.owned)
            sl[d] = slice(g.owned[d].start, g.owned[d].stop + 1)
            k += [_pad3(op.cL[d][tuple(sl)]), _pad3(op.cR[d][tuple(sl)])]
        self._k = k
        self._off = np.array([0] * lead + [1] * nd, dtype=np.int64)
        self._has_keep = op.absorbing is not None
        self._keep = _pad3((~op.absorbing)[g.owned]) if self._has_keep else np.ones((1, 1, 1))
        self.cur = 0

    @property
    def vec(self):
        """The global vector holding the current state."""
        return self.g[self.cur]

    def set_state(self, rho):
        self.grid.scatter(rho, self.vec)

    def exchange_ghosts(self):
        """The first half of a step: the current state's owned block into the ghosted local array."""
        self.grid.update_ghosts(self.g[self.cur], self.loc)

    def kernel_pass(self, dt):
        """The second half of a step: one pass of the kernel over the owned cells, from the
        ghosted local array into the other buffer (the current state is not switched; a
        profiling hook, :meth:`advance` is the step)."""
        op = self.op
        _fp_euler_local(self._loc3, self._own3[1 - self.cur], *self._k, op._inv_h, op._active,
                        self._off, self._keep, self._has_keep, float(dt))

    def advance(self, nsteps, dt):
        """``nsteps`` forward-Euler steps of size ``dt`` (each: ghost exchange + one kernel pass)."""
        dt = float(dt)
        for _ in range(int(nsteps)):
            self.exchange_ghosts()
            self.kernel_pass(dt)
            self.g[1 - self.cur].stateIncrease()   # written through a numpy view
            self.cur = 1 - self.cur

    def gather(self, root_only=True):
        """The whole grid (on rank 0 only with ``root_only``; None elsewhere)."""
        return self.grid.gather(self.vec, root_only=root_only)

    def all_finite(self):
        """Is the state finite on every rank (collective)."""
        ok = bool(np.all(np.isfinite(self._own3[self.cur])))
        from mpi4py import MPI

        comm = self.grid.comm.tompi4py()
        return bool(comm.allreduce(ok, op=MPI.LAND)) if comm.Get_size() > 1 else ok

    def destroy(self):
        for v in (*self.g, self.loc):
            v.destroy()
        self.grid.destroy()
