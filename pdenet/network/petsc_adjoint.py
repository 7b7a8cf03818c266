"""The gradient of a network's loss by PETSc's own TS adjoint: an independent check of
:meth:`NetworkPDE.loss_and_gradient` (pdenet's exact discrete adjoint of its stepper).

:func:`ts_loss_and_gradient` stacks the samples into one state vector y = vec(f) (S*N values),
hands PETSc TS (:func:`solvers.petsc_ts.ts_adjoint`) the right-hand side F(y) = sigma(a - B_b f)
and its Jacobians built from the network's own ``linearise``/``jvp``/``vjp`` (so any kernel
representation works): dF/dy is block diagonal over the samples (N ``jvp`` calls), dF/dp has one
row per state entry (S*N ``vjp`` calls) and columns for ``a`` and the kernel parameters. The
terminal cost is the network's head loss Phi(y(T)), its gradient dPhi/dy(T) the head's; PETSc's
TSAdjointSolve returns dJ/df0 and dJ/d(a, kernel). Head parameters (``W``, ``mu``) and the Tikhonov
term do not enter the ODE; they come from the head and the network as in ``loss_and_gradient``.

Restrictions: one control interval (K = 1: the parameters are constant in time, so F does not
depend on t — with K > 1 PETSc would evaluate the step's end point with the next interval's
parameters where pdenet's steppers use the step's own), and small problems (dense dF/dp of
S*N x (N + N^2) entries; a cross-check, not a training path). The scheme is PETSc's: the default
``-ts_type cn`` is pdenet's ``cn``; ``-ts_type beuler`` its ``beuler``;
``-ts_type theta -ts_theta_theta 0.7 -ts_theta_endpoint`` its ``theta`` 0.7; ``-ts_type rk
-ts_rk_type 4`` its ``rk4`` (see docs/parallel.md, "TS adjoint cross-check").
"""
import numpy as np
import scipy.sparse as sp

from solvers.petsc_ts import ts_adjoint


def _ode_params(net):
    """(name, array) of the parameters inside the ODE: ``a`` and the kernel's."""
    return [("a", net.a)] + [(name, net.operator.params[name]) for name in net.operator.names]


def ts_loss_and_gradient(net, f0, target, options=""):
    """(J, grad, fT, grad_f0, info) for ``net`` by PETSc TS and TSAdjointSolve.

    ``grad`` has the keys of ``net.params``; ``options`` are PETSc options layered over
    :data:`solvers.petsc_ts.DEFAULTS` (``-ts_type ...`` picks the scheme). ``info`` is PETSc's
    (TS type, steps, SNES/KSP iterations)."""
    sched = net.schedule
    if sched.intervals != 1:
        raise ValueError(f"the TS adjoint cross-check needs one control interval (K = 1), got K = {sched.intervals}")
    f0 = np.ascontiguousarray(f0, dtype=float)
    S, N = f0.shape
    if N != net.N:
        raise ValueError(f"inputs must be (samples, {net.N}), got {f0.shape}")
    k = 0
    params = _ode_params(net)
    sizes = [p[k].size for _, p in params]
    offsets = np.concatenate([[0], np.cumsum(sizes)])

    def state(y):
        return np.ascontiguousarray(y).reshape(S, N)

    def rhs(t, y):
        return net.rhs(state(y), k).ravel()

    def jacobian(t, y):
        _, lin = net.linearise(state(y), k)
        blocks = np.empty((S, N, N))
        v = np.zeros((S, N))
        for j in range(N):          # column j of every sample's block at once
            v[:, j] = 1.0
            blocks[:, :, j] = net.jvp(lin, k, v)
            v[:, j] = 0.0
        return sp.block_diag(list(blocks), format="csr")

    def jacobian_p(t, y):
        _, lin = net.linearise(state(y), k)
        out = np.zeros((S * N, offsets[-1]))
        w = np.zeros((S, N))
        for r in range(S * N):      # row r of dF/dp = d<e_r, F>/dp, by the network's vjp
            w.flat[r] = 1.0
            g = {name: np.zeros_like(p) for name, p in params}
            net.vjp(lin, k, w, g)
            w.flat[r] = 0.0
            out[r] = np.concatenate([g[name][k].ravel() for name, _ in params])
        return out

    grad = net.zero_grad()
    loss = {}

    def terminal_gradient(yT):
        J, lam, metrics = net.head.loss(state(yT), target, grad)
        loss["J"], loss["metrics"] = J, metrics
        return lam.ravel()

    res = ts_adjoint(rhs, jacobian, f0.ravel(), sched.dt, sched.steps, terminal_gradient,
                     jacobian_p=jacobian_p, n_params=int(offsets[-1]), t0=sched.t0, options=options)
    for (name, p), lo, hi in zip(params, offsets[:-1], offsets[1:]):
        grad[name][k] += res.grad_p[lo:hi].reshape(p[k].shape)
    J = loss["J"] + 0.5 * net.tikhonov * net.regulariser()
    net._add_regulariser_grad(grad)
    info = dict(res.info, metrics=loss["metrics"])
    return J, grad, state(res.y_final).copy(), state(res.grad_y0).copy(), info
