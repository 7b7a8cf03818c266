"""Training drivers: projected gradient descent, Adam, PAM (Liu & Markowich Alg. 1), MSA/E-MSA (Alg. 2).

The drivers know the model only through two small protocols of :mod:`solvers.protocol`.

**Objective** (``gd``, ``adam``, ``pam``; :class:`~solvers.protocol.Objective`)

``params``
    dict name -> float ndarray, the trainable arrays, *updated in place* by the drivers.
``loss_and_gradient() -> (J, grad)``
    J and the exact gradient, ``grad[name]`` shaped like ``params[name]``.
``metrics() -> dict`` (optional; :class:`~solvers.protocol.HasMetrics`)
    scalar metrics (e.g. ``accuracy``) at the params of the most recent
    evaluation; every key becomes a history entry.
``sqnorm(arrays) -> float`` (optional; ``gd``, ``adam``; :class:`~solvers.protocol.HasSqnorm`)
    the squared Euclidean norm of a dict of parameter-shaped arrays (gradients,
    steps), for objectives whose ``params`` are pieces of parameters split over
    processes (each process steps its own piece; the norms, and the ``gtol``
    test that depends on them, must be global). Default: the local sum of squares.

**PMP system** (``msa``, ``emsa``; :class:`~solvers.protocol.PMPSystem`, e.g.
:class:`pdenet.network.pmp.NetworkPMP`)

``params``, optional ``metrics()`` as above, and
``sweep() -> (J, grad)``
    forward and backward (co-state) solve at the current controls; remembers
    the trajectory for the next ``maximise``.
``hamiltonian() -> float``
    int_0^T H dt along the remembered trajectory, at the current controls.
``maximise(rho) -> float``
    replaces the controls, interval by interval, by the maximiser of the
    (augmented, ``rho`` > 0) Hamiltonian along the remembered trajectory;
    returns the maximised int_0^T H~ dt.

Box constraints are a dict name -> (lower, upper) of scalars or arrays
broadcastable to the parameter; names not in the dict are unconstrained.

Norms: every ``||.||`` here (gradient norm, step, the PAM proximal term and
its sufficient-decrease check) is the Euclidean norm of the array entries of
the parameters concatenated, *not* the L^2(Y x (0, T)) norm with quadrature
weights. The PAM inequality holds in whichever norm the proximal term uses;
we use this one in both places.

History: each driver returns a dict of 1-D arrays indexed by iteration
k = 0..n (k = 0 the initial parameters): ``loss`` J(x^k), ``grad_norm``
||grad J(x^k)||, ``step`` ||x^k - x^{k-1}|| (0 at k = 0), plus every metric.
``callback(k, info)`` is called after each iteration with the history row as
a dict; returning True stops the iteration.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import optimize

from .errors import NumericalError
from .protocol import Array, Objective, Params, PMPSystem

#: name -> (lower, upper): scalars or arrays broadcastable to the parameter
Box = Mapping[str, tuple[Any, Any]]
#: ``callback(k, info)`` after each iteration; True stops
Callback = Callable[[int, dict[str, float]], Any]
#: what every driver returns: history name -> 1-D array over the iterations
History = dict[str, Array]

__all__ = ["gd", "adam", "pam", "msa", "emsa", "project", "flatten", "unflatten"]


# -- helpers ------------------------------------------------------------------------
def project(params: Params, box: Box | None, names: Iterable[str] | None = None) -> None:
    """Clip ``params[name]`` in place onto [lower, upper] for every boxed name (in ``names``)."""
    if not box:
        return
    for name, (lo, hi) in box.items():
        if name in params and (names is None or name in names):
            np.clip(params[name], lo, hi, out=params[name])


def flatten(arrays: Mapping[str, Any], names: Iterable[str]) -> Array:
    """Concatenate ``arrays[name].ravel()`` over ``names``."""
    return np.concatenate([np.asarray(arrays[n], dtype=float).ravel() for n in names])


def unflatten(x: Array, params: Params, names: Iterable[str]) -> None:
    """Write the flat vector ``x`` back into ``params[name]`` (in place) over ``names``."""
    i = 0
    for n in names:
        p = params[n]
        p[...] = x[i:i + p.size].reshape(p.shape)
        i += p.size


def _bounds(params: Params, box: Box | None, names: Iterable[str]) -> tuple[Array, Array]:
    """Flat lower/upper bound vectors for ``names`` (+-inf where unboxed)."""
    lo: list[Array] = []
    hi: list[Array] = []
    for n in names:
        shape = params[n].shape
        if box and n in box:
            l, u = box[n]
            lo.append(np.broadcast_to(np.asarray(l, dtype=float), shape).ravel())
            hi.append(np.broadcast_to(np.asarray(u, dtype=float), shape).ravel())
        else:
            lo.append(np.full(params[n].size, -np.inf))
            hi.append(np.full(params[n].size, np.inf))
    return np.concatenate(lo), np.concatenate(hi)


def _check_box(params: Params, box: Box | None) -> None:
    for name, (lo, hi) in (box or {}).items():
        if name not in params:
            raise ValueError(f"box constraint on unknown parameter {name!r}; have {', '.join(params)}")
        if np.any(np.asarray(lo) > np.asarray(hi)):
            raise ValueError(f"box for {name!r} has lower > upper")


def _norm(arrays: Mapping[str, Any], names: Iterable[str], objective: object = None) -> float:
    sqnorm = getattr(objective, "sqnorm", None)
    if sqnorm is not None:
        return float(np.sqrt(sqnorm({n: arrays[n] for n in names})))
    return float(np.sqrt(sum(float(np.sum(np.square(arrays[n]))) for n in names)))


class _History:
    """Per-iteration records; ``row`` appends one iteration and calls the callback."""

    def __init__(self, callback: Callback | None, offset: int = 0) -> None:
        self.rows: list[dict[str, float]] = []
        self.callback = callback
        self.offset = offset   # the first row's iteration number (a resumed run)

    def row(self, objective: object, **values: float) -> bool:
        metrics = getattr(objective, "metrics", None)
        if callable(metrics):
            for key, v in (metrics() or {}).items():
                values.setdefault(key, float(v))
        self.rows.append(values)
        if self.callback is not None:
            return bool(self.callback(len(self.rows) - 1 + self.offset, dict(values)))
        return False

    def arrays(self) -> History:
        keys: list[str] = []
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        return {k: np.array([r.get(k, np.nan) for r in self.rows], dtype=float) for k in keys}


# -- first-order methods ------------------------------------------------------------
def gd(objective: Objective, iterations: int, lr: float, box: Box | None = None, gtol: float = 0.0,
       callback: Callback | None = None) -> History:
    """Projected gradient descent x^{k+1} = P_box(x^k - lr grad J(x^k)) (paper Sect. 5.1).

    Stops after ``iterations`` steps, or when the projected-gradient step is
    below ``gtol`` (Euclidean norm of x - P(x - grad J)). Returns the history.
    """
    params = objective.params
    names = list(params)
    _check_box(params, box)
    project(params, box)
    hist = _History(callback)
    J, grad = objective.loss_and_gradient()
    stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names, objective), step=0.0)
    for _ in range(iterations):
        if stop or _projected_gradient_norm(params, grad, box, names, objective) <= gtol:
            break
        old = {n: params[n].copy() for n in names}
        for n in names:
            params[n] -= lr * grad[n]
        project(params, box)
        step = _norm({n: params[n] - old[n] for n in names}, names, objective)
        J, grad = objective.loss_and_gradient()
        stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names, objective), step=step)
    return hist.arrays()


def _projected_gradient_norm(params: Params, grad: Mapping[str, Any], box: Box | None, names: Iterable[str],
                             objective: object = None) -> float:
    """||x - P_box(x - grad)||: zero exactly at the stationary points of the constrained problem."""
    d = {}
    for n in names:
        d[n] = grad[n]
        if box and n in box:
            lo, hi = box[n]
            d[n] = params[n] - np.clip(params[n] - grad[n], lo, hi)
    return _norm(d, names, objective)


def adam(objective: Objective, iterations: int, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, box: Box | None = None, callback: Callback | None = None,
         state: dict[str, Any] | None = None) -> History:
    """Adam (Kingma & Ba 2015) with bias correction, projected onto the box after every step.

    ``state`` (a dict, optional): after every iteration it holds the restart point -- ``it``,
    the parameters, the moments ``m``, ``v``, the gradient and loss at the iterate, and the
    objective's own state (``objective.save_state()``, e.g. a mini-batch RNG) when it has one.
    Given a dict that already holds one, Adam continues from it: the same arithmetic as a run
    that was never stopped (the history then starts at iteration ``it + 1``)."""
    params = objective.params
    names = list(params)
    _check_box(params, box)
    b1, b2 = betas
    resume = state is not None and "it" in state

    def snapshot(it: int) -> None:
        if state is not None:   # built whole, then swapped in by one update
            new: dict[str, Any] = dict(it=it, J=float(J), params={n: params[n].copy() for n in names},
                                       m={n: m[n].copy() for n in names}, v={n: v[n].copy() for n in names},
                                       grad={n: np.array(grad[n], copy=True) for n in names})
            save = getattr(objective, "save_state", None)
            if callable(save):
                new["objective"] = save()
            state.update(new)

    if resume:
        assert state is not None
        start = int(state["it"])
        for n in names:
            params[n][...] = state["params"][n]
        m = {n: np.array(state["m"][n], dtype=float) for n in names}
        v = {n: np.array(state["v"][n], dtype=float) for n in names}
        grad: Mapping[str, Array] = {n: np.array(state["grad"][n], dtype=float) for n in names}
        J = float(state["J"])
        load = getattr(objective, "load_state", None)
        if callable(load) and "objective" in state:
            load(state["objective"])
        hist = _History(callback, offset=start + 1)
        stop = False
    else:
        start = 0
        project(params, box)
        m = {n: np.zeros_like(params[n]) for n in names}
        v = {n: np.zeros_like(params[n]) for n in names}
        hist = _History(callback)
        J, grad = objective.loss_and_gradient()
        stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names, objective), step=0.0)
        snapshot(0)
    for it in range(start + 1, iterations + 1):
        if stop:
            break
        c1, c2 = 1.0 - b1 ** it, 1.0 - b2 ** it
        moved = {}
        for n in names:
            m[n] = b1 * m[n] + (1.0 - b1) * grad[n]
            v[n] = b2 * v[n] + (1.0 - b2) * grad[n] ** 2
            old = params[n].copy()
            params[n] -= lr * (m[n] / c1) / (np.sqrt(v[n] / c2) + eps)
            project(params, box, (n,))
            moved[n] = params[n] - old
        J, grad = objective.loss_and_gradient()
        stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names, objective),
                        step=_norm(moved, names, objective))
        snapshot(it)
    return hist.arrays()


# -- PAM ----------------------------------------------------------------------------
def _prox_subproblem(objective: Objective, names: Sequence[str], tau: float, box: Box | None, tol: float,
                     maxiter: int) -> tuple[Array, float, int, float]:
    """Solve (5.1a/b): argmin_x J(x, rest) + ||x - x^k||^2 / 2 tau over the box, x = params[names].

    Inner solver: scipy's L-BFGS-B with the exact gradient, stopped when the
    projected gradient of the proximal objective has max-norm <= ``tol``
    (or after ``maxiter`` iterations). A point whose proximal value exceeds the
    start's (which the line search should exclude) is rejected in favour of the
    start, so phi(x^{k+1}) <= phi(x^k) = J(x^k) always holds.
    Returns (x_new, J(x_new), inner iterations, projected-gradient max-norm).
    """
    params = objective.params
    x0 = flatten(params, names)
    lo, hi = _bounds(params, box, names)
    x0 = np.clip(x0, lo, hi)
    inv_tau = 1.0 / tau

    def phi(x: Array) -> tuple[float, Array]:
        unflatten(x, params, names)
        try:
            J, grad = objective.loss_and_gradient()
        except NumericalError:
            return np.inf, np.zeros_like(x)
        d = x - x0
        return J + 0.5 * inv_tau * float(d @ d), flatten(grad, names) + inv_tau * d

    phi0, _ = phi(x0)
    res = optimize.minimize(phi, x0, jac=True, method="L-BFGS-B",
                            bounds=optimize.Bounds(lo, hi),
                            options={"maxiter": maxiter, "gtol": tol, "ftol": 1e-15, "maxcor": 20})
    x = np.clip(res.x, lo, hi)
    val, g = phi(x)
    if not np.isfinite(val) or val > phi0:
        x, (val, g) = x0, phi(x0)
    pg = float(np.max(np.abs(x - np.clip(x - g, lo, hi)))) if x.size else 0.0
    d = x - x0
    unflatten(x, params, names)
    return x, val - 0.5 * inv_tau * float(d @ d), int(res.nit), pg


def pam(objective: Objective, iterations: int, tau: float, groups: Iterable[Iterable[str]],
        box: Box | None = None, inner_tol: float = 1e-6, inner_maxiter: int = 200,
        callback: Callback | None = None, rtol: float = 1e-12) -> History:
    """Proximal alternating minimisation (Liu & Markowich Algorithm 1, eq. 5.1; Attouch et al. 2010).

    ``groups`` is a sequence of lists of parameter names (for the network:
    [["a"], [kernel params, "W", "mu"]]); each outer iteration solves, group by
    group with the other groups frozen at their newest values,
        x_g^{k+1} = argmin_{x_g in box} J(..., x_g, ...) + ||x_g - x_g^k||^2 / 2 tau
    by :func:`_prox_subproblem`. Summing the sub-problem inequalities gives the
    sufficient decrease (paper, after 5.1)
        J(x^{k+1}) <= J(x^k) - sum_g ||x_g^{k+1} - x_g^k||^2 / 2 tau,
    which is checked at every outer iteration: history ``slack`` =
    J(x^k) - sum_g ||dx_g||^2/2tau - J(x^{k+1}) (>= 0 when it holds), ``decrease_ok``
    = 1.0 when slack >= -rtol (|J(x^k)| + 1) (round-off allowance). Also recorded:
    ``inner_iterations`` (summed over the groups) and ``inner_residual`` (largest
    projected-gradient max-norm of the sub-problems at their solutions).
    """
    if tau <= 0:
        raise ValueError(f"PAM step tau must be > 0, got {tau}")
    params = objective.params
    blocks = [list(g) for g in groups]
    flat = [n for g in blocks for n in g]
    if len(set(flat)) != len(flat) or set(flat) - set(params):
        raise ValueError(f"PAM groups must be disjoint lists of parameter names from {', '.join(params)}")
    names = list(params)
    _check_box(params, box)
    project(params, box)
    hist = _History(callback)
    J, grad = objective.loss_and_gradient()
    stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names), step=0.0, slack=0.0,
                    decrease_ok=1.0, inner_iterations=0.0, inner_residual=0.0)
    for _ in range(iterations):
        if stop:
            break
        J_old, moved2, nit, resid = J, 0.0, 0, 0.0
        for g in blocks:
            before = flatten(params, g)
            x, J, it, pg = _prox_subproblem(objective, g, tau, box, inner_tol, inner_maxiter)
            moved2 += float(np.sum((x - before) ** 2))
            nit, resid = nit + it, max(resid, pg)
        J, grad = objective.loss_and_gradient()
        slack = J_old - moved2 / (2.0 * tau) - J
        ok = slack >= -rtol * (abs(J_old) + 1.0)
        stop = hist.row(objective, loss=J, grad_norm=_norm(grad, names), step=np.sqrt(moved2),
                        slack=slack, decrease_ok=float(ok), inner_iterations=float(nit),
                        inner_residual=resid)
    return hist.arrays()


# -- method of successive approximations ----------------------------------------------
def msa(system: PMPSystem, iterations: int, callback: Callback | None = None, rho: float = 0.0) -> History:
    """Method of successive approximations (Liu & Markowich Algorithm 2; Chernousko & Lyubushin 1982).

    Each iteration: forward and backward sweep at theta^k (``system.sweep``),
    then theta^{k+1} = argmax H(f^k, r^k, theta) interval by interval
    (``system.maximise(rho)``; rho = 0 is the plain Hamiltonian). History:
    ``loss``, ``grad_norm`` (of J at theta^k, from the same sweep), ``step``,
    ``hamiltonian`` = int H dt at theta^k, ``hamiltonian_max`` = the maximised
    (augmented) value, and the metrics.
    """
    params = system.params
    names = list(params)
    hist = _History(callback)
    J, grad = system.sweep()
    H = system.hamiltonian()
    stop = hist.row(system, loss=J, grad_norm=_norm(grad, names), step=0.0, hamiltonian=H,
                    hamiltonian_max=np.nan)
    for _ in range(iterations):
        if stop:
            break
        old = {n: params[n].copy() for n in names}
        Hmax = system.maximise(rho)
        step = float(np.sqrt(sum(np.sum((params[n] - old[n]) ** 2) for n in names)))
        J, grad = system.sweep()
        H = system.hamiltonian()
        stop = hist.row(system, loss=J, grad_norm=_norm(grad, names), step=step, hamiltonian=H,
                        hamiltonian_max=Hmax)
    return hist.arrays()


def emsa(system: PMPSystem, iterations: int, rho: float, callback: Callback | None = None) -> History:
    """Extended MSA (Li, Chen, Tai & E 2018): maximise the augmented Hamiltonian
    H~ = H - rho/2 ||f_t - F(f, theta)||^2 - rho/2 ||r_t + D_f H(f, r, theta)||^2
    (both residuals evaluated along the trajectory of theta^k) instead of H."""
    if rho <= 0:
        raise ValueError(f"E-MSA needs rho > 0, got {rho}")
    return msa(system, iterations, callback=callback, rho=rho)
