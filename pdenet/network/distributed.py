"""Data-parallel evaluation of the network PDE over MPI ranks (``[solver] backend = "petsc"``).

The loss is an average over samples, J = (1/S) sum_s Phi_s (+ the Tikhonov term),
and the forward and co-state solves of different samples never interact (the
kernel B and the controls are shared, the states are not). So the samples are
split in contiguous blocks over the ranks (:func:`block`), every rank runs the
forward and discrete-adjoint solves of its block with the *global* 1/S
(:meth:`NetworkPDE.loss_and_gradient` with ``samples=S``), which makes its loss
and gradient its exact share of the global sums, and one ``Allreduce`` of a
single packed buffer (loss, metric sums, every gradient entry) gives every rank
the full loss and gradient. The Tikhonov term is added once, after the sum.
Every rank then takes the same optimiser step on the same (replicated)
parameters, so the parameters stay identical on all ranks without ever being
sent.

Only an mpi4py communicator is needed: no PETSc object, because there is no
distributed vector or matrix here, just a sum of per-rank arrays (PETSc's
``comm.tompi4py()`` is one too). The data set is loaded on every rank (it is
small next to the states and tapes, which are per rank).

:class:`RowDistributedDense` (``[solver] distribute = "rows"``) distributes the
other way round: every rank holds all samples (the states are replicated) and
a contiguous block of *rows* of the dense kernel b, so that a label mesh too
large for one rank's memory (b is K N^2 doubles) still runs. See
``docs/parallel.md``.
"""
import numpy as np

__all__ = ["block", "counts", "DataParallel", "parallel", "RowDistributedDense", "normal_rows"]


def counts(n, size):
    """Samples per rank: n split in ``size`` contiguous blocks, the first n % size one larger."""
    q, r = divmod(int(n), int(size))
    return np.array([q + (1 if i < r else 0) for i in range(size)], dtype=int)


def block(n, rank, size):
    """The slice of samples 0..n-1 that ``rank`` of ``size`` holds."""
    c = counts(n, size)
    start = int(c[:rank].sum())
    return slice(start, start + int(c[rank]))


def parallel(comm):
    """True for a communicator of more than one rank."""
    return comm is not None and comm.Get_size() > 1


class DataParallel:
    """A :class:`~pdenet.network.pde.NetworkPDE` whose samples are split over ``comm``.

    :meth:`loss` and :meth:`loss_and_gradient` take the *global* sample arrays
    (every rank passes the same ones), run the rank's block and return the
    global loss, gradient and metrics on every rank; ``fT`` is the rank's block.
    """

    def __init__(self, net, comm):
        self.net, self.comm = net, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def share(self, n):
        return block(n, self.rank, self.size)

    # -- reductions ---------------------------------------------------------------
    def _allreduce(self, buf):
        from mpi4py import MPI

        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf

    def _reduce(self, J, metrics, n_local, S, grad=None):
        """Global (J, metrics, grad) from this rank's share: one Allreduce of a packed buffer."""
        names = self.net.head.metric_names
        parts = [np.array([J]), np.array([metrics.get(k, 0.0) * n_local for k in names])]
        if grad is not None:
            parts += [np.ravel(g) for g in grad.values()]
        buf = self._allreduce(np.concatenate(parts))
        J, m = float(buf[0]), {k: float(buf[1 + i]) / S for i, k in enumerate(names)}
        if grad is not None:
            pos = 1 + len(names)
            for name, g in grad.items():
                g[...] = buf[pos:pos + g.size].reshape(g.shape)
                pos += g.size
        return J, m

    # -- the network's evaluation interface, data parallel --------------------
    def loss(self, f0, target):
        net, S = self.net, f0.shape[0]
        sl = self.share(S)
        n = sl.stop - sl.start
        J, metrics = net.loss(f0[sl], target[sl], samples=S, regularise=False) if n else (0.0, {})
        J, metrics = self._reduce(J, metrics, n, S)
        return J + 0.5 * net.tikhonov * net.regulariser(), metrics

    def loss_and_gradient(self, f0, target, keep="all", on_state=None, on_costate=None, progress=None):
        net, S = self.net, f0.shape[0]
        sl = self.share(S)
        n = sl.stop - sl.start
        if n:
            J, grad, metrics, fT = net.loss_and_gradient(f0[sl], target[sl], keep, on_state, on_costate,
                                                         progress, samples=S, regularise=False)
        else:   # a mini-batch smaller than the ranks: this rank adds nothing (no callbacks either)
            J, grad, metrics, fT = 0.0, net.zero_grad(), {}, np.empty((0, net.N))
        J, metrics = self._reduce(J, metrics, n, S, grad)
        J += 0.5 * net.tikhonov * net.regulariser()
        net._add_regulariser_grad(grad)
        return J, grad, metrics, fT

    # -- output -----------------------------------------------------------------------
    def gather(self, local, S):
        """Rank 0: the (S, ...) array of all blocks in global sample order; other ranks: None."""
        local = np.ascontiguousarray(local, dtype=float)
        row = int(np.prod(local.shape[1:]))
        sizes = counts(S, self.size) * row
        out = np.empty((S,) + local.shape[1:]) if self.rank == 0 else None
        recv = [out, (sizes, np.concatenate([[0], np.cumsum(sizes)[:-1]])), _double()] if self.rank == 0 else None
        self.comm.Gatherv([local, _double()], recv, root=0)
        return out


def _double():
    from mpi4py import MPI

    return MPI.DOUBLE


# -- a dense kernel whose rows are distributed ------------------------------------------------
class RowDistributedDense:
    """The dense operator of :class:`~pdenet.network.operators.DenseOperator` with b's rows split.

    Rank r of ``comm`` stores only ``b[:, rows, :]`` (``rows = block(N, r, P)``),
    shape (K, n_r, N): memory K N^2 / P per rank. The states f (S, N) are
    replicated (every rank holds every sample), so

    * ``raw(f, k)`` = B_k f: each rank computes its rows b_loc f^T (n_r, S) and one
      ``Allgatherv`` assembles the (N, S) product on every rank;
    * ``raw_T(w, k)`` = w b_k = sum over ranks of w[:, rows] b_loc: one ``Allreduce``;
    * ``add_grad`` adds alpha w[:, rows]^T f into the local gradient block only: the b
      gradient is distributed like b, every other gradient (a, W, mu) comes out
      replicated because everything it is built from is.

    ``params``/``zero_grad`` therefore hold the local block; the optimiser's
    elementwise updates (gd, Adam, box projection) act on it unchanged. Sums over
    parameter entries (norms, the Tikhonov term) must add the b part over ranks:
    ``distributed`` names the arrays that are split and :meth:`allsum` does the sum.
    """

    kind = "dense"
    names = ("b",)
    distributed = ("b",)

    def __init__(self, b_local, N, comm):
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self.N = int(N)
        self.rows = block(self.N, self.rank, self.size)
        self.counts = counts(self.N, self.size)
        self.displs = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.b = np.ascontiguousarray(b_local, dtype=float)
        n = self.rows.stop - self.rows.start
        if self.b.ndim != 3 or self.b.shape[1:] != (n, self.N):
            raise ValueError(f"rank {self.rank}: the row block of a dense kernel must be (K, {n}, {self.N}), "
                             f"got {self.b.shape}")

    @property
    def params(self):
        return {"b": self.b}

    # -- the operator ---------------------------------------------------------------------
    def raw(self, f, k):
        S = f.shape[0]
        local = self.b[k] @ np.ascontiguousarray(f).T            # (n_r, S): this rank's rows of B f^T
        out = np.empty((self.N, S))
        self.comm.Allgatherv([local, _double()], [out, (self.counts * S, self.displs * S), _double()])
        return np.ascontiguousarray(out.T)

    def raw_T(self, w, k):
        out = np.ascontiguousarray(w[:, self.rows]) @ self.b[k]  # this rank's share of w B
        return _allreduce(self.comm, out)

    def add_grad(self, grad, k, w, f, alpha, fresh=False):
        from .operators import _accumulate_outer

        _accumulate_outer(grad["b"][k], w[:, self.rows], f, alpha, fresh)

    def quadrature(self, h):
        return {"b": h * h}

    # -- collectives --------------------------------------------------------------------
    def allsum(self, x):
        """The sum over ranks of a float (every rank calls it)."""
        return float(_allreduce(self.comm, np.array([float(x)]))[0])

    def gather(self, local, root=0):
        """The whole (K, N, N) array of row blocks like ``b`` on ``root`` (None elsewhere);
        ``root=None``: on every rank. Every rank calls it."""
        local = np.ascontiguousarray(local, dtype=float)
        K = local.shape[0]
        out = np.empty((self.N, K, self.N)) if root is None or self.rank == root else None
        send = np.ascontiguousarray(local.transpose(1, 0, 2))  # rows outermost: blocks are contiguous
        recv = [out, (self.counts * K * self.N, self.displs * K * self.N), _double()]
        if root is None:
            self.comm.Allgatherv([send, _double()], recv)
        else:
            self.comm.Gatherv([send, _double()], recv if self.rank == root else None, root=root)
        return None if out is None else np.ascontiguousarray(out.transpose(1, 0, 2))

    def matrix(self, k, h):
        """h b_k, the whole N x N matrix, on every rank (collective; for analysis and tests)."""
        return h * self.gather(self.b[k:k + 1], root=None)[0]


def normal_rows(rng, K, N, rows):
    """Rows ``rows`` of ``rng.standard_normal((K, N, N))`` without forming it.

    The generator fills an array in C order from one stream, so drawing the same
    count of values in pieces gives the same numbers: the rows before and after
    the block are drawn in chunks of at most about 2^20 values and dropped.
    Memory O(n_rows N), time O(K N^2) (every rank draws the whole stream).
    """
    n = rows.stop - rows.start
    out = np.empty((K, n, N))
    scratch = np.empty((max(1, (1 << 20) // N), N))

    def skip(count):
        while count > 0:
            m = min(count, scratch.shape[0])
            rng.standard_normal(out=scratch[:m])
            count -= m

    for k in range(K):
        skip(rows.start)
        if n:
            rng.standard_normal(out=out[k])
        skip(N - rows.stop)
    return out


def _allreduce(comm, buf):
    from mpi4py import MPI

    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf
