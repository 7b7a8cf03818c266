"""Particle algorithms on a loss f whose homogenised limits are the HJ/heat PDEs (thesis §4.3, §4.6).

Every algorithm is vectorised over ``runs`` independent copies (arrays (runs, d)), seeded by a
numpy Generator, and takes ``grad`` (a callable (..., d) -> (..., d), the gradient of f).
Temperatures are stated through the PDE's diffusion coefficient nu (nu = beta^-1/2):

* ``sgd`` — Euler-Maruyama of dX = -grad f dt + sqrt(2 nu) dB (thesis 4.2).
* ``entropy_sgd`` — (4.39)-(4.41): L inner Langevin steps
  y <- y - eta_y [grad f(y) + (y - x)/gamma] + sqrt(4 eta_y nu) xi from y = x, exponential
  average <y> <- a <y> + (1 - a) y, then x <- x - eta (x - <y>)/gamma. The inner noise
  sqrt(4 eta_y nu) = sqrt(2 eta_y beta^-1) makes the inner invariant measure
  exp(-(f(y) + |x - y|^2/(2 gamma))/(2 nu)), the measure of Lemma 4.1 whose mean gives
  grad u(x, gamma) = (x - <y>)/gamma for u the viscous HJ solution with this nu (the printed
  (4.39) has sqrt(eta_y beta^-1), which samples the same measure at 2 beta).
  Scoping: gamma_k = gamma (1 + scoping)^(-k) after outer step k (the "clock" of the
  scope advances with the outer iterations).
* ``hj`` — (4.42), nu = 0: y <- (1 - eta_y/gamma) y + eta_y grad f(x - y) from y = 0 for L
  steps, then x <- x - eta grad f(x - y); the inner fixed point is the proximal point, so the
  step is -eta grad u(x, gamma) of the inviscid HJ (Hopf-Lax).
* ``heat`` — (4.43): x <- x - (eta/L) sum_i grad f(x + eps_i), eps_i ~ N(0, 2 nu gamma I):
  gradient descent on v(., gamma), v_t = nu Lap v (variance 2 nu gamma = beta^-1 gamma).
* ``elastic_sgd`` — (4.25) with n replicas per run: y^i <- y^i - eta [grad f(y^i) +
  (y^i - x)/gamma] + sqrt(4 eta nu) xi, centre x <- x + eta (mean_i y^i - x)/gamma.

:func:`entropy_gradient` is the homogenisation check: the average inner-loop direction
(x - <y>)/gamma with its Monte Carlo standard error.
"""
import numpy as np

ALGORITHMS = ("sgd", "entropy-sgd", "hj", "heat", "elastic")


def sgd(grad, x0, steps, eta, nu, rng, record=1):
    x = np.array(x0, float)
    path = [x.copy()]
    for k in range(steps):
        x = x - eta * grad(x) + np.sqrt(2.0 * eta * nu) * rng.standard_normal(x.shape)
        if (k + 1) % record == 0:
            path.append(x.copy())
    return x, np.stack(path, axis=1)


def entropy_sgd(grad, x0, steps, eta, gamma, nu, rng, inner=20, eta_y=0.1, average=0.75, scoping=0.0,
                record=1):
    x = np.array(x0, float)
    path = [x.copy()]
    g = float(gamma)
    for k in range(steps):
        y = x.copy()
        mean = x.copy()
        for _ in range(inner):
            y = y - eta_y * (grad(y) + (y - x) / g) + np.sqrt(4.0 * eta_y * nu) * rng.standard_normal(x.shape)
            mean = average * mean + (1.0 - average) * y
        x = x - eta * (x - mean) / g
        g = g / (1.0 + scoping)
        if (k + 1) % record == 0:
            path.append(x.copy())
    return x, np.stack(path, axis=1)


def hj(grad, x0, steps, eta, gamma, rng=None, inner=5, eta_y=0.1, record=1):
    x = np.array(x0, float)
    path = [x.copy()]
    for k in range(steps):
        y = np.zeros_like(x)
        for _ in range(inner):
            y = (1.0 - eta_y / gamma) * y + eta_y * grad(x - y)
        x = x - eta * grad(x - y)
        if (k + 1) % record == 0:
            path.append(x.copy())
    return x, np.stack(path, axis=1)


def heat(grad, x0, steps, eta, gamma, nu, rng, samples=20, record=1):
    x = np.array(x0, float)
    path = [x.copy()]
    sd = np.sqrt(2.0 * nu * gamma)
    for k in range(steps):
        eps = sd * rng.standard_normal((samples,) + x.shape)
        x = x - eta * np.mean(grad(x[None] + eps), axis=0)
        if (k + 1) % record == 0:
            path.append(x.copy())
    return x, np.stack(path, axis=1)


def elastic_sgd(grad, x0, steps, eta, gamma, nu, rng, replicas=4, record=1):
    x = np.array(x0, float)
    y = np.repeat(x[None], replicas, axis=0)  # (n, runs, d)
    path = [x.copy()]
    for k in range(steps):
        y = y - eta * (grad(y) + (y - x[None]) / gamma) + np.sqrt(4.0 * eta * nu) * rng.standard_normal(y.shape)
        x = x + eta * (y.mean(axis=0) - x) / gamma
        if (k + 1) % record == 0:
            path.append(x.copy())
    return x, np.stack(path, axis=1)


def run_algorithm(name, grad, x0, opts, rng):
    """Dispatch on ``name`` with the options dict of a ``[particles]`` table."""
    common = dict(record=opts["record_every"])
    steps, eta, gamma, nu = opts["steps"], opts["eta"], opts["gamma"], opts["nu"]
    if name == "sgd":
        return sgd(grad, x0, steps, eta, nu, rng, **common)
    if name == "entropy-sgd":
        return entropy_sgd(grad, x0, steps, eta, gamma, nu, rng, inner=opts["inner"], eta_y=opts["eta_y"],
                           average=opts["average"], scoping=opts["scoping"], **common)
    if name == "hj":
        return hj(grad, x0, steps, eta, gamma, rng, inner=opts["inner_hj"], eta_y=opts["eta_y"], **common)
    if name == "heat":
        return heat(grad, x0, steps, eta, gamma, nu, rng, samples=opts["inner"], **common)
    if name == "elastic":
        return elastic_sgd(grad, x0, steps, eta, gamma, nu, rng, replicas=opts["replicas"], **common)
    raise ValueError(f"unknown algorithm {name!r}")


def entropy_gradient(grad, points, gamma, nu, rng, runs=200, inner=2000, burn=200, eta_y=0.005):
    """Homogenised Entropy-SGD direction at each of ``points`` (m, d): the Langevin inner loop of
    (4.39) (noise as in :func:`entropy_sgd`) from y = x, averaged linearly after ``burn`` steps,
    gives (x - <y>)/gamma per run. Returns (mean (m, d), standard error (m, d)) over ``runs``."""
    points = np.asarray(points, float)
    x = np.repeat(points[:, None, :], runs, axis=1)  # (m, runs, d)
    y = x.copy()
    acc = np.zeros_like(x)
    noise = np.sqrt(4.0 * eta_y * nu)
    for k in range(inner):
        y = y - eta_y * (grad(y) + (y - x) / gamma) + noise * rng.standard_normal(y.shape)
        if k >= burn:
            acc += y
    ybar = acc / (inner - burn)
    g = (x - ybar) / gamma
    return g.mean(axis=1), g.std(axis=1, ddof=1) / np.sqrt(runs)


def start_points(rng, runs, x0, spread, ndim):
    """``runs`` start points (runs, ndim): x0 (one number per dimension, or one for all) plus a
    Gaussian spread of standard deviation ``spread``."""
    x0 = np.broadcast_to(np.atleast_1d(np.asarray(x0, float)), (ndim,))
    return x0[None, :] + spread * rng.standard_normal((runs, ndim))
