"""Loss landscapes f(x) on a mesh and at points, shared by the models that solve for or on a
loss landscape (``hamilton-jacobi``, ``hjb``): the expression with a finite-difference gradient,
maximal second differences, interpolation."""
import numpy as np

from .expr import coordinate_env, coordinate_names


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
