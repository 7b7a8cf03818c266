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
"""
import numpy as np

__all__ = ["block", "counts", "DataParallel", "parallel"]


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
