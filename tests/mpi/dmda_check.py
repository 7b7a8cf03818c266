"""Run under mpiexec -n P (or alone): checks GridDM on this communicator, prints OK on rank 0."""
import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solvers.petsc_dmda import GridDM


def laplacian(cells, periodic):
    mats = []
    for n, p in zip(cells, periodic):
        L = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n), format="lil")
        if p:
            L[0, n - 1] = L[n - 1, 0] = 1.0
        mats.append(L.tocsr())
    A = None
    for d, L in enumerate(mats):
        term = L
        for e, n in enumerate(cells):
            if e < d:
                term = sp.kron(sp.identity(n), term)
            elif e > d:
                term = sp.kron(term, sp.identity(n))
        A = term if A is None else A + term
    return A.tocsr()


def check(cells, periodic, ghost):
    comm = MPI.COMM_WORLD
    g = GridDM(cells, periodic, ghost=ghost, comm=comm)
    rng = np.random.default_rng(1)
    whole = rng.standard_normal(cells)
    v = g.scatter(whole)
    assert np.array_equal(g.gather(v), whole)
    root = g.gather(v, root_only=True)
    assert (root is None) == (comm.Get_rank() != 0)
    if root is not None:
        assert np.array_equal(root, whole)
    # ghosts: the padded block of the whole array (wrapped on periodic axes)
    loc = g.local_vec()
    g.update_ghosts(v, loc)
    la = g.local_array(loc)
    idx = []
    for s, n, p in zip(g.owned, cells, periodic):
        i = np.arange(s.start - ghost, s.stop + ghost)
        idx.append(i % n if p else np.clip(i, 0, n - 1))
    ref = whole[np.ix_(*idx)]
    # compare the star (at most one axis outside the owned block), except the physical-boundary padding
    outside = sum(((np.arange(n) < ghost) | (np.arange(n) >= n - ghost)).reshape(
        [n if e == d else 1 for e in range(len(cells))]) for d, n in enumerate(g.local_shape))
    mask = np.broadcast_to(outside <= 1, g.local_shape).copy()
    for d, (lo, hi) in enumerate(g.at_boundary):
        sl = [slice(None)] * len(cells)
        if lo:
            sl[d] = slice(0, ghost)
            mask[tuple(sl)] = False
        if hi:
            sl[d] = slice(g.local_shape[d] - ghost, None)
            mask[tuple(sl)] = False
    assert np.array_equal(la[mask], ref[mask]), (cells, periodic)
    assert np.array_equal(la[g.interior], whole[g.owned])
    # an assembled matrix acts like the scipy one
    A = laplacian(cells, periodic)
    M = g.to_petsc_matrix(A)
    y = g.global_vec()
    M.mult(v, y)
    assert np.allclose(g.gather(y), (A @ whole.ravel()).reshape(cells), atol=1e-13)
    for o in (M, y, v, loc):
        o.destroy()
    g.destroy()


for cells, periodic, ghost in [((7,), (False,), 2), ((6,), (True,), 3), ((6, 5), (True, False), 1),
                               ((5, 8), (False, False), 3), ((4, 3, 5), (False, True, False), 1)]:
    check(cells, periodic, ghost)
if MPI.COMM_WORLD.Get_rank() == 0:
    print("OK", MPI.COMM_WORLD.Get_size())
sys.stdout.flush()
