"""Structured grids distributed with a PETSc DMDA, seen in the axis order of a numpy array.

:class:`GridDM` wraps a DMDA for a cell-centred box of ``cells = (n1, ..., nd)``
(d = 1, 2, 3) whose whole-grid arrays are C-ordered numpy arrays of that shape
(the last axis fastest). PETSc's DMDA orders its x index fastest, so the DMDA's
x, y, z are the numpy axes d-1, ..., 0: a global vector in PETSc's *natural*
ordering is exactly ``array.ravel()``.

Every rank owns one box of cells (:attr:`owned`, slices into the whole grid)
and sees it padded by ``ghost`` cells on every side (:meth:`local_array`):

* periodic axes: the ghosts wrap around (filled by :meth:`update_ghosts`);
* other axes: the DMDA is ``GHOSTED``, so a rank at the physical boundary still
  gets ``ghost`` layers of padding there, which :meth:`update_ghosts` leaves
  alone: the caller fills them with its boundary rule (extrapolation, a
  reflection for no-flux, ...) before running its kernels. With uniform padding
  every kernel loops over the owned cells only and reads neighbours without
  branching on where the rank sits.

Conversions: :meth:`scatter` (a whole array, present on every rank, into a
global vector), :meth:`gather` (a global vector into the whole array, on every
rank or only on rank 0), :meth:`to_petsc_matrix` (a scipy sparse matrix in
natural ordering into a distributed AIJ matrix in the DMDA's ordering, for
assembled Jacobians). Nothing here imports pdenet.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .petsc_backend import _comm, petsc
from .protocol import Array, Matrix


class GridDM:
    """A DMDA over ``cells`` with ``ghost`` padding cells (see the module docstring).

    ``periodic``: one flag per axis (numpy order). ``stencil``: ``"star"``
    (axis neighbours only, enough for dimension-by-dimension schemes) or
    ``"box"`` (corners too, for cross derivatives). ``comm``: an mpi4py or
    PETSc communicator (None: this process alone).
    """

    def __init__(self, cells: Sequence[int], periodic: Sequence[bool], ghost: int = 1, comm: Any = None,
                 stencil: str = "star") -> None:
        P = petsc()
        self.cells = tuple(int(n) for n in cells)
        self.ndim = len(self.cells)
        if not 1 <= self.ndim <= 3:
            raise ValueError(f"GridDM: 1 to 3 dimensions, got {self.ndim}")
        self.periodic = tuple(bool(p) for p in periodic)
        if len(self.periodic) != self.ndim:
            raise ValueError("GridDM: one periodic flag per axis")
        self.ghost = int(ghost)
        if min(self.cells) < max(self.ghost, 1):
            raise ValueError(f"GridDM: every axis needs at least {self.ghost} cells")
        BT = P.DM.BoundaryType
        kind = {"star": P.DMDA.StencilType.STAR, "box": P.DMDA.StencilType.BOX}[stencil]
        self.da = P.DMDA().create(
            dim=self.ndim, dof=1, sizes=self.cells[::-1],
            boundary_type=tuple(BT.PERIODIC if p else BT.GHOSTED for p in self.periodic[::-1]),
            stencil_type=kind, stencil_width=self.ghost, comm=_comm(comm))
        self.comm = self.da.getComm()
        ranges = self.da.getRanges()[::-1]
        #: the owned block, as slices of the whole grid (numpy axis order)
        self.owned = tuple(slice(a, b) for a, b in ranges)
        self.owned_shape = tuple(b - a for a, b in ranges)
        #: the owned block inside the padded local array
        self.interior = tuple(slice(self.ghost, self.ghost + n) for n in self.owned_shape)
        self.local_shape = tuple(n + 2 * self.ghost for n in self.owned_shape)
        #: (at the lower end, at the upper end) of each axis: does this rank touch the physical boundary
        self.at_boundary = tuple((a == 0 and not p, b == n and not p)
                                 for (a, b), n, p in zip(ranges, self.cells, self.periodic))
        self._to_all: Any = None
        self._natural: Any = None

    @property
    def size(self) -> int:
        return int(np.prod(self.cells))

    @property
    def rank(self) -> int:
        return self.comm.getRank()

    # -- vectors ---------------------------------------------------------------
    def global_vec(self) -> Any:
        return self.da.createGlobalVec()

    def local_vec(self) -> Any:
        return self.da.createLocalVec()

    def owned_array(self, vec: Any) -> Array:
        """The owned block of a global vector as a writable numpy view (numpy axis order)."""
        return vec.getArray().reshape(self.owned_shape)

    def local_array(self, vec: Any) -> Array:
        """A local (ghosted) vector as a writable numpy view of shape :attr:`local_shape`."""
        return vec.getArray().reshape(self.local_shape)

    def update_ghosts(self, gvec: Any, lvec: Any) -> None:
        """Copy the owned values into ``lvec`` and fill the ghosts shared with other ranks (and
        the periodic wrap); the ghosts beyond a physical boundary are left to the caller."""
        self.da.globalToLocal(gvec, lvec)

    def scatter(self, whole: npt.ArrayLike, vec: Any = None) -> Any:
        """A whole-grid array (on every rank) -> a global vector (each rank copies its block)."""
        whole = np.asarray(whole, dtype=float).reshape(self.cells)
        vec = self.global_vec() if vec is None else vec
        self.owned_array(vec)[...] = whole[self.owned]
        return vec

    def gather(self, vec: Any, root_only: bool = False) -> Array | None:
        """A global vector -> the whole-grid numpy array (C order). On every rank, or with
        ``root_only`` on rank 0 (the other ranks get None, which saves the all-to-all)."""
        P = petsc()
        if self.comm.getSize() == 1:
            return vec.getArray().reshape(self.cells).copy()
        if self._natural is None:
            self._natural = self.da.createNaturalVec()
        self.da.globalToNatural(vec, self._natural)
        if root_only:
            scatter, full = P.Scatter.toZero(self._natural)
        else:
            if self._to_all is None:
                self._to_all = P.Scatter.toAll(self._natural)
            scatter, full = self._to_all
        scatter.scatter(self._natural, full, P.InsertMode.INSERT, P.ScatterMode.FORWARD)
        out = full.getArray().reshape(self.cells).copy() if (not root_only or self.rank == 0) else None
        if root_only:
            scatter.destroy()
            full.destroy()
        return out

    # -- matrices --------------------------------------------------------------
    def natural_indices(self) -> npt.NDArray[np.intp]:
        """Natural (``ravel``) index of each owned unknown, in the DMDA's (PETSc) order."""
        grids = np.meshgrid(*[np.arange(s.start, s.stop) for s in self.owned], indexing="ij")
        return np.ravel_multi_index(tuple(g.ravel() for g in grids), self.cells)

    def to_petsc_matrix(self, A: Matrix) -> Any:
        """A scipy sparse matrix in natural ordering (rows and columns = ``ravel`` indices of the
        whole grid, present on every rank) -> a distributed AIJ matrix in the DMDA's ordering;
        each rank inserts its own rows. The DMDA's preallocation is not used (the sparsity
        is A's), so any stencil width works."""
        P = petsc()
        A = sp.csr_matrix(A, dtype=float)
        n = self.size
        if A.shape != (n, n):
            raise ValueError(f"GridDM.to_petsc_matrix: expected {n}x{n}, got {A.shape}")
        mine = self.natural_indices()
        ao = self.da.getAO()
        local = A[mine]
        cols = ao.app2petsc(local.indices.astype(P.IntType))
        # CSR rows must be sorted by column for PETSc
        order = np.lexsort((cols, np.repeat(np.arange(local.shape[0]), np.diff(local.indptr))))
        M = P.Mat().createAIJ(size=((mine.size, n), (mine.size, n)),
                              csr=(local.indptr.astype(P.IntType), np.asarray(cols)[order].astype(P.IntType),
                                   local.data[order]), comm=self.comm)
        M.assemble()
        return M

    def destroy(self) -> None:
        for obj in (self._natural, *(self._to_all or ())):
            if obj is not None:
                obj.destroy()
        self.da.destroy()
