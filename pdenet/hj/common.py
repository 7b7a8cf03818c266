"""Helpers shared by the ``hamilton-jacobi`` and ``hjb`` models: the loss f as an
expression with a finite-difference gradient, nu from nu or beta, boundary checks."""
import numpy as np

from ..case import Key
from ..errors import CaseError
from ..expr import coordinate_env, coordinate_names

HJ_BOUNDARIES = ("periodic", "extrapolate", "none")

TIME_SCHEMA = {
    "t_end": Key("float", None, "Final time T (give two of t_end, steps, dt).", positive=True),
    "stepper": Key("str", "ssp-rk3", "hamilton-jacobi/hjb: ssp-rk3 (explicit, CFL- and diffusion-limited "
                   "step), euler, imex (ARS(2,2,2): H explicit, nu Lap u implicit, second order; for "
                   "large nu) or imex-euler (forward/backward Euler, first order).",
                   choices=["ssp-rk3", "euler", "imex", "imex-euler"]),
    "cfl": Key("float", 0.5, "hamilton-jacobi/hjb: safety factor of the automatic step "
               "dt = cfl / (sum_d max|dH/dp_d|/h_d + nu sum_d kappa/h_d^2 / 2.5).", positive=True),
}


def resolve_nu(model, prefix="model"):
    """nu from ``nu`` or ``beta`` (nu = 1/(2 beta), the thesis' beta^-1/2); exactly one given."""
    nu, beta = model.get("nu"), model.get("beta")
    if (nu is None) == (beta is None):
        raise CaseError("give exactly one of nu (diffusion coefficient) and beta (nu = 1/(2 beta))",
                        key=f"{prefix}.nu")
    if nu is not None:
        if nu < 0.0:
            raise CaseError(f"must be >= 0, got {nu}", key=f"{prefix}.nu")
        return float(nu)
    if beta <= 0.0:
        raise CaseError(f"must be positive, got {beta}", key=f"{prefix}.beta")
    return 0.5 / float(beta)


def check_mesh(data):
    """HJ stencils: periodic or extrapolate boundaries, >= 4 cells per dimension."""
    b = data["mesh"]["boundary"]
    kinds = []
    for item in (b if isinstance(b, list) else [b]):
        for s in (item if isinstance(item, list) else [item]):
            kinds.append(s.get("kind", "none") if isinstance(s, dict) else str(s))
    bad = [k for k in kinds if k not in HJ_BOUNDARIES]
    if bad:
        raise CaseError(f"{bad[0]!r} is not supported by the HJ schemes; use periodic or extrapolate "
                        "(none means extrapolate)", key="mesh.boundary")
    cells = data["mesh"]["cells"]
    if any(c < 4 for c in (cells if isinstance(cells, list) else [cells])):
        raise CaseError("the HJ stencils need at least 4 cells per dimension", key="mesh.cells")


class Landscape:
    """f(x) from an expression of the coordinates, evaluated at arbitrary points, with a
    central-difference gradient (step 1e-6 (1 + |x|): error ~1e-10 relative)."""

    def __init__(self, case, key, ndim):
        self.ndim = ndim
        self.names = coordinate_names("x", ndim)
        self.expr = case.expression(key, self.names)
        self.key = key

    def __call__(self, points):
        """f at points (..., ndim) (or a tuple of coordinate arrays)."""
        if isinstance(points, tuple):
            arrays = points
        else:
            points = np.asarray(points, float)
            arrays = tuple(points[..., d] for d in range(self.ndim))
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        return self.expr(shape=shape, **coordinate_env("x", arrays))

    def grad(self, points):
        """grad f at points (..., ndim) -> (..., ndim)."""
        points = np.asarray(points, float)
        out = np.empty_like(points)
        for d in range(self.ndim):
            step = 1e-6 * (1.0 + np.abs(points[..., d]))
            pp, pm = points.copy(), points.copy()
            pp[..., d] += step
            pm[..., d] -= step
            out[..., d] = (self(pp) - self(pm)) / (2.0 * step)
        return out

    def on_mesh(self, mesh):
        return self(mesh.centres())

    def grad_on_mesh(self, mesh):
        """(ndim, *cells)."""
        pts = np.stack(mesh.centres(), axis=-1)
        return np.moveaxis(self.grad(pts), -1, 0)


def second_difference_max(u, mesh, k=1):
    """max over dimensions and cells of (u_{i+k} - 2u_i + u_{i-k})/(k h)^2 along each axis
    (wrapped on periodic axes, interior cells otherwise). For k > 1 this is the average of
    u_xx against a hat of half-width k h: bounded by the same semi-concavity bound, but
    insensitive to grid-scale wiggles."""
    best = -np.inf
    for d in range(mesh.ndim):
        h = mesh.spacing[d] * k
        if mesh.boundary[d][0].kind == "periodic":
            d2 = (np.roll(u, -k, axis=d) - 2.0 * u + np.roll(u, k, axis=d)) / h ** 2
        else:
            n = u.shape[d]
            sl = lambda a, b: tuple(slice(a, b) if e == d else slice(None) for e in range(u.ndim))  # noqa: E731
            d2 = (u[sl(2 * k, n)] - 2.0 * u[sl(k, n - k)] + u[sl(0, n - 2 * k)]) / h ** 2
        best = max(best, float(np.max(d2)))
    return best


def interpolate(field, mesh, points):
    """Multilinear interpolation of a cell-centred ``field`` (*cells) at ``points`` (..., ndim);
    periodic axes wrap, others clamp to the end cells."""
    points = np.asarray(points, float)
    idx0, wts = [], []
    for d in range(mesh.ndim):
        n, h, lo = mesh.cells[d], mesh.spacing[d], mesh.lower[d]
        s = (points[..., d] - lo) / h - 0.5
        per = mesh.boundary[d][0].kind == "periodic"
        if not per:
            s = np.clip(s, 0.0, n - 1.0)
        i0 = np.floor(s).astype(np.int64)
        w = s - i0
        if per:
            i0 = np.mod(i0, n)
            i1 = np.mod(i0 + 1, n)
        else:
            i0 = np.minimum(i0, n - 2) if n > 1 else i0
            w = s - i0
            i1 = np.minimum(i0 + 1, n - 1)
        idx0.append((i0, i1))
        wts.append(w)
    out = 0.0
    for corner in range(2 ** mesh.ndim):
        weight = 1.0
        index = []
        for d in range(mesh.ndim):
            bit = (corner >> d) & 1
            index.append(idx0[d][bit])
            weight = weight * (wts[d] if bit else 1.0 - wts[d])
        out = out + weight * field[tuple(index)]
    return out
