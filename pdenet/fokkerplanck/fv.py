"""Finite-volume Fokker-Planck operator on the structured cell-centred meshes.

    rho_t = div(rho grad f) + div(D grad rho) - div(b rho) = -div J,
    J = v rho - D grad rho,    v = -grad f + b   (the drift velocity).

Face fluxes (per unit area, positive in the + direction of dimension d,
between the cells L and R = L + e_d at distance h):

    J = cL rho_L - cR rho_R,
    cL = (D_f / h) B(-z),  cR = (D_f / h) B(z),  z = v_f h / D_f,

the Scharfetter-Gummel (exponential fitting) flux with the Bernoulli function
B(z) = z / (e^z - 1). For a gradient drift the face velocity is
v_f = -(f_R - f_L)/h, so z = -(f_R - f_L)/D_f and J vanishes exactly for
rho ∝ exp(-f/D): the discrete Gibbs density is a steady state to round-off.
For a general drift b the component b_d is sampled at the face centres. Off-
diagonal entries of a constant tensor D add the conservative central flux
-D_de (d_e rho)_f, with d_e rho at the face the mean of the central
differences in the two neighbouring cells.

State-dependent tensors D(x) (:class:`TensorField`, values at the cell and face centres)
come in two forms (``form``):

* ``"ito"``  rho_t = -div(v rho) + div(div(D rho)), the law of dX = v dt + sqrt(2D) dB read in
  Ito's sense (thesis (6.8)); J_d = v_d rho - sum_e d_e(D_de rho). The diagonal part is the
  Scharfetter-Gummel flux of u = D_dd rho with unit diffusion and velocity v_d / D_dd:
  cL = B(-z) D_dd(x_L) / h, cR = B(z) D_dd(x_R) / h, z = v_f h / D_dd,f. In 1-D its zero-flux
  state is D(x_{k+1}) rho_{k+1} / (D(x_k) rho_k) = exp(h b_f / D_f), the midpoint rule of
  rho ∝ D^-1 exp(int b / D).
* ``"fick"`` rho_t = -div(v rho) + div(D grad rho) (Remark 6.9), J = v rho - D grad rho: the SG
  flux above with cL = D_f B(-z) / h, cR = D_f B(z) / h.

For a constant D both forms are one equation. The off-diagonal entries add the central flux
-D_de,f (d_e rho)_f (fick) or -(d_e (D_de rho))_f (ito) on the interior and periodic faces, as
for a constant tensor; they are not monotone, so rho >= 0 then holds only to the discretisation
error (the diagonal SG part alone gives an M-matrix: rho >= 0 exactly). Every term is a face
flux, so mass is conserved to round-off in both forms.

Boundaries per side: ``noflux`` (J = 0 on the boundary face; ``none``,
``neumann`` with value 0 mean the same), ``periodic``, ``dirichlet`` with
value 0 (absorbing: rho = 0 on the boundary face, a half-cell SG flux).
An absorbing *set* of cells (``absorbing`` mask) holds rho = 0 there: what
flows in disappears.

``FokkerPlanckOperator(mesh, potential=..., drift=..., diffusion=...)`` gives
``matrix()`` (scipy.sparse CSR generator A with rho' = A rho on the flattened
cells), ``apply(rho)`` (the numba kernel), ``explicit_steps`` (numba forward
Euler), ``current(rho)`` (cell-centred current) and the discrete Gibbs density.
"""
import numba
import numpy as np
import scipy.sparse as sp

ABSORBING, NOFLUX, PERIODIC = "dirichlet", "noflux", "periodic"


def bernoulli(z):
    """B(z) = z / (e^z - 1), B(0) = 1, evaluated stably (series for |z| < 1e-2)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-2
    zs = z[small]
    z2 = zs * zs
    out[small] = 1.0 - 0.5 * zs + z2 / 12.0 - z2 * z2 / 720.0 + z2 * z2 * z2 / 30240.0
    zl = z[~small]
    with np.errstate(over="ignore"):
        out[~small] = zl / np.expm1(zl)
    return out


def _side_kind(b):
    kind = b.kind
    if kind in ("none", "noflux") or (kind == "neumann" and b.value == 0.0):
        return NOFLUX
    if kind == "periodic":
        return PERIODIC
    if kind == "dirichlet" and b.value == 0.0:
        return ABSORBING
    raise ValueError(f"the Fokker-Planck model takes noflux, periodic or dirichlet (value 0, absorbing) "
                     f"boundaries, got {kind} with value {b.value:g}")


def boundary_kinds(mesh):
    """(low, high) of noflux/periodic/dirichlet per dimension; ValueError for another boundary."""
    return tuple(tuple(_side_kind(b) for b in pair) for pair in mesh.boundary)


def face_coordinates(mesh, d):
    """Coordinates of the face centres normal to dimension d, shape cells with cells[d] + 1."""
    axes = list(mesh.axes)
    axes[d] = mesh.faces[d]
    return tuple(np.meshgrid(*axes, indexing="ij"))


def _pad3(a):
    """View of a 1-3-D array as 3-D with leading unit axes (the last axis stays the
    contiguous inner loop of the kernels)."""
    a = np.asarray(a, dtype=np.float64)
    return np.ascontiguousarray(a.reshape((1,) * (3 - a.ndim) + a.shape))


# ---------------------------------------------------------------------------
# numba kernels (arrays padded to 3-D; unused dimensions have active = 0)
@numba.njit(cache=True, inline="always")
def _nb(i, n, per):
    """Index of the lower/upper neighbour along an axis and its weight (0 for a zero ghost)."""
    if i >= 0 and i < n:
        return i, 1.0
    if per:
        return i % n, 1.0
    return 0, 0.0


@numba.njit(cache=True, inline="always")
def _fp_axis(r, lo, hi, cLlo, cRlo, cLhi, cRhi, h):
    """The flux divergence of a cell along one axis: the inflow through its lower face
    (J = cL rho_lo - cR rho) minus the outflow through its upper face (J = cL rho - cR rho_hi),
    times 1/spacing. ``lo``/``hi`` are the neighbours' values (0 for a zero ghost).

    The one place of the scheme's per-cell arithmetic: the serial kernel (:func:`_fp_apply`)
    and the distributed one (:func:`_fp_euler_local`) sum it over the active axes 0, 1, 2
    in this order, so both give the same numbers bit for bit. Scalars only (an inlined
    function taking arrays costs reference counting in the inner loop)."""
    return h * ((cLlo * lo - cRlo * r) - (cLhi * r - cRhi * hi))


@numba.njit(cache=True, inline="always")
def _fp_update(r, acc, kv, dt, euler):
    """The new value of a cell from its A rho = acc: rho + dt A rho (euler) or A rho;
    kv = 0 in absorbing cells (A rho = 0 there), else 1."""
    acc = acc * kv
    return r + dt * acc if euler else acc


@numba.njit(cache=True, parallel=True)
def _fp_apply(rho, out, cL0, cR0, cL1, cR1, cL2, cR2, inv_h, active, periodic, keep, has_keep, dt, euler):
    """out = A rho (euler = False) or out = rho + dt A rho (euler = True), one fused pass.

    The rows (i, j) are shared among numba's threads (each cell computed by one thread, so the
    result does not depend on the thread count); the neighbours along axes 0 and 1 are resolved
    once per row; the inner loop over the interior of the contiguous axis 2 has no boundary
    branches, its two end cells are done by the general loop below it."""
    n0, n1, n2 = rho.shape
    h0, h1, h2 = inv_h[0], inv_h[1], inv_h[2]
    a0, a1, a2 = active[0] != 0, active[1] != 0, active[2] != 0
    for row in numba.prange(n0 * n1):
        i = row // n1
        j = row % n1
        im, wim = _nb(i - 1, n0, periodic[0])
        ip, wip = _nb(i + 1, n0, periodic[0])
        jm, wjm = _nb(j - 1, n1, periodic[1])
        jp, wjp = _nb(j + 1, n1, periodic[1])
        for k in range(1, n2 - 1):
            r = rho[i, j, k]
            acc = 0.0
            if a0:
                acc += _fp_axis(r, wim * rho[im, j, k], wip * rho[ip, j, k],
                                cL0[i, j, k], cR0[i, j, k], cL0[i + 1, j, k], cR0[i + 1, j, k], h0)
            if a1:
                acc += _fp_axis(r, wjm * rho[i, jm, k], wjp * rho[i, jp, k],
                                cL1[i, j, k], cR1[i, j, k], cL1[i, j + 1, k], cR1[i, j + 1, k], h1)
            acc += _fp_axis(r, rho[i, j, k - 1], rho[i, j, k + 1],
                            cL2[i, j, k], cR2[i, j, k], cL2[i, j, k + 1], cR2[i, j, k + 1], h2)
            out[i, j, k] = _fp_update(r, acc, keep[i, j, k] if has_keep else 1.0, dt, euler)
        for e in range(2 if n2 > 1 else 1):
            k = 0 if e == 0 else n2 - 1
            km, wkm = _nb(k - 1, n2, periodic[2])
            kp, wkp = _nb(k + 1, n2, periodic[2])
            r = rho[i, j, k]
            acc = 0.0
            if a0:
                acc += _fp_axis(r, wim * rho[im, j, k], wip * rho[ip, j, k],
                                cL0[i, j, k], cR0[i, j, k], cL0[i + 1, j, k], cR0[i + 1, j, k], h0)
            if a1:
                acc += _fp_axis(r, wjm * rho[i, jm, k], wjp * rho[i, jp, k],
                                cL1[i, j, k], cR1[i, j, k], cL1[i, j + 1, k], cR1[i, j + 1, k], h1)
            if a2:
                acc += _fp_axis(r, wkm * rho[i, j, km], wkp * rho[i, j, kp],
                                cL2[i, j, k], cR2[i, j, k], cL2[i, j, k + 1], cR2[i, j, k + 1], h2)
            out[i, j, k] = _fp_update(r, acc, keep[i, j, k] if has_keep else 1.0, dt, euler)


@numba.njit(cache=True)
def _fp_euler_steps(rho, tmp, cL0, cR0, cL1, cR1, cL2, cR2, inv_h, active, periodic, keep, has_keep,
                    dt, nsteps):
    """nsteps forward-Euler steps rho <- rho + dt A rho; returns the array holding the result."""
    a, b = rho, tmp
    for _ in range(nsteps):
        _fp_apply(a, b, cL0, cR0, cL1, cR1, cL2, cR2, inv_h, active, periodic, keep, has_keep, dt, True)
        a, b = b, a
    return a


@numba.njit(cache=True)
def _fp_euler_local(loc, out, cL0, cR0, cL1, cR1, cL2, cR2, inv_h, active, off, keep, has_keep, dt):
    """One forward-Euler step of a rank's block: out = rho + dt A rho on the owned cells.

    ``loc``: the rank's block padded by one ghost cell on each side of every axis with
    ``off = 1`` (the axes added to reach 3-D have ``off = 0`` and are inactive; axis 2 is
    always a mesh axis, its offset 1 is built in); the ghosts
    hold the neighbours' values (other ranks, periodic wrap) and 0 beyond a physical boundary
    (the no-flux faces have zero coefficients, the absorbing ones a zero ghost, as in
    :func:`_fp_apply`). ``out``, the coefficient arrays and ``keep`` are the owned block.
    No boundary branches: every neighbour is in ``loc``. Per cell the arithmetic of
    :func:`_fp_apply` (:func:`_fp_axis`, :func:`_fp_update`), in the same order."""
    m0, m1, m2 = out.shape
    h0, h1, h2 = inv_h[0], inv_h[1], inv_h[2]
    a0, a1, a2 = active[0] != 0, active[1] != 0, active[2] != 0
    o0, o1 = off[0], off[1]   # the contiguous axis 2 is always a mesh axis: offset 1
    for i in range(m0):
        ri = i + o0
        for j in range(m1):
            rj = j + o1
            for k in range(m2):
                rk = k + 1        # rk - 1 >= 0 is then evident (no negative-index wrap per access)
                r = loc[ri, rj, rk]
                acc = 0.0
                if a0:
                    acc += _fp_axis(r, loc[ri - 1, rj, rk], loc[ri + 1, rj, rk],
                                    cL0[i, j, k], cR0[i, j, k], cL0[i + 1, j, k], cR0[i + 1, j, k], h0)
                if a1:
                    acc += _fp_axis(r, loc[ri, rj - 1, rk], loc[ri, rj + 1, rk],
                                    cL1[i, j, k], cR1[i, j, k], cL1[i, j + 1, k], cR1[i, j + 1, k], h1)
                if a2:
                    acc += _fp_axis(r, loc[ri, rj, rk - 1], loc[ri, rj, rk + 1],
                                    cL2[i, j, k], cR2[i, j, k], cL2[i, j, k + 1], cR2[i, j, k + 1], h2)
                out[i, j, k] = _fp_update(r, acc, keep[i, j, k] if has_keep else 1.0, dt, True)


FORMS = ("ito", "fick")


class TensorField:
    """A symmetric diffusion field D(x): ``cells`` (ndim, ndim, *cells) at the cell centres and
    ``faces[d]`` (ndim, ndim, *cells with cells[d] + 1) at the face centres normal to d."""

    def __init__(self, cells, faces):
        self.cells = np.asarray(cells, dtype=float)
        self.faces = [np.asarray(f, dtype=float) for f in faces]

    @classmethod
    def from_callables(cls, mesh, entries):
        """From an ndim x ndim nested list of numbers or callables ``e(*coords)``, evaluated at
        the cell and face centres (symmetry is checked by :meth:`check`, not imposed)."""
        nd = mesh.ndim

        def values(x, coords, shape):
            v = x(*coords) if callable(x) else x
            return np.broadcast_to(np.asarray(v, dtype=float), shape)
        cells = np.empty((nd, nd) + tuple(mesh.cells))
        for a in range(nd):
            for b in range(nd):
                cells[a, b] = values(entries[a][b], mesh.centres(), mesh.cells)
        faces = []
        for d in range(nd):
            shape = list(mesh.cells)
            shape[d] += 1
            F = np.empty((nd, nd) + tuple(shape))
            X = face_coordinates(mesh, d)
            for a in range(nd):
                for b in range(nd):
                    F[a, b] = values(entries[a][b], X, tuple(shape))
            faces.append(F)
        return cls(cells, faces)

    @property
    def off_diagonal(self):
        nd = self.cells.shape[0]
        return any(np.any(self.cells[a, b] != 0) or any(np.any(F[a, b] != 0) for F in self.faces)
                   for a in range(nd) for b in range(nd) if a != b)

    def check(self, mesh):
        """ValueError naming the first cell where D is not symmetric positive definite (and the
        first face where a diagonal entry is not positive)."""
        nd = self.cells.shape[0]
        C = np.moveaxis(self.cells.reshape(nd, nd, -1), -1, 0)   # (N, nd, nd)
        if not np.all(np.isfinite(C)):
            bad = int(np.flatnonzero(~np.isfinite(C).all(axis=(1, 2)))[0])
            raise ValueError(f"the diffusion tensor is not finite at cell {self._where(mesh, bad)}")
        asym = np.abs(C - np.swapaxes(C, 1, 2)).max(axis=(1, 2)) > 1e-12 * (1 + np.abs(C).max(axis=(1, 2)))
        if asym.any():
            bad = int(np.flatnonzero(asym)[0])
            raise ValueError(f"the diffusion tensor must be symmetric: not at cell {self._where(mesh, bad)}")
        lam = np.linalg.eigvalsh(C).min(axis=1)
        if np.any(lam <= 0):
            bad = int(np.flatnonzero(lam <= 0)[0])
            raise ValueError(f"the diffusion tensor must be positive definite: at cell {self._where(mesh, bad)} "
                             f"its smallest eigenvalue is {lam[bad]:.4g}")
        for d, F in enumerate(self.faces):
            if np.any(F[d, d] <= 0) or not np.all(np.isfinite(F[d, d])):
                raise ValueError("the diffusion coefficient must be positive on every face "
                                 f"(D_{d + 1}{d + 1} is not, at a face normal to x{d + 1})")

    @staticmethod
    def _where(mesh, flat):
        i = np.unravel_index(flat, mesh.cells)
        x = [float(c[i]) for c in mesh.centres()]
        return f"{tuple(int(k) for k in i)} (x = {', '.join(f'{v:.4g}' for v in x)})"


class FokkerPlanckOperator:
    """The finite-volume generator of rho_t = div(rho grad f) + div(D grad rho) - div(b rho).

    Parameters
    ----------
    mesh : pdenet.mesh.Mesh (its boundary conditions are used)
    potential : array of cell-centre values of f, a callable f(*coords), or None
    drift : None, or a sequence of ndim callables b_d(*coords) (evaluated at the
        face centres normal to d) or face-shaped arrays: a drift velocity added to -grad f
    diffusion : a positive number (isotropic), a sequence of ndim numbers (diagonal),
        an ndim x ndim symmetric positive-definite matrix (constant tensor), a
        :class:`TensorField` (a state-dependent tensor), or a sequence of ndim callables
        (diagonal field D_d(x)) or face-shaped arrays (diagonal field at the faces, fick only)
    absorbing : optional boolean mask of cells held at rho = 0
    form : "ito" (default, div(div(D rho))) or "fick" (div(D grad rho)); the same for a constant D
    """

    def __init__(self, mesh, potential=None, drift=None, diffusion=1.0, absorbing=None, form="ito"):
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        self.form = form
        self.mesh = mesh
        nd = mesh.ndim
        self.ndim = nd
        self.kinds = boundary_kinds(mesh)
        self.periodic = tuple(k[0] == PERIODIC for k in self.kinds)
        if potential is not None and callable(potential):
            potential = potential(*mesh.centres())
        self.potential = None if potential is None else np.broadcast_to(
            np.asarray(potential, dtype=float), mesh.cells).copy()
        self.drift = drift
        self.tensor = None
        self.diag_field = None
        self.field = None
        D = diffusion
        if isinstance(D, TensorField):
            D.check(mesh)
            self.field = D
            self.D_diag = None
        elif form == "ito" and (callable(D) or (isinstance(D, (list, tuple)) and len(D) == nd
                                                 and any(callable(x) for x in D)
                                                 and all(callable(x) or np.ndim(x) == 0 for x in D))):
            items = [D] * nd if callable(D) else list(D)
            self.field = TensorField.from_callables(
                mesh, [[items[a] if a == b else 0.0 for b in range(nd)] for a in range(nd)])
            self.field.check(mesh)
            self.D_diag = None
        elif callable(D) or (isinstance(D, (list, tuple)) and len(D) == nd and not _is_matrix(D, nd)
                           and any(callable(x) or np.ndim(x) == nd for x in D)):
            items = [D] * nd if callable(D) else list(D)
            if form == "ito":
                raise ValueError("form ito needs D at the cell centres too: give callables or a TensorField")
            self.diag_field = [self._face_values(x, d) for d, x in enumerate(items)]
            self.D_diag = None
        elif _is_matrix(D, nd):
            M = np.asarray(D, dtype=float)
            if not np.allclose(M, M.T):
                raise ValueError("the diffusion tensor must be symmetric")
            if np.any(np.linalg.eigvalsh(M) <= 0):
                raise ValueError("the diffusion tensor must be positive definite")
            self.tensor = M
            self.D_diag = np.diag(M).copy()
        else:
            d = np.asarray(D, dtype=float)
            self.D_diag = np.full(nd, float(d)) if d.ndim == 0 else d.copy()
            if self.D_diag.shape != (nd,):
                raise ValueError(f"give one diffusion coefficient or {nd}")
            if np.any(self.D_diag <= 0):
                raise ValueError("diffusion coefficients must be positive")
        if absorbing is not None:
            absorbing = np.broadcast_to(np.asarray(absorbing, dtype=bool), mesh.cells)
            if not absorbing.any():
                absorbing = None
        self.absorbing = absorbing
        self._coefficients()

    # -- construction -------------------------------------------------------
    def _face_values(self, x, d):
        shape = list(self.mesh.cells)
        shape[d] += 1
        if callable(x):
            x = x(*face_coordinates(self.mesh, d))
        return np.broadcast_to(np.asarray(x, dtype=float), tuple(shape)).copy()

    @property
    def has_cross_terms(self):
        return any(C is not None for C in self._cross_ops)

    @property
    def is_gradient(self):
        """Gradient drift with a scalar constant D: the Gibbs density is the steady state."""
        return (self.potential is not None and self.drift is None and self.diag_field is None
                and self.field is None and not self.has_cross_terms and np.all(self.D_diag == self.D_diag[0]))

    def _coefficients(self):
        mesh, nd = self.mesh, self.ndim
        self.cL, self.cR = [], []
        for d in range(nd):
            n, h = mesh.cells[d], mesh.spacing[d]
            shape = list(mesh.cells)
            shape[d] += 1
            shape = tuple(shape)
            # face velocity v*h (per face distance) and face diffusion
            vh = np.zeros(shape)
            dist = np.full(shape, h)
            low, high = self.kinds[d]
            sl = [slice(None)] * nd

            def at(i):
                s = list(sl)
                s[d] = i
                return tuple(s)
            if self.potential is not None:
                f = self.potential
                df = np.diff(f, axis=d)
                vh[at(slice(1, n))] = -df
                if self.periodic[d]:
                    wrap = -(f[at(slice(0, 1))] - f[at(slice(n - 1, n))])
                    vh[at(slice(0, 1))] = wrap
                    vh[at(slice(n, n + 1))] = wrap
                elif n > 1:
                    # absorbing faces: one-sided gradient over half a cell
                    vh[at(slice(0, 1))] = -0.5 * (f[at(slice(1, 2))] - f[at(slice(0, 1))])
                    vh[at(slice(n, n + 1))] = -0.5 * (f[at(slice(n - 1, n))] - f[at(slice(n - 2, n - 1))])
            if not self.periodic[d]:
                dist[at(slice(0, 1))] = 0.5 * h
                dist[at(slice(n, n + 1))] = 0.5 * h
            if self.drift is not None:
                b = self._face_values(self.drift[d], d)
                vh = vh + b * dist
            if self.field is not None:
                Df = self.field.faces[d][d, d]
            else:
                Df = self.diag_field[d] if self.diag_field is not None else np.full(shape, self.D_diag[d])
            if np.any(Df <= 0):
                raise ValueError("the diffusion coefficient must be positive on every face")
            z = vh / Df
            if self.field is not None and self.form == "ito":
                # SG flux of u = D_dd rho: the cell values on the two sides of every face
                Dc = self.field.cells[d, d]
                first, last = np.take(Dc, [0], axis=d), np.take(Dc, [n - 1], axis=d)
                lowg, highg = (last, first) if self.periodic[d] else (first, last)
                DL = np.concatenate([lowg, Dc], axis=d)
                DR = np.concatenate([Dc, highg], axis=d)
                cL = DL / dist * bernoulli(-z)
                cR = DR / dist * bernoulli(z)
            else:
                cL = Df / dist * bernoulli(-z)
                cR = Df / dist * bernoulli(z)
            if self.periodic[d]:
                # one face: the values at face 0 stand for face n too (coefficients that are
                # not periodic on the box would otherwise give two fluxes through it)
                cL[at(slice(n, n + 1))] = cL[at(slice(0, 1))]
                cR[at(slice(n, n + 1))] = cR[at(slice(0, 1))]
            if not self.periodic[d]:
                for side, kind in ((0, low), (n, high)):
                    if kind == NOFLUX:
                        cL[at(slice(side, side + 1))] = 0.0
                        cR[at(slice(side, side + 1))] = 0.0
            self.cL.append(cL)
            self.cR.append(cR)
        self._cross_ops = [self._cross_operator(d) for d in range(nd)]
        # padded copies for the kernels
        # kernel axis a holds mesh dimension d = a - (3 - ndim) (leading unit axes)
        empty = np.zeros((1, 1, 1))
        self._k = []
        dims = [a - (3 - nd) for a in range(3)]
        for d in dims:
            if d >= 0:
                self._k += [_pad3(self.cL[d]), _pad3(self.cR[d])]
            else:
                self._k += [empty, empty]
        self._inv_h = np.array([1.0 / mesh.spacing[d] if d >= 0 else 1.0 for d in dims])
        self._active = np.array([1 if (d >= 0 and (mesh.cells[d] > 1 or self.periodic[d])) else 0
                                 for d in dims], dtype=np.int64)
        self._per = np.array([int(d >= 0 and self.periodic[d]) for d in dims], dtype=np.int64)
        self._keep = _pad3(~self.absorbing) if self.absorbing is not None else np.ones((1, 1, 1))

    # -- the generator ------------------------------------------------------
    def matrix(self):
        """The generator A (CSR, N x N on C-ordered cells): rho' = A rho."""
        mesh, nd = self.mesh, self.ndim
        N = mesh.size
        idx = np.arange(N).reshape(mesh.cells)
        rows, cols, vals = [], [], []

        def add(r, c, v):
            rows.append(np.ravel(r))
            cols.append(np.ravel(c))
            vals.append(np.ravel(v))
        for d in range(nd):
            n, ih = mesh.cells[d], 1.0 / mesh.spacing[d]
            cL, cR = self.cL[d], self.cR[d]
            take = lambda a, i: np.take(a, i, axis=d)  # noqa: E731
            # interior faces 1..n-1 between cells k-1 and k
            if n > 1:
                L, R = take(idx, np.arange(0, n - 1)), take(idx, np.arange(1, n))
                a, b = take(cL, np.arange(1, n)) * ih, take(cR, np.arange(1, n)) * ih
                add(L, L, -a); add(L, R, b); add(R, L, a); add(R, R, -b)  # noqa: E702
            if self.periodic[d]:
                L, R = take(idx, [n - 1]), take(idx, [0])
                a, b = take(cL, [0]) * ih, take(cR, [0]) * ih
                add(L, L, -a); add(L, R, b); add(R, L, a); add(R, R, -b)  # noqa: E702
            else:
                first, last = take(idx, [0]), take(idx, [n - 1])
                add(first, first, -take(cR, [0]) * ih)     # J_low = -cR rho_0 (outflow counts)
                add(last, last, -take(cL, [n]) * ih)       # J_high = cL rho_{n-1}
        A = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(N, N)).tocsr()
        for d, C in enumerate(self._cross_ops):
            if C is not None:
                A = A - self._divergence(d) @ C
        A = A.tocsr()
        A.sum_duplicates()
        if self.absorbing is not None:
            keep = (~self.absorbing).ravel().astype(float)
            Dk = sp.diags(keep)
            A = (Dk @ A @ Dk).tocsr()
        A.eliminate_zeros()
        return A

    def _neighbour(self, idx, e, shift):
        """Index of the neighbour along e (shift +-1) and its weight (1, 0 for a zero ghost,
        or the cell itself for a no-flux ghost)."""
        n = self.mesh.cells[e]
        k = np.arange(n) + shift
        if self.periodic[e]:
            k = k % n
            return np.take(idx, k, axis=e), np.ones(n)
        kind = self.kinds[e][0 if shift < 0 else 1]
        w = np.ones(n)
        out = np.clip(k, 0, n - 1)
        edge = (k < 0) | (k >= n)
        if kind == ABSORBING:
            w[edge] = 0.0
        return np.take(idx, out, axis=e), w

    def _cross_operator(self, d):
        """The off-diagonal flux through the faces normal to d as a sparse (faces x cells)
        matrix, or None: -sum_e w_de,f (d_e (c_de rho))_f on the interior and periodic faces,
        the face value of d_e the mean of the central differences in the two neighbouring
        cells (a no-flux ghost repeats the cell, an absorbing one is zero). w = D_de at the
        face and c = 1 (fick, or a constant tensor); w = 1 and c = D_de at the cells (ito)."""
        mesh, nd = self.mesh, self.ndim
        if self.tensor is None and (self.field is None or not self.field.off_diagonal):
            return None
        n = mesh.cells[d]
        fshape = list(mesh.cells)
        fshape[d] += 1
        fidx = np.arange(int(np.prod(fshape))).reshape(fshape)
        idx = np.arange(mesh.size).reshape(mesh.cells)
        rows, cols, vals = [], [], []
        for e in range(nd):
            if e == d:
                continue
            if self.tensor is not None:
                if self.tensor[d, e] == 0.0:
                    continue
                wface, cell = np.full(fshape, self.tensor[d, e]), None
            elif self.form == "fick":
                wface, cell = self.field.faces[d][d, e], None
            else:
                wface, cell = np.ones(fshape), self.field.cells[d, e].ravel()
            if not np.any(wface) or (cell is not None and not np.any(cell)):
                continue
            plus, wp = self._neighbour(idx, e, +1)
            minus, wm = self._neighbour(idx, e, -1)
            shape_e = [1] * nd
            shape_e[e] = -1
            wp, wm = wp.reshape(shape_e), wm.reshape(shape_e)
            groups = [(np.arange(0, n - 1), np.arange(1, n), np.arange(1, n))] if n > 1 else []
            if self.periodic[d]:
                groups += [(np.array([n - 1]), np.array([0]), np.array([0])),
                           (np.array([n - 1]), np.array([0]), np.array([n]))]
            for li, ri, fi in groups:
                F = np.take(fidx, fi, axis=d)
                # the periodic face n is face 0: its coefficient from face 0
                w = -np.take(wface, np.where(fi == n, 0, fi), axis=d) / (4.0 * mesh.spacing[e])
                for sel in (li, ri):
                    for nbr, wt in ((plus, wp), (minus, -wm)):
                        col = np.take(nbr, sel, axis=d)
                        v = w * np.broadcast_to(wt, F.shape)
                        if cell is not None:
                            v = v * cell[col]
                        rows.append(F.ravel())
                        cols.append(col.ravel())
                        vals.append(v.ravel())
        if not rows:
            return None
        C = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(fidx.size, mesh.size)).tocsr()
        C.sum_duplicates()
        return C

    def _divergence(self, d):
        """(J_{k+1} - J_k) / h: the faces normal to d to the cells (sparse, cells x faces)."""
        mesh = self.mesh
        n = mesh.cells[d]
        fshape = list(mesh.cells)
        fshape[d] += 1
        fidx = np.arange(int(np.prod(fshape))).reshape(fshape)
        idx = np.arange(mesh.size).ravel()
        hi = np.take(fidx, np.arange(1, n + 1), axis=d).ravel()
        lo = np.take(fidx, np.arange(0, n), axis=d).ravel()
        ih = 1.0 / mesh.spacing[d]
        return sp.coo_matrix((np.concatenate([np.full(idx.size, ih), np.full(idx.size, -ih)]),
                              (np.concatenate([idx, idx]), np.concatenate([hi, lo]))),
                             shape=(mesh.size, fidx.size)).tocsr()

    def apply(self, rho, out=None):
        """A rho with the numba kernel (the sparse matrix when there are cross terms)."""
        rho = np.asarray(rho, dtype=float)
        if self.has_cross_terms:
            return (self.matrix() @ rho.ravel()).reshape(self.mesh.cells)
        r3 = _pad3(rho)
        o3 = np.empty_like(r3)
        _fp_apply(r3, o3, *self._k, self._inv_h, self._active, self._per, self._keep,
                  self.absorbing is not None, 0.0, False)
        res = o3.reshape(self.mesh.cells)
        if out is not None:
            out[...] = res
            return out
        return res

    def explicit_steps(self, rho, dt, nsteps):
        """nsteps forward-Euler steps with the numba kernel (no cross terms)."""
        if self.has_cross_terms:
            raise ValueError("explicit_steps: use the sparse matrix for a full diffusion tensor")
        r3 = _pad3(rho).copy()
        tmp = np.empty_like(r3)
        res = _fp_euler_steps(r3, tmp, *self._k, self._inv_h, self._active, self._per, self._keep,
                              self.absorbing is not None, float(dt), int(nsteps))
        return res.reshape(self.mesh.cells).copy()

    def max_stable_dt(self):
        """Largest forward-Euler step keeping rho >= 0 (1 / max |A_ii|) and, with cross terms,
        within the Gershgorin bound 2 / max_j sum_i |A_ij|."""
        A = self.matrix()
        diag = np.abs(A.diagonal()).max()
        dt = 1.0 / diag if diag > 0 else np.inf
        if self.has_cross_terms:
            col = np.asarray(abs(A).sum(axis=0)).max()
            dt = min(dt, 2.0 / col)
        return float(dt)

    # -- derived quantities -------------------------------------------------
    def face_fluxes(self, rho):
        """Face fluxes per dimension (face-shaped arrays), cross terms included."""
        rho = np.asarray(rho, dtype=float).reshape(self.mesh.cells)
        out = []
        for d in range(self.ndim):
            n = self.mesh.cells[d]
            pad = [(0, 0)] * self.ndim
            pad[d] = (1, 1)
            if self.periodic[d]:
                ext = np.concatenate([np.take(rho, [n - 1], axis=d), rho, np.take(rho, [0], axis=d)], axis=d)
            else:
                ext = np.pad(rho, pad)
            left = np.take(ext, np.arange(0, n + 1), axis=d)
            right = np.take(ext, np.arange(1, n + 2), axis=d)
            out.append(self.cL[d] * left - self.cR[d] * right)
        for d, C in enumerate(self._cross_ops):
            if C is not None:
                out[d] = out[d] + (C @ rho.ravel()).reshape(out[d].shape)
        return out

    def current(self, rho):
        """Probability current at the cell centres: (ndim, *cells), the mean of the two faces."""
        J = self.face_fluxes(rho)
        comps = []
        for d, Jd in enumerate(J):
            n = self.mesh.cells[d]
            comps.append(0.5 * (np.take(Jd, np.arange(0, n), axis=d) + np.take(Jd, np.arange(1, n + 1), axis=d)))
        return np.stack(comps)

    def gibbs(self, D=None):
        """Discrete Gibbs density exp(-f/D) normalised to mass 1 (gradient drift, scalar D)."""
        if self.potential is None:
            raise ValueError("no potential")
        D = float(self.D_diag[0]) if D is None else D
        g = np.exp(-(self.potential - self.potential.min()) / D)
        if self.absorbing is not None:
            g[self.absorbing] = 0.0
        return g / self.mesh.integrate(g)


def _is_matrix(D, nd):
    try:
        a = np.asarray(D, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.ndim == 2 and a.shape == (nd, nd) and nd > 1
