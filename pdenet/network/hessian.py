"""Hessian-vector products of the network loss by a second-order adjoint (forward-over-reverse).

The tangent-linear model of the forward solve *and* of its discrete adjoint, in a direction
v = (da, db, dW, dmu), gives d/d(eps) grad J(theta + eps v) = H v exactly (to round-off) for the
discrete network. Implemented for the explicit Runge-Kutta steppers (euler, heun, rk4: stages
Y_i = f + tau sum_j A_ij K_j, K_i = sigma(a_k - h B_k Y_i)) and the dense and convolution kernels
(linear in their parameters: the tangent of B_k f in the kernel is the same operator with the
direction's arrays) and the low-rank kernel (bilinear: its phi-psi block is added), and for the
implicit theta-method steppers (beuler, cn: per sample M_s = I + tau theta diag(sigma'(u_z)) B,
the tangent of z and of the adjoint solve each one more solve with M_s or M_s^T) with the identity/L2 and classes/softmax heads and
the Tikhonov term, for the smooth activations (identity, tanh, sigmoid, arctan); the field and
logistic heads are refused (NotImplementedError) -- see docs/sgd-noise.md.

Backward sweep of one step, stages i from last to first (Kbar_i = tau b_i lam' + tau sum_{m>i} A_mi Ybar_m,
ubar_i = sigma'(u_i) Kbar_i):
    grad a_k += sum_s ubar_i,  grad b_k += -h ubar_i^T Y_i,  Ybar_i = -h ubar_i b_k,  lam = lam' + sum_i Ybar_i;
its tangent (du_i, dY_i from the forward tangent):
    dubar_i = sigma''(u_i) du_i Kbar_i + sigma'(u_i) dKbar_i,
    Hv_a_k += sum_s dubar_i,  Hv_b_k += -h (dubar_i^T Y_i + ubar_i^T dY_i),
    dYbar_i = -h (dubar_i b_k + ubar_i db_k),  dlam = dlam' + sum_i dYbar_i.

:func:`spectrum` finds extreme eigenvalues by Lanczos (scipy ``eigsh``) on v -> H v;
:func:`slq_density` the spectral density by stochastic Lanczos quadrature (Rademacher probes,
Gauss quadrature nodes/weights from each probe's Lanczos tridiagonal matrix, Gaussian-broadened).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.special import expit, softmax

from .objective import _durations
from .sgd_noise import flatten, unflatten

__all__ = ["hvp", "hessian_operator", "spectrum", "slq_density", "SUPPORTED"]

SUPPORTED = {"stepper": ("euler", "heun", "rk4", "beuler", "cn"), "kernel": ("dense", "convolution", "lowrank"), "activation": ("identity", "tanh", "sigmoid", "arctan")}



def _stage_gradients(g, Hv, k, op, dop, h, Y, dY, du, s1, s2, kbar, dkbar):
    """One stage's share of interval k: the gradient (into ``g``) and its directional derivative
    (into ``Hv``) from the stage's co-state ``kbar`` and its tangent ``dkbar``, with the stage value
    Y, its tangent dY, du = d(pre-activation), s1 = sigma', s2 = sigma''. Returns ubar = s1 kbar."""
    ubar = s1 * kbar
    dubar = s2 * du * kbar + s1 * dkbar
    g["a"][k] += ubar.sum(axis=0)
    op.add_grad(g, k, ubar, Y, -h)
    Hv["a"][k] += dubar.sum(axis=0)
    op.add_grad(Hv, k, dubar, Y, -h)
    op.add_grad(Hv, k, ubar, dY, -h)
    dop.mixed_grad(Hv, k, ubar, Y, -h)
    return ubar, dubar

def _sigma_derivs(u, name):
    """(sigma(u), sigma'(u), sigma''(u))."""
    if name == "identity":
        return u, np.ones_like(u), np.zeros_like(u)
    if name == "tanh":
        t = np.tanh(u)
        return t, 1 - t * t, -2 * t * (1 - t * t)
    if name == "sigmoid":
        s = expit(u)
        return s, s * (1 - s), s * (1 - s) * (1 - 2 * s)
    if name == "arctan":
        return np.arctan(u), 1 / (1 + u * u), -2 * u / (1 + u * u) ** 2
    raise NotImplementedError(f"Hessian-vector products need a twice differentiable activation "
                              f"({', '.join(SUPPORTED['activation'])}); got {name!r}")


class _LowRankTangent:
    """Tangents in the parameters of the low-rank kernel B f = (f psi^T) phi (bilinear in phi, psi)."""

    def __init__(self, op, v):
        self.op, self.dphi, self.dpsi = op, v["phi"], v["psi"]

    def raw(self, f, k):
        return (f @ self.dpsi[k].T) @ self.op.phi[k] + (f @ self.op.psi[k].T) @ self.dphi[k]

    def raw_T(self, w, k):
        return (w @ self.dphi[k].T) @ self.op.psi[k] + (w @ self.op.phi[k].T) @ self.dpsi[k]

    def mixed_grad(self, Hv, k, w, f, alpha):
        """The parameter tangent of add_grad at fixed (w, f): the phi-psi block of the Hessian."""
        Hv["phi"][k] += alpha * ((f @ self.dpsi[k].T).T @ w)
        Hv["psi"][k] += alpha * ((w @ self.dphi[k].T).T @ f)


class _LinearTangent:
    """The dense and convolution kernels are linear in their parameters: the tangent of raw/raw_T is
    the same operator holding the direction's arrays, and add_grad has no parameter tangent."""

    def __init__(self, op, v):
        from .operators import ConvolutionOperator, DenseOperator

        self.d = DenseOperator(v["b"]) if op.kind == "dense" else ConvolutionOperator(v["kappa"], op.cells)

    def raw(self, f, k):
        return self.d.raw(f, k)

    def raw_T(self, w, k):
        return self.d.raw_T(w, k)

    def mixed_grad(self, Hv, k, w, f, alpha):
        pass


def _tangent_operator(op, v):
    return _LowRankTangent(op, v) if op.kind == "lowrank" else _LinearTangent(op, v)


def _check(net):
    if net.stepper.name not in SUPPORTED["stepper"]:
        raise NotImplementedError(f"the second-order adjoint is implemented for the explicit steppers "
                                  f"{', '.join(SUPPORTED['stepper'])}; got {net.stepper.name!r}")
    if net.operator.kind not in SUPPORTED["kernel"]:
        raise NotImplementedError(f"the second-order adjoint is implemented for the kernels "
                                  f"{', '.join(SUPPORTED['kernel'])}; "
                                  f"got {net.operator.kind!r}")
    head = net.head
    if not ((head.kind == "identity" and head.loss_name == "l2")
            or (head.kind == "classes" and head.loss_name == "softmax")):
        raise NotImplementedError("the second-order adjoint is implemented for the identity/l2 and "
                                  "classes/softmax heads")


def hvp(net, f0, target, v: dict, regularise: bool = True):
    """(grad J, H v) as dicts shaped like ``net.params``, for a direction ``v`` (same shapes)."""
    _check(net)
    sched, h, name = net.schedule, net.h, net.activation.name
    tau, L = sched.dt, sched.steps
    a, op = net.a, net.operator
    dop = _tangent_operator(op, v)                 # the kernel operator with the direction's arrays
    da = v["a"]
    S = f0.shape[0]
    implicit = getattr(net.stepper, "implicit", False)
    if implicit:
        th = net.stepper.theta
        A, bw = [[], [0.0]], [1.0 - th, th]        # stages y (explicit) and z (implicit)
    else:
        A, bw = net.stepper.a, net.stepper.b      # the explicit Runge-Kutta tableau
    stages = len(bw)
    f = np.array(f0, float)
    df = np.zeros_like(f)
    tape = []
    for n in range(L):
        k = sched.interval(n)
        if implicit:
            f, df, rec = _theta_forward(net, dop, f, df, k, tau, da, name)
            tape.append((k, rec))
            continue
        st = []                                    # per stage: (Y, dY, du, s1, s2)
        Ks, dKs = [], []
        for i in range(stages):
            Y, dY = f, df
            for j, aij in enumerate(A[i][:i]):
                if aij != 0.0:
                    Y, dY = Y + (tau * aij) * Ks[j], dY + (tau * aij) * dKs[j]
            u = a[k] - h * op.raw(Y, k)
            du = da[k] - h * (op.raw(dY, k) + dop.raw(Y, k))
            s, s1, s2 = _sigma_derivs(u, name)
            Ks.append(s)
            dKs.append(s1 * du)
            st.append((Y, dY, du, s1, s2))
        tape.append((k, st))
        f, df = f.copy(), df.copy()
        for bi, K, dK in zip(bw, Ks, dKs):
            if bi != 0.0:
                f += (tau * bi) * K
                df += (tau * bi) * dK
    g = {kname: np.zeros_like(p) for kname, p in net.params.items()}
    Hv = {kname: np.zeros_like(p) for kname, p in net.params.items()}
    head = net.head
    if head.kind == "identity":
        lam = (h / S) * (f - target)
        dlam = (h / S) * df
    else:
        W, mu, dW, dmu = head.W, head.mu, v["W"], v["mu"]
        O = h * f @ W.T + mu
        p = softmax(O, axis=1)
        dO = p.copy()
        dO[np.arange(S), np.asarray(target, int)] -= 1.0
        dO /= S
        dOt = h * (df @ W.T + f @ dW.T) + dmu          # tangent of the logits
        ddO = (p * dOt - p * np.sum(p * dOt, axis=1, keepdims=True)) / S
        lam = h * dO @ W
        dlam = h * (ddO @ W + dO @ dW)
        g["W"] += h * dO.T @ f
        g["mu"] += dO.sum(axis=0)
        Hv["W"] += h * (ddO.T @ f + dO.T @ df)
        Hv["mu"] += ddO.sum(axis=0)
    for k, st in reversed(tape):
        if implicit:
            lam, dlam = _theta_backward(net, dop, st, k, tau, lam, dlam, g, Hv)
            continue
        Ybar, dYbar = [None] * stages, [None] * stages
        ybar, dybar = lam.copy(), dlam.copy()
        for i in reversed(range(stages)):
            kbar, dkbar = (tau * bw[i]) * lam, (tau * bw[i]) * dlam
            for m in range(i + 1, stages):
                ami = A[m][i]
                if ami != 0.0:
                    kbar = kbar + (tau * ami) * Ybar[m]
                    dkbar = dkbar + (tau * ami) * dYbar[m]
            Y, dY, du, s1, s2 = st[i]
            ubar, dubar = _stage_gradients(g, Hv, k, op, dop, h, Y, dY, du, s1, s2, kbar, dkbar)
            Ybar[i] = -h * op.raw_T(ubar, k)
            dYbar[i] = -h * (op.raw_T(dubar, k) + dop.raw_T(ubar, k))
            ybar += Ybar[i]
            dybar += dYbar[i]
        lam, dlam = ybar, dybar
    if regularise and net.tikhonov:
        dur = _durations(net)
        quad = {"a": h, **net.operator.quadrature(h)}
        for kname, w in quad.items():
            shape = (-1,) + (1,) * (net.params[kname].ndim - 1)
            g[kname] += net.tikhonov * w * dur.reshape(shape) * net.params[kname]
            Hv[kname] += net.tikhonov * w * dur.reshape(shape) * v[kname]
    return g, Hv


def _theta_matrices(net, k, s1z, tau):
    """Per sample M_s = I + tau theta diag(sigma'(u_z,s)) Bmat (Bmat = h b: B f = f Bmat^T in rows)."""
    th = net.stepper.theta
    Bmat = net.operator.matrix(k, net.h)
    N = Bmat.shape[0]
    return np.eye(N)[None] + (tau * th) * s1z[:, :, None] * Bmat[None]


def _theta_forward(net, dop, y, dy, k, tau, da, name):
    """One theta-method step z = y + tau[(1-th) F(y) + th F(z)] (z from the network's own Newton
    solve) and its tangent: M_s dz_s = dy_s + tau (1-th) dK_y,s + tau th sigma'(u_z) (da - h dB z)_s."""
    th, h, op = net.stepper.theta, net.h, net.operator
    z, _, _ = net.stepper.step(net, y, k, tau, False)
    u_y = net.a[k] - h * op.raw(y, k)
    du_y = da[k] - h * (op.raw(dy, k) + dop.raw(y, k))
    _, s1y, s2y = _sigma_derivs(u_y, name)
    u_z = net.a[k] - h * op.raw(z, k)
    _, s1z, s2z = _sigma_derivs(u_z, name)
    rhs = dy + (tau * (1 - th)) * s1y * du_y + (tau * th) * s1z * (da[k] - h * dop.raw(z, k))
    M = _theta_matrices(net, k, s1z, tau)
    dz = np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
    du_z = da[k] - h * (op.raw(dz, k) + dop.raw(z, k))
    return z, dz, ((y, dy, du_y, s1y, s2y), (z, dz, du_z, s1z, s2z), M)


def _theta_backward(net, dop, rec, k, tau, lam, dlam, g, Hv):
    """Adjoint of one theta step and its tangent. mu solves M_s^T mu_s = lam_s (M as in the forward);
    dmu solves M_s^T dmu_s = dlam_s - tau th h raw_T(sigma''(u_z) du_z mu + ...) (the tangent of the
    transposed Jacobian), then the stages y, z contribute like Runge-Kutta stages with
    Kbar_y = tau (1-th) mu, Kbar_z = tau th mu; lam_prev = mu + Ybar_y."""
    th, h, op = net.stepper.theta, net.h, net.operator
    (y, dy, du_y, s1y, s2y), (z, dz, du_z, s1z, s2z), M = rec
    MT = np.transpose(M, (0, 2, 1))
    mu = np.linalg.solve(MT, lam[:, :, None])[:, :, 0]
    # tangent of J_z^T mu = -h raw_T(sigma'(u_z) mu) in (z, params)
    dJt = -h * (op.raw_T(s2z * du_z * mu, k) + dop.raw_T(s1z * mu, k))
    dmu = np.linalg.solve(MT, (dlam + (tau * th) * dJt)[:, :, None])[:, :, 0]
    out_lam, out_dlam = mu.copy(), dmu.copy()
    for (Y, dY, du, s1, s2), c, explicit in (((y, dy, du_y, s1y, s2y), tau * (1 - th), True),
                                             ((z, dz, du_z, s1z, s2z), tau * th, False)):
        if c == 0.0:
            continue
        ubar, dubar = _stage_gradients(g, Hv, k, op, dop, h, Y, dY, du, s1, s2, c * mu, c * dmu)
        if explicit:
            out_lam += -h * op.raw_T(ubar, k)
            out_dlam += -h * (op.raw_T(dubar, k) + dop.raw_T(ubar, k))
    return out_lam, out_dlam


def hessian_operator(net, f0, target, regularise=True) -> LinearOperator:
    """H as a scipy LinearOperator on flat vectors in the order of ``net.params``."""
    names = list(net.params)
    P = sum(p.size for p in net.params.values())

    def mv(x):
        _, Hv = hvp(net, f0, target, unflatten(np.asarray(x, float).ravel(), net), regularise)
        return flatten(Hv, names)
    return LinearOperator((P, P), matvec=mv, rmatvec=mv, dtype=float)


def spectrum(net, f0, target, k=10, tol=1e-8, seed=0, maxiter=None):
    """(k largest eigenvalues descending, k smallest ascending) of the Hessian by Lanczos.

    If ARPACK stops at ``maxiter`` restarts, the eigenvalues it converged are returned (possibly
    fewer than k; NaN-padded)."""
    from scipy.sparse.linalg import ArpackNoConvergence

    op = hessian_operator(net, f0, target)
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])

    def run(which):
        try:
            w = eigsh(op, k=k, which=which, tol=tol, v0=v0, maxiter=maxiter, return_eigenvectors=False)
        except ArpackNoConvergence as exc:
            w = np.asarray(exc.eigenvalues)
        w = np.sort(w)
        return np.concatenate([w, np.full(k - w.size, np.nan)])
    top, bottom = run("LA"), run("SA")
    return np.concatenate([top[~np.isnan(top)][::-1], top[np.isnan(top)]]), bottom


def _lanczos(matvec, v, m):
    """m-step Lanczos with full reorthogonalisation from unit v: (alpha, beta)."""
    P = v.size
    Q = np.zeros((m, P))
    alpha, beta = np.zeros(m), np.zeros(max(m - 1, 0))
    q = v / np.linalg.norm(v)
    for j in range(m):
        Q[j] = q
        w = matvec(q)
        alpha[j] = q @ w
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        if j < m - 1:
            beta[j] = np.linalg.norm(w)
            if beta[j] < 1e-14:
                return alpha[:j + 1], beta[:j]
            q = w / beta[j]
    return alpha, beta


def slq_nodes(matvec, P, probes=4, steps=60, seed=0):
    """Stochastic Lanczos quadrature: (nodes (n,), weights (n,)) with weights summing to 1, such that
    (1/P) Tr g(H) ~ sum w g(nodes)."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(probes):
        v = rng.choice([-1.0, 1.0], P)
        al, be = _lanczos(matvec, v, min(steps, P))
        theta, U = eigh_tridiagonal(al, be)
        nodes.append(theta)
        weights.append(U[0] ** 2 / probes)
    return np.concatenate(nodes), np.concatenate(weights)


def slq_density(nodes, weights, grid, width):
    """Gaussian-broadened spectral density on ``grid`` from SLQ nodes and weights."""
    d = grid[:, None] - nodes[None, :]
    return (weights[None, :] * np.exp(-0.5 * (d / width) ** 2)).sum(axis=1) / (width * np.sqrt(2 * np.pi))
