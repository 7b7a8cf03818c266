"""Pontryagin maximum principle for the network PDE (Liu & Markowich Sect. 4.2, Sect. 5.2).

Sign and scale conventions
--------------------------
The paper *minimises* J; its maximum principle uses the co-state of
I = -J,  r* = f~ - f(T) at t = T, and the Hamiltonian (4.8)

    H(f, r*, a, b) = int_Y sigma(a - B_b f) r* dy,

which an optimal control *maximises*. The discrete adjoint of the solver
gives lambda_n = dJ/df_n for the sample-averaged loss J = (1/S) sum_s Phi_s,
so the per-sample paper co-state is

    r*_n^s = -S lambda_n^s / h        (p = -lambda up to the scale S/h),

which for the identity head with l2 loss is exactly f~ - f_L at n = L. The
discrete (explicit Euler) Hamiltonian of step n, averaged over samples
(the mean-field PMP of the review, Theorem 1), is

    H_n(theta) = (1/S) sum_s int_Y sigma(a_k - B_k f_n^s) r*_{n+1}^s dy
               = -sum_s <sigma(a_k - B_k f_n^s), lambda_{n+1}^s>      (Euclidean <,>),

and with controls piecewise constant on intervals k the maximisation
decouples into one problem per interval for H_k = dt sum_{n in k} H_n.

Extended MSA (Li, Chen, Tai & E, JMLR 2018, the augmented Hamiltonian)
    H~ = H - rho/2 ||f_t - F(f, theta)||^2 - rho/2 ||r*_t + D_f H(f, r*, theta)||^2,
where f_t = F(f, theta^k) and r*_t = -D_f H(f, r*, theta^k) along the
trajectory of theta^k (for explicit Euler these are exactly the discrete
differences (f_{n+1} - f_n)/dt and (r*_{n+1} - r*_n)/dt), F = sigma(a - B f),
D_f H = -B^T(sigma'(u) r*) its L^2(Y) gradient, and ||.|| the L^2(Y) norm
averaged over samples and integrated over the interval like H.

MSA/E-MSA use the Euler Hamiltonian, so they require the ``euler`` stepper.

The objective that the gradient drivers (gd, adam, pam) minimise is in
:mod:`pdenet.network.objective`.
"""
import numpy as np
from scipy import optimize

from solvers import optim

__all__ = ["NetworkPMP", "sigma_second", "paper_costate", "bang_bang", "maximise_a_per_cell",
           "trajectory"]


# -- activation second derivative ----------------------------------------------------------
def sigma_second(name, u):
    """sigma''(u) for the activations of :mod:`pdenet.network.activations` (0 on the kinks of relu/leaky)."""
    u = np.asarray(u, dtype=float)
    if name in ("identity", "relu", "leaky_relu"):
        return np.zeros_like(u)
    if name == "elu":
        return np.where(u > 0.0, 0.0, np.exp(np.minimum(u, 0.0)))
    if name == "tanh":
        t = np.tanh(u)
        return -2.0 * t * (1.0 - t * t)
    if name == "sigmoid":
        g = 0.5 * (1.0 + np.tanh(0.5 * u))
        return g * (1.0 - g) * (1.0 - 2.0 * g)
    if name == "arctan":
        return -2.0 * u / (1.0 + u * u) ** 2
    raise ValueError(f"no second derivative for activation {name!r}")


def paper_costate(lam, S, h):
    """The paper's co-state r* = -S lambda / h from the discrete adjoint lambda = dJ/df."""
    return (-S / h) * np.asarray(lam)


# -- forward/backward sweep -------------------------------------------------------------------
def trajectory(net, f0, target):
    """Forward and backward sweep: (J, grad, metrics, f (L+1, S, N), r* (L+1, S, N)).

    f[n] is the state after n steps, r*[n] the paper co-state at step n
    (from the exact discrete adjoint, :func:`paper_costate`).
    """
    L = net.schedule.steps
    states, lams = [None] * (L + 1), [None] * (L + 1)

    def on_state(n, t, y, lin):
        states[n] = np.array(y, dtype=float)

    def on_costate(n, lam):
        lams[n] = np.array(lam, dtype=float)

    J, grad, metrics, _ = net.loss_and_gradient(f0, target, keep="all", on_state=on_state,
                                                on_costate=on_costate)
    S = states[0].shape[0]
    return J, grad, metrics, np.stack(states), paper_costate(np.stack(lams), S, net.h)


# -- exact maximisers ------------------------------------------------------------------------
def bang_bang(r, f, a, box_a, b=None, box_b=None):
    """Exact maximiser (4.10) of int_Y sigma(a - B_b f) r dy for ONE state f and co-state r.

    For sigma non-decreasing, each cell y maximises u(y) = a(y) - int b(y, z) f(z) dz
    where r(y) > 0 and minimises it where r(y) < 0 (linear programme 4.9):
      a*(y) = a+ if r(y) > 0, a- if r(y) < 0;
      b*(y, z) = b- if r(y) f(z) > 0, b+ if r(y) f(z) < 0.
    Where r(y) = 0 (or f(z) = 0 for b) every value is optimal and the current
    ``a`` (``b``) is kept. ``r``, ``f``, ``a`` (N,); ``b`` (N, N) dense kernel
    values or None. Returns (a*, b*) (b* None when b is None).
    """
    lo, hi = box_a
    a_new = np.where(r > 0, hi, np.where(r < 0, lo, a))
    a_new = np.broadcast_to(a_new, np.shape(a)).astype(float)
    if b is None:
        return a_new, None
    blo, bhi = box_b
    rf = np.outer(r, f)
    b_new = np.where(rf > 0, blo, np.where(rf < 0, bhi, b))
    return a_new, np.broadcast_to(b_new, np.shape(b)).astype(float)


def maximise_a_per_cell(act, C, R, lo, hi, grid=257, a0=None):
    """Maximise g_i(a) = sum_m sigma(a - C[m, i]) R[m, i] over a in [lo_i, hi_i], cell by cell.

    The sample-averaged Hamiltonian in a alone (kernel fixed) is separable over
    cells, so the maximisation over the box is N one-dimensional problems.
    sigma = identity: g_i is linear, so the bang-bang vertex by the sign of sum_m R[m, i]
    is exact. Otherwise: the best of ``grid`` equispaced points (vertices
    included) and ``a0``, refined by bounded Brent search on the bracketing
    grid cells. Returns a (N,).
    """
    N = C.shape[1]
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (N,))
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (N,))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("maximising H over a needs a finite box [a-, a+]")
    if act.name == "identity":
        s = R.sum(axis=0)
        base = np.zeros(N) if a0 is None else np.asarray(a0, dtype=float)
        return np.where(s > 0, hi, np.where(s < 0, lo, np.clip(base, lo, hi)))

    def g(avec):
        return np.sum(act(avec[None, :] - C) * R, axis=0)

    ts = np.linspace(0.0, 1.0, grid)
    cand = lo[None, :] + ts[:, None] * (hi - lo)[None, :]
    vals = np.stack([g(c) for c in cand])
    best = np.argmax(vals, axis=0)
    a = cand[best, np.arange(N)]
    gbest = vals[best, np.arange(N)]
    for i in range(N):
        j = best[i]
        left, right = cand[max(j - 1, 0), i], cand[min(j + 1, grid - 1), i]
        if right > left:
            res = optimize.minimize_scalar(lambda x: -np.sum(act(np.array([x]) - C[:, i]) * R[:, i]),
                                           bounds=(left, right), method="bounded",
                                           options={"xatol": 1e-12 * (1.0 + abs(right - left))})
            if -res.fun > gbest[i]:
                a[i], gbest[i] = res.x, -res.fun
    if a0 is not None:   # never worse than the current control
        a0 = np.clip(np.asarray(a0, dtype=float), lo, hi)
        keep = g(a0) >= g(a)
        a = np.where(keep, a0, a)
    return a


# -- the PMP system of solvers.optim.msa -------------------------------------------------------
class NetworkPMP:
    """MSA / E-MSA system for a :class:`NetworkPDE` with data (``solvers.optim.msa``/``emsa``).

    ``controls``: the parameters maximised over, "a" and/or kernel parameter
    names (e.g. ("a",) or ("a", "b")); the others stay fixed (``head_lr`` > 0
    takes a gradient step on the head's W, mu after every maximisation, since
    the terminal weights are not controls of the Hamiltonian).
    ``box``: name -> (lower, upper); plain MSA needs a finite box on every control.
    """

    tikhonov_supported = False      # the running cost (lambda/2) R is in emsa.LayeredPMP

    def __init__(self, net, f0, target, controls=("a",), box=None, head_lr=0.0, grid=257,
                 inner_tol=1e-10, inner_maxiter=500):
        if getattr(net.stepper, "name", None) != "euler":
            raise ValueError("MSA/E-MSA use the explicit-Euler Hamiltonian; use stepper 'euler'")
        if net.tikhonov != 0.0 and not self.tikhonov_supported:
            raise ValueError("MSA/E-MSA with a Tikhonov term: use pdenet.network.emsa.LayeredPMP")
        kernel = set(net.operator.params)
        bad = [c for c in controls if c != "a" and c not in kernel]
        if bad:
            raise ValueError(f"unknown controls {bad}; use 'a' and kernel parameters {sorted(kernel)}")
        self.net, self.f0, self.target = net, f0, target
        self.controls, self.box = tuple(controls), dict(box or {})
        self.head_lr, self.grid = float(head_lr), int(grid)
        self.inner_tol, self.inner_maxiter = inner_tol, inner_maxiter
        self._metrics, self._traj, self._grad = {}, None, None

    @property
    def params(self):
        return self.net.params

    def metrics(self):
        return dict(self._metrics)

    # -- sweep ---------------------------------------------------------------------------
    def sweep(self):
        """Forward and backward solve at the current controls (Algorithm 2 steps 2-3)."""
        J, grad, self._metrics, f, r = trajectory(self.net, self.f0, self.target)
        self._traj, self._grad = (f, r), grad
        return J, grad

    def _interval_data(self, k):
        """Stacked states f_n and co-states r*_{n+1} of the steps n of interval k: (M, N) each."""
        f, r = self._traj
        sched = self.net.schedule
        ns = [n for n in range(sched.steps) if sched.interval(n) == k]
        return f[ns].reshape(-1, f.shape[2]), r[[n + 1 for n in ns]].reshape(-1, r.shape[2])

    def _scale(self):
        """dt * h / S: the weight turning Euclidean sums into int dt and the sample mean of int_Y."""
        return self.net.schedule.dt * self.net.h / self.f0.shape[0]

    # -- Hamiltonian ------------------------------------------------------------------------
    def hamiltonian_steps(self):
        """H_n (n = 0..L-1) along the last sweep at the current controls (constant in t at optimum)."""
        net = self.net
        f, r = self._traj
        S = f.shape[1]
        out = np.empty(net.schedule.steps)
        for n in range(net.schedule.steps):
            k = net.schedule.interval(n)
            F = net.activation(net.pre_activation(f[n], k))
            out[n] = net.h * float(np.sum(F * r[n + 1])) / S
        return out

    def hamiltonian(self):
        """int_0^T H dt = dt sum_n H_n along the last sweep."""
        return float(self.net.schedule.dt * np.sum(self.hamiltonian_steps()))

    def interval_objective(self, k, rho=0.0, ref=None, F=None, R=None):
        """(H~_k, gradient dict over self.controls) at the current controls of interval k.

        H~_k = dt h/S [ sum <sigma(u), R> - rho/2 |sigma(u) - sigma(u_ref)|^2
                        - rho/2 |Q - Q_ref|^2 ],  u = a_k - h raw(F),
        Q = -h raw_T(sigma'(u) R) (= D_f H in L^2), ``ref`` = (sigma(u_ref), Q_ref)
        at theta^k. Gradient by the chain rule through u and the kernel (exact).
        """
        net, op, h = self.net, self.net.operator, self.net.h
        if F is None:
            F, R = self._interval_data(k)
        u = net.pre_activation(F, k)
        s, sp = net.activation(u), net.activation.prime(u)
        c = self._scale()
        val = float(np.sum(s * R))
        Gu = sp * R
        E = None
        if rho > 0.0:
            s_ref, Q_ref = ref
            D = s - s_ref
            Z = sp * R
            E = -h * op.raw_T(Z, k) - Q_ref
            val -= 0.5 * rho * (float(np.sum(D * D)) + float(np.sum(E * E)))
            Gu = Gu - rho * D * sp + (rho * h) * op.raw(E, k) * sigma_second(net.activation.name, u) * R
        grad = {}
        if "a" in self.controls:
            grad["a"] = c * Gu.sum(axis=0)
        kern = [n for n in self.controls if n != "a"]
        if kern:
            buf = {n: np.zeros_like(p) for n, p in op.params.items()}
            op.add_grad(buf, k, Gu, F, -h)
            if E is not None:
                op.add_grad(buf, k, sp * R, E, rho * h)
            for n in kern:
                grad[n] = c * buf[n][k]
        return c * val, grad

    def _reference(self, k, F, R):
        """(sigma(u), D_f H) at theta^k: f_t and -r*_t along the current trajectory."""
        net = self.net
        u = net.pre_activation(F, k)
        Q = -net.h * net.operator.raw_T(net.activation.prime(u) * R, k)
        return net.activation(u), Q

    # -- maximisation ---------------------------------------------------------------------
    def _get(self, k):
        return optim.flatten({n: self.params[n][k] for n in self.controls}, self.controls)

    def _set(self, k, x):
        i = 0
        for n in self.controls:
            p = self.params[n][k]
            p[...] = x[i:i + p.size].reshape(p.shape)
            i += p.size

    def _bounds(self, k):
        sliced = {n: self.params[n][k] for n in self.controls}
        box = {}
        for n, (lo, hi) in self.box.items():
            if n in self.controls:
                shape = self.params[n].shape
                box[n] = (np.broadcast_to(np.asarray(lo, dtype=float), shape)[k],
                          np.broadcast_to(np.asarray(hi, dtype=float), shape)[k])
        return optim._bounds(sliced, box, self.controls)

    def maximise_interval(self, k, rho=0.0):
        """Replace the controls of interval k by argmax H~_k over the box; returns the maximum.

        rho = 0 with one row (one sample, one step in the interval), controls "a"
        (and dense "b"): exact bang-bang (4.10). rho = 0, controls ("a",): exact
        per-cell search (:func:`maximise_a_per_cell`). Otherwise L-BFGS-B on
        -H~_k with the exact gradient from theta^k and, for rho = 0, from the
        bang-bang vertex of the linearisation; the better point is kept.
        """
        net = self.net
        F, R = self._interval_data(k)
        lo, hi = self._bounds(k)
        x0 = self._get(k)
        if rho == 0.0 and not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("plain MSA maximises H over a box: give finite bounds for every control")
        dense_ab = set(self.controls) <= {"a", "b"} and "a" in self.controls and (
            "b" not in self.controls or net.operator.kind == "dense")
        if rho == 0.0 and F.shape[0] == 1 and dense_ab:
            r, f = R[0], F[0]
            has_b = "b" in self.controls
            bk = net.operator.params["b"][k] if has_b else None
            a_lo, a_hi = self._bounds_of("a", k)
            a_new, b_new = bang_bang(r, f, net.a[k], (a_lo, a_hi), bk,
                                     self._bounds_of("b", k) if has_b else None)
            net.a[k] = a_new
            if has_b:
                bk[...] = b_new
            return self.interval_objective(k, 0.0, None, F, R)[0]
        if rho == 0.0 and self.controls == ("a",):
            C = net.a[k][None, :] - net.pre_activation(F, k)      # h raw(F): u = a - C
            net.a[k] = maximise_a_per_cell(net.activation, C, R, lo, hi, self.grid, net.a[k])
            return self.interval_objective(k, 0.0, None, F, R)[0]
        return self._maximise_numerically(k, rho, F, R, x0, lo, hi)

    def _bounds_of(self, name, k):
        lo, hi = self.box[name]
        shape = self.params[name].shape
        return (np.broadcast_to(np.asarray(lo, dtype=float), shape)[k],
                np.broadcast_to(np.asarray(hi, dtype=float), shape)[k])

    def _maximise_numerically(self, k, rho, F, R, x0, lo, hi):
        ref = self._reference(k, F, R) if rho > 0.0 else None

        def neg(x):
            self._set(k, x)
            v, g = self.interval_objective(k, rho, ref, F, R)
            return -v, -optim.flatten(g, self.controls)

        starts = [np.clip(x0, lo, hi)]
        if rho == 0.0:
            _, g0 = neg(starts[0])
            starts.append(np.where(g0 < 0, hi, np.where(g0 > 0, lo, starts[0])))
        best_x, best_v = starts[0], neg(starts[0])[0]
        for s in starts:
            res = optimize.minimize(neg, s, jac=True, method="L-BFGS-B",
                                    bounds=optimize.Bounds(lo, hi),
                                    options={"maxiter": self.inner_maxiter, "gtol": self.inner_tol,
                                             "ftol": 1e-15})
            x = np.clip(res.x, lo, hi)
            v = neg(x)[0]
            if v < best_v:
                best_x, best_v = x, v
        self._set(k, best_x)
        return -best_v

    def maximise(self, rho=0.0):
        """Algorithm 2 step 4 (rho = 0) or the E-MSA step (rho > 0) for every interval."""
        if self._traj is None:
            raise RuntimeError("call sweep() before maximise()")
        total = sum(self.maximise_interval(k, rho) for k in range(self.net.schedule.intervals))
        if self.head_lr > 0.0:
            for n, p in self.net.head.params.items():
                p -= self.head_lr * self._grad[n]
        return float(total)
