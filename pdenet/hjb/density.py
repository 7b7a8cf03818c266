"""Forward densities of the ``hjb`` model by the Fokker-Planck finite-volume scheme.

The controlled SGD of the model, dX = -(grad f + alpha*) dt + sqrt(2 nu) dB with the feedback
alpha* = grad u(., t), has the density

    rho_t = div((grad f + grad u) rho) + nu Lap rho          (thesis (4.33), with f and nu)

and plain SGD the same with u = 0. Both drifts are gradients, of f + u(., t) and of f, so each
is the Scharfetter-Gummel operator of :class:`pdenet.fokkerplanck.fv.FokkerPlanckOperator` with
that potential: the face velocity is the centred difference -(phi_R - phi_L)/h of the cell
values, i.e. grad u at the faces by centred differences. The feedback is piecewise constant in
time on the intervals [t_k, t_k+1) of ``particle_steps`` (the value u(., t_k) on the interval), as
for the particles, so PDE and particles describe the same process; the operator is rebuilt per
interval. Boundaries: ``periodic`` stays periodic; ``extrapolate``/``none`` become no-flux walls
(the particles are free there: the comparison assumes a confining f, the mass reaching the box
edge is reported as ``particles_outside``).
"""
import math

import numpy as np
from scipy.special import gammaln

from solvers.linear import LinearStepper

from ..fokkerplanck.fv import FokkerPlanckOperator
from ..mesh import Mesh

#: safety factor on the explicit positivity limit dt <= 1/max|A_ii|
EXPLICIT_SAFETY = 0.9


def fp_mesh(mesh):
    """The mesh with extrapolated (HJ) boundaries replaced by no-flux walls."""
    sides = [[b.kind if b.kind == "periodic" else "noflux" for b in pair] for pair in mesh.boundary]
    return Mesh(mesh.lower, mesh.upper, mesh.cells, sides)


def _is_periodic(mesh, d):
    return mesh.boundary[d][0].kind == "periodic"


def initial_density(mesh, x0, spread):
    """The start law of the particles on the cells: N(x0, spread^2 I) as cell averages
    (products of normal-CDF differences, renormalised to mass 1 on the box), or for spread = 0
    the point mass at x0 deposited by the adjoint of multilinear interpolation (cloud in cell:
    mass 1 and, away from the walls, mean x0 exactly)."""
    d = mesh.ndim
    if spread > 0:
        w = None
        for e in range(d):
            faces = (np.asarray(mesh.faces[e]) - x0[e]) / (spread * math.sqrt(2.0))
            cdf = 0.5 * np.array([math.erfc(-z) for z in faces])
            p = np.diff(cdf)
            w = p if w is None else np.multiply.outer(w, p)
        w = np.asarray(w, float).reshape(mesh.cells)
    else:
        w = np.zeros(mesh.cells)
        idx, wts = [], []
        for e in range(d):
            n, h, lo = mesh.cells[e], mesh.spacing[e], mesh.lower[e]
            s = (x0[e] - lo) / h - 0.5
            if _is_periodic(mesh, e):
                i0 = int(math.floor(s))
                t = s - i0
                i0, i1 = i0 % n, (i0 + 1) % n
            else:
                s = min(max(s, 0.0), n - 1.0)
                i0 = min(int(math.floor(s)), n - 2)
                t = s - i0
                i1 = i0 + 1
            idx.append((i0, i1))
            wts.append((1.0 - t, t))
        for corner in range(2 ** d):
            bits = [(corner >> e) & 1 for e in range(d)]
            cell = tuple(idx[e][b] for e, b in enumerate(bits))
            w[cell] += float(np.prod([wts[e][b] for e, b in enumerate(bits)]))
    return w / (w.sum() * mesh.cell_volume)


class ForwardDensity:
    """rho_t = div(grad(f + u_k) rho) + nu Lap rho on [t_k, t_k+1), u_k given per interval.

    ``stepper``: ``explicit`` (forward Euler with the numba kernel, n substeps per interval,
    dt <= 0.9/max|A_ii|: positivity and mass to round-off) or ``beuler`` (one implicit Euler
    step per interval, sparse LU rebuilt per interval; unconditionally positive, first order).
    """

    def __init__(self, mesh, f_cells, nu, stepper="explicit"):
        self.mesh = fp_mesh(mesh)
        self.f = np.asarray(f_cells, float)
        self.nu = float(nu)
        self.stepper = stepper
        self.steps = 0             # explicit substeps or implicit solves
        self.operators = 0
        self._fixed = None         # the uncontrolled operator, built once

    def operator(self, u=None):
        self.operators += 1
        pot = self.f if u is None else self.f + u
        return FokkerPlanckOperator(self.mesh, potential=pot, diffusion=self.nu)

    def advance(self, rho, dt, u=None):
        """rho after a time dt with the potential f + u (u = None: plain SGD, f alone)."""
        if u is None:
            if self._fixed is None:
                op = self.operator()
                self._fixed = (op, op.max_stable_dt(), None)
            op, dt_max, _ = self._fixed
        else:
            op = self.operator(u)
            dt_max = op.max_stable_dt() if self.stepper == "explicit" else None
        if self.stepper == "explicit":
            n = max(1, int(math.ceil(dt / (EXPLICIT_SAFETY * dt_max))))
            self.steps += n
            return op.explicit_steps(rho, dt / n, n)
        if u is None:
            stepper = self._fixed[2]
            if stepper is None or stepper.dt != dt:
                stepper = LinearStepper("beuler", op.matrix(), dt, pivot=False)
                self._fixed = (op, dt_max, stepper)
        else:
            stepper = LinearStepper("beuler", op.matrix(), dt, pivot=False)
        self.steps += 1
        return stepper.step(rho.ravel(), 0.0).reshape(self.mesh.cells)


def histogram_noise_l1(rho, mesh, n):
    """Expected L1 distance sum_i |N_i/n - p_i| of an n-particle histogram from its cell
    probabilities p_i = rho_i |cell| (N_i ~ Binomial(n, p_i)), exactly by de Moivre's mean
    absolute deviation E|N - np| = 2 m C(n, m) p^m (1 - p)^(n - m + 1), m = floor(np) + 1."""
    p = np.clip(np.asarray(rho, float).ravel() * mesh.cell_volume, 0.0, 1.0)
    p = p[(p > 0) & (p < 1)]
    m = np.floor(n * p) + 1.0
    logc = gammaln(n + 1.0) - gammaln(m + 1.0) - gammaln(n - m + 1.0)
    mad = 2.0 * m * np.exp(logc + m * np.log(p) + (n - m + 1.0) * np.log1p(-p))
    return float(np.sum(mad) / n)
