"""Diagnostics of a Fokker-Planck density and first-passage times.

All integrals are the mesh's midpoint rule. The free energy and the relative
entropy are those of a gradient drift with scalar D (the Gibbs density
exp(-f/D)/Z is then the discrete steady state, see :mod:`.fv`).
"""
import numpy as np
from scipy import integrate, optimize

from solvers.linear import solve_backward


def _xlogx(p):
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = p[pos] * np.log(p[pos])
    return out


def moments(mesh, rho):
    """mass, mean (ndim,), covariance (ndim, ndim) of rho (normalised by its mass)."""
    mass = mesh.integrate(rho)
    X = mesh.centres()
    if mass <= 0:
        nd = mesh.ndim
        return mass, np.full(nd, np.nan), np.full((nd, nd), np.nan)
    mean = np.array([mesh.integrate(x * rho) / mass for x in X])
    cov = np.empty((mesh.ndim, mesh.ndim))
    for a in range(mesh.ndim):
        for b in range(a, mesh.ndim):
            cov[a, b] = cov[b, a] = mesh.integrate((X[a] - mean[a]) * (X[b] - mean[b]) * rho) / mass
    return mass, mean, cov


def free_energy(mesh, rho, f, D):
    """F[rho] = int f rho + D int rho log rho."""
    return float(mesh.integrate(f * rho + D * _xlogx(rho)))


def relative_entropy(mesh, rho, gibbs):
    """KL(rho | gibbs) = int rho log(rho / gibbs) (gibbs normalised; rho taken as given)."""
    pos = rho > 0
    val = np.zeros_like(rho)
    with np.errstate(divide="ignore"):  # gibbs = 0 where rho > 0: KL = inf, reported as such
        val[pos] = rho[pos] * (np.log(rho[pos]) - np.log(gibbs[pos]))
    return float(mesh.integrate(val))


def circulation(mesh, J, mean):
    """2-D: int (x1 - m1) J2 - (x2 - m2) J1 dx, the angular momentum of the current about the
    mean (zero for a reversible steady state); 1-D/3-D: nan (3-D: see the saved current)."""
    if mesh.ndim != 2:
        return float("nan")
    X1, X2 = mesh.centres()
    return float(mesh.integrate((X1 - mean[0]) * J[1] - (X2 - mean[1]) * J[0]))


def diagnostics(op, rho, D_scalar=None, gibbs=None):
    """Scalar diagnostics of one saved state (dict of floats) and the current (ndim, *cells)."""
    mesh = op.mesh
    mass, mean, cov = moments(mesh, rho)
    J = op.current(rho)
    out = {"mass": float(mass), "min_rho": float(rho.min())}
    for a in range(mesh.ndim):
        out[f"mean_{a + 1}"] = float(mean[a])
    for a in range(mesh.ndim):
        for b in range(a, mesh.ndim):
            out[f"cov_{a + 1}{b + 1}"] = float(cov[a, b])
    out["current_l1"] = float(mesh.integrate(np.sqrt((J ** 2).sum(axis=0))))
    if mesh.ndim == 2:
        out["circulation"] = circulation(mesh, J, mean)
    if op.potential is not None and D_scalar is not None:
        out["free_energy"] = free_energy(mesh, rho, op.potential, D_scalar)
        if gibbs is not None:
            out["relative_entropy"] = relative_entropy(mesh, rho, gibbs)
    return out, J


# ---------------------------------------------------------------------------
# first-passage times
def mfpt_field(A, absorbing_mask):
    """Mean first-passage time T per cell from the backward equation A^T T = -1, T = 0 on the
    absorbing cells (A: the generator with the absorbing set/boundaries built in). It equals
    the time integral of the survival probability of the discrete process started in a cell."""
    n = A.shape[0]
    active = np.ones(n, dtype=bool) if absorbing_mask is None else ~np.asarray(absorbing_mask).ravel()
    return solve_backward(A, -np.ones(n), active)


def exact_mfpt_1d(f, D, x0, b, lower):
    """T(x0) for dX = -f'(X) dt + sqrt(2D) dW reflected at ``lower``, absorbed at b > x0:
    T = (1/D) int_{x0}^{b} exp(f(y)/D) int_{lower}^{y} exp(-f(z)/D) dz dy (adaptive quadrature,
    exponents shifted for range)."""
    fmin = optimize.minimize_scalar(f, bounds=(lower, b), method="bounded").fun
    fmax = max(f(y) for y in np.linspace(x0, b, 2001))

    def inner(y):
        return integrate.quad(lambda z: np.exp(-(f(z) - fmin) / D), lower, y, limit=200,
                              epsabs=0, epsrel=1e-12)[0]

    val = integrate.quad(lambda y: np.exp((f(y) - fmax) / D) * inner(y), x0, b, limit=200,
                         epsabs=0, epsrel=1e-11)[0]
    return val * np.exp((fmax - fmin) / D) / D


def kramers_1d(f, x_min, x_saddle, D, h=1e-4):
    """Kramers' escape time 2 pi / sqrt(f''(x_min) |f''(x_saddle)|) exp((f(x_s) - f(x_min)) / D)."""
    d2 = lambda x: (f(x + h) - 2 * f(x) + f(x - h)) / h ** 2  # noqa: E731
    return float(2 * np.pi / np.sqrt(d2(x_min) * abs(d2(x_saddle))) * np.exp((f(x_saddle) - f(x_min)) / D))
