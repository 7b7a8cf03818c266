"""Exact solutions of u_t + |grad u|^2/2 = nu Lap u, u(x, 0) = f(x) (and of the heat equation).

* :func:`quadratic` — f = a|x|^2/2 in d dimensions:
  u = a|x|^2 / (2(1 + a t)) + nu d log(1 + a t)
  (check: u_t = -a^2|x|^2/(2(1+at)^2) + nu d a/(1+at) = -|grad u|^2/2 + nu Lap u).
* :func:`cole_hopf` — any f in 1-D, nu > 0: the Cole-Hopf transform w = exp(-u/(2 nu))
  turns the equation into the heat equation w_t = nu w_xx, so
  u(x, t) = -2 nu log( G_{2 nu t} * exp(-f/(2 nu)) )(x), G_s the Gaussian of variance s.
  Evaluated by the trapezoidal rule (spectrally accurate for this smooth, rapidly decaying
  integrand) on a fine grid, in log-sum-exp form so that small nu does not underflow.
* :func:`hopf_lax` — nu = 0, 1-D: u(x, t) = min_y f(y) + |x - y|^2/(2t) (the Moreau
  envelope), by minimisation over a fine grid refined by golden-section search in the
  bracket of the discrete minimiser.
* :func:`heat` — v = G_{2 nu t} * f (heat-equation smoothing), same quadrature.

``f`` is a callable on a numpy array of points; with ``period = (lower, upper)`` it is
evaluated on the periodic extension of its values on [lower, upper).
"""
import numpy as np
from scipy.special import logsumexp


def quadratic(x, t, a=1.0, nu=0.0):
    """u for f = a|x|^2/2; ``x``: tuple of coordinate arrays (one per dimension)."""
    r2 = sum(np.asarray(xi, float) ** 2 for xi in x)
    return a * r2 / (2.0 * (1.0 + a * t)) + nu * len(x) * np.log1p(a * t)


def _wrap(f, period):
    if period is None:
        return f
    lo, hi = period
    return lambda y: f(lo + np.mod(y - lo, hi - lo))


def _ygrid(x, width, spacing):
    lo, hi = float(np.min(x)) - width, float(np.max(x)) + width
    n = int(np.ceil((hi - lo) / spacing)) + 1
    return np.linspace(lo, hi, n)


def _gaussian_grid(x, s, period, spacing):
    """Quadrature nodes y (and their spacing) for a Gaussian of variance s around the points x:
    14 standard deviations beyond them, spacing sd/12 (or L/2000 if finer)."""
    sd = np.sqrt(s)
    L = (period[1] - period[0]) if period is not None else (np.ptp(x) or 1.0)
    y = _ygrid(x, 14.0 * sd, spacing or min(sd / 12.0, L / 2000.0))
    return y, y[1] - y[0]


def cole_hopf(f, x, t, nu, period=None, spacing=None, chunk=256):
    """u(x, t) of the viscous HJ equation in 1-D by Cole-Hopf quadrature (nu > 0)."""
    x = np.asarray(x, float)
    if nu <= 0.0:
        raise ValueError("cole_hopf needs nu > 0 (use hopf_lax for nu = 0)")
    f = _wrap(f, period)
    if t <= 0.0:
        return f(x)
    s = 2.0 * nu * t
    y, h = _gaussian_grid(x, s, period, spacing)
    g = -f(y) / (2.0 * nu)
    out = np.empty(x.size)
    xf = x.ravel()
    for i in range(0, xf.size, chunk):
        xi = xf[i:i + chunk, None]
        E = g[None, :] - (xi - y[None, :]) ** 2 / (2.0 * s)
        out[i:i + chunk] = logsumexp(E, axis=1) + np.log(h) - 0.5 * np.log(2.0 * np.pi * s)
    return (-2.0 * nu * out).reshape(x.shape)


def heat(f, x, t, nu, period=None, spacing=None, chunk=256):
    """v(x, t) = (G_{2 nu t} * f)(x): the heat-equation smoothing of f in 1-D."""
    x = np.asarray(x, float)
    f = _wrap(f, period)
    if t <= 0.0 or nu <= 0.0:
        return f(x)
    s = 2.0 * nu * t
    y, h = _gaussian_grid(x, s, period, spacing)
    fy = f(y)
    out = np.empty(x.size)
    xf = x.ravel()
    for i in range(0, xf.size, chunk):
        w = np.exp(-(xf[i:i + chunk, None] - y[None, :]) ** 2 / (2.0 * s))
        out[i:i + chunk] = (w @ fy) * h / np.sqrt(2.0 * np.pi * s)
    return out.reshape(x.shape)


def hopf_lax(f, x, t, domain, period=None, spacing=None, chunk=128):
    """u(x, t) = min_y f(y) + (x - y)^2/(2t) in 1-D (nu = 0).

    ``domain`` = (lower, upper) of the mesh; the minimiser lies within
    sqrt(2 t (max f - min f)) of x, so the search covers that margin around the domain."""
    x = np.asarray(x, float)
    f = _wrap(f, period)
    if t <= 0.0:
        return f(x)
    lo, hi = domain
    probe = f(np.linspace(lo, hi, 4001))
    width = np.sqrt(2.0 * t * max(np.ptp(probe), 1e-12)) + 1e-9
    h = spacing or (hi - lo) / 40000.0
    y = _ygrid(x, width, h)
    h = y[1] - y[0]
    fy = f(y)
    out = np.empty(x.size)
    xf = x.ravel()
    for i in range(0, xf.size, chunk):
        G = fy[None, :] + (xf[i:i + chunk, None] - y[None, :]) ** 2 / (2.0 * t)
        k = np.clip(np.argmin(G, axis=1), 1, y.size - 2)
        xi = xf[i:i + chunk]
        # golden-section search in the bracket [y_{k-1}, y_{k+1}] around the discrete minimiser
        lo_, hi_ = y[k - 1], y[k + 1]
        g = lambda z: f(z) + (xi - z) ** 2 / (2.0 * t)  # noqa: E731
        r = 0.5 * (np.sqrt(5.0) - 1.0)
        c, d = hi_ - r * (hi_ - lo_), lo_ + r * (hi_ - lo_)
        gc, gd = g(c), g(d)
        for _ in range(60):
            left = gc < gd
            hi_ = np.where(left, d, hi_)
            lo_ = np.where(left, lo_, c)
            c_new = hi_ - r * (hi_ - lo_)
            d_new = lo_ + r * (hi_ - lo_)
            c, d = np.where(left, c_new, d), np.where(left, c, d_new)
            gc, gd = np.where(left, g(c), gd), np.where(left, gc, g(d))
        out[i:i + chunk] = np.minimum(np.minimum(gc, gd), G[np.arange(G.shape[0]), k])
    return out.reshape(x.shape)
