"""SDE particle ensembles for the Fokker-Planck equations (seeded, vectorised Euler-Maruyama).

The PDE rho_t = div(rho grad f) - div(b rho) + div(D grad rho) is the law of

    dX = (-grad f + b + div D) dt + sqrt(2 D) dW        (Ito)

(div D is the column divergence, zero for a constant D). The drift and the
diffusion are evaluated on all particles at once (numpy, from the case's
expressions: :class:`pdenet.fokkerplanck.coefficients.Coefficients`; the gradient of f by central differences of step 1e-6 times the
box size); the position update, the walls (reflection for no-flux, wrapping
for periodic, absorption for Dirichlet) and the escape bookkeeping run in one
numba kernel.
"""
import numba
import numpy as np

NOFLUX, PERIODIC, ABSORB = 0, 1, 2
_CODES = {"noflux": NOFLUX, "periodic": PERIODIC, "dirichlet": ABSORB}


@numba.njit(cache=True)
def _advance(X, dX, alive, exit_time, t_new, lower, upper, codes):
    """X += dX on the living particles, then walls; marks absorbed particles with their time."""
    n, nd = X.shape
    for i in range(n):
        if not alive[i]:
            continue
        for d in range(nd):
            x = X[i, d] + dX[i, d]
            lo, hi = lower[d], upper[d]
            L = hi - lo
            if x < lo:
                c = codes[d, 0]
                if c == PERIODIC:
                    x = lo + ((x - lo) % L)
                elif c == ABSORB:
                    alive[i] = False
                    exit_time[i] = t_new
                else:
                    x = lo + (lo - x)
                    if x > hi:  # a huge step: fold back into the box
                        x = lo + ((x - lo) % L)
            elif x > hi:
                c = codes[d, 1]
                if c == PERIODIC:
                    x = lo + ((x - lo) % L)
                elif c == ABSORB:
                    alive[i] = False
                    exit_time[i] = t_new
                else:
                    x = hi - (x - hi)
                    if x < lo:
                        x = lo + ((x - lo) % L)
            X[i, d] = x


@numba.njit(cache=True)
def _histogram(X, alive, lower, spacing, cells, out):
    """Counts of the living particles per cell (out is flat, C order)."""
    n, nd = X.shape
    for i in range(n):
        if not alive[i]:
            continue
        flat = 0
        for d in range(nd):
            k = int((X[i, d] - lower[d]) / spacing[d])
            if k < 0:
                k = 0
            elif k >= cells[d]:
                k = cells[d] - 1
            flat = flat * cells[d] + k
        out[flat] += 1.0


class ParticleEnsemble:
    """Euler-Maruyama for dX = v(X, t) dt + S(X, t) dW in the mesh box.

    ``velocity(X, t)`` -> (n, nd) drift (with the Ito correction div D already in it);
    ``noise(X, t, dW)`` -> (n, nd) the increment S dW for standard normal dW times sqrt(dt);
    ``absorbing(X)`` -> bool (n,) for an absorbing set inside the box, or None.
    """

    def __init__(self, mesh, kinds, velocity, noise, absorbing=None, seed=0):
        self.mesh = mesh
        self.codes = np.array([[_CODES[k] for k in pair] for pair in kinds], dtype=np.int64)
        self.lower = np.array(mesh.lower)
        self.upper = np.array(mesh.upper)
        self.velocity, self.noise, self.absorbing = velocity, noise, absorbing
        self.rng = np.random.default_rng(seed)
        #: 2-D: a point about which the signed turns of every path are counted (``winding``)
        self.winding_centre = None

    def sample(self, density, count):
        """Particles drawn from a cell density (cell by its mass, uniform inside the cell)."""
        p = np.clip(np.asarray(density, dtype=float).ravel(), 0.0, None)
        p = p / p.sum()
        cells = self.rng.choice(p.size, size=count, p=p)
        idx = np.stack(np.unravel_index(cells, self.mesh.cells), axis=1)
        h = np.array(self.mesh.spacing)
        return self.lower + (idx + self.rng.random(idx.shape)) * h

    def start(self, X):
        self.X = np.array(X, dtype=float).reshape(len(X), self.mesh.ndim)
        n = self.X.shape[0]
        self.alive = np.ones(n, dtype=np.bool_)
        self.exit_time = np.full(n, np.nan)
        self.t = 0.0
        self.winding = np.zeros(n)
        if self.absorbing is not None:
            hit = self.absorbing(self.X)
            self.alive &= ~hit
            self.exit_time[hit] = 0.0

    def run_until(self, t_target, dt):
        """Advance the living particles to ``t_target`` with steps of at most dt."""
        steps = int(np.ceil((t_target - self.t) / dt - 1e-9))
        if steps <= 0:
            return
        h = (t_target - self.t) / steps
        sq = np.sqrt(h)
        for _ in range(steps):
            live = np.flatnonzero(self.alive)
            if live.size == 0:
                self.t = t_target
                return
            Xl = self.X[live]
            dX = self.velocity(Xl, self.t) * h + self.noise(Xl, self.t, sq * self.rng.standard_normal(Xl.shape))
            full = np.zeros_like(self.X)
            full[live] = dX
            t_new = self.t + h
            if self.winding_centre is not None:
                a0 = self._angle()
            _advance(self.X, full, self.alive, self.exit_time, t_new, self.lower, self.upper, self.codes)
            if self.winding_centre is not None:
                da = self._angle() - a0
                self.winding += ((da + np.pi) % (2 * np.pi) - np.pi) / (2 * np.pi) * self.alive
            if self.absorbing is not None:
                live = np.flatnonzero(self.alive)
                if live.size:
                    hit = live[self.absorbing(self.X[live])]
                    self.alive[hit] = False
                    self.exit_time[hit] = t_new
            self.t = t_new

    def _angle(self):
        c = self.winding_centre
        return np.arctan2(self.X[:, 1] - c[1], self.X[:, 0] - c[0])

    def density(self):
        """Histogram on the mesh cells as a density of the *initial* count (mass = survival)."""
        out = np.zeros(self.mesh.size)
        _histogram(self.X, self.alive, self.lower, np.array(self.mesh.spacing),
                   np.array(self.mesh.cells, dtype=np.int64), out)
        return out.reshape(self.mesh.cells) / (self.X.shape[0] * self.mesh.cell_volume)

    def mean(self):
        return self.X[self.alive].mean(axis=0) if self.alive.any() else np.full(self.mesh.ndim, np.nan)
