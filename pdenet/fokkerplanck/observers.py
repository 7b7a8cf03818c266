"""What the fokker-planck model does at each saved time: observers of :func:`solvers.march.march`
(callables ``obs(frame)``) that carry their own state and fill ``frame.fields`` /
``frame.diagnostics``. A frame's state is the density on the cells, or None on the MPI ranks
that hold no gathered copy: every observer here then does nothing.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import diagnostics as fpd
from .fv import FokkerPlanckOperator
from .particles import ParticleEnsemble


class DensityDiagnostics:
    """Mass, moments, current, free energy and relative entropy to the Gibbs density (a gradient
    drift with scalar D and no absorption), survival (with absorption); the fields ``rho`` and
    ``current_<d>`` when ``fields`` names them."""

    def __init__(self, op: FokkerPlanckOperator, D_scalar: Callable[[float], float | None],
                 has_absorption: bool, fields: tuple[str, ...],
                 operator_at: Callable[[float], FokkerPlanckOperator] | None = None):
        self.op, self.D_scalar, self.has_absorption = op, D_scalar, has_absorption
        self.fields, self.operator_at = fields, operator_at

    def __call__(self, frame: Any) -> None:
        rho, t = frame.state, frame.t
        if rho is None:
            return
        op = self.op if self.operator_at is None else self.operator_at(t)
        Ds = self.D_scalar(t)
        gibbs = None
        if op.potential is not None and Ds is not None and op.is_gradient and not self.has_absorption:
            gibbs = op.gibbs(Ds)
        diags, J = fpd.diagnostics(op, rho, Ds, gibbs)
        if self.has_absorption:
            diags["survival"] = diags["mass"]
        frame.diagnostics.update(diags)
        if "rho" in self.fields:
            frame.fields["rho"] = rho
        if "current" in self.fields:
            for d in range(op.ndim):
                frame.fields[f"current_{d + 1}"] = J[d]


class SteadyComparison:
    """Out-of-equilibrium diagnostics against a computed steady state rho_ss
    (:mod:`.nonequilibrium`): ``kl_to_steady`` = T KL(rho | rho_ss) and its split
    ``kl_energetic`` + ``kl_entropic`` (+ a constant) at every save; with ``fields`` (a steady
    run) the fields ``phi`` and ``j_<d>`` and the residuals of div(j rho_ss) = 0 and
    j . grad phi = 0."""

    def __init__(self, op: FokkerPlanckOperator, rho_ss: np.ndarray, temperature: float,
                 want: tuple[str, ...], fields: bool):
        from . import nonequilibrium as ne

        self.op, self.rho_ss, self.T, self.ne = op, rho_ss, temperature, ne
        self.phi = ne.potential(rho_ss, temperature)
        self.want, self.fields = want, fields

    def __call__(self, frame: Any) -> None:
        if frame.state is None:
            return
        ne, op = self.ne, self.op
        frame.diagnostics.update(ne.kl_split(op.mesh, frame.state, self.rho_ss, self.phi, self.T))
        if self.fields:
            j = ne.conservative_force(op, self.rho_ss)
            frame.diagnostics.update(ne.residuals(op, self.rho_ss, self.phi, j))
            if "phi" in self.want:
                frame.fields["phi"] = self.phi
            if "j" in self.want:
                for d in range(op.ndim):
                    frame.fields[f"j_{d + 1}"] = j[d]


class SGDChains:
    """Independent SGD runs (:meth:`.sgd.SGDProblem.run_chains`) advanced to each saved time
    (t = steps * lr) and compared with the density: ``sgd_l1`` (L1 distance of their histogram),
    ``sgd_mean``, ``sgd_var``. ``theta`` and ``histogram`` hold the last state."""

    def __init__(self, sgd: Any, lr: float, batch: int, theta0: np.ndarray, rng: np.random.Generator, mesh: Any):
        self.sgd, self.lr, self.batch, self.rng, self.mesh = sgd, lr, batch, rng, mesh
        self.theta, self.step = np.array(theta0, dtype=float), 0
        self.histogram: np.ndarray | None = None

    def __call__(self, frame: Any) -> None:
        if frame.state is None:
            return
        mesh = self.mesh
        n_target = int(round(frame.t / self.lr))
        if n_target - self.step > 0:
            self.theta = self.sgd.run_chains(self.theta, self.lr, self.batch, n_target - self.step, self.rng,
                                             mesh.lower[0], mesh.upper[0])
            self.step = n_target
        n = self.theta.shape[0]
        if mesh.ndim == 1:
            hist = np.histogram(self.theta, bins=mesh.faces[0])[0] / (n * mesh.cell_volume)
            frame.diagnostics["sgd_mean"] = float(self.theta.mean())
            frame.diagnostics["sgd_var"] = float(self.theta.var())
        else:
            hist = np.histogramdd(self.theta, bins=list(mesh.faces))[0] / (n * mesh.cell_volume)
            for d in range(mesh.ndim):
                frame.diagnostics[f"sgd_mean_{d + 1}"] = float(self.theta[:, d].mean())
        frame.diagnostics["sgd_l1"] = float(mesh.integrate(np.abs(hist - frame.state)))
        self.histogram = hist


class Particles:
    """An SDE particle ensemble advanced to each saved time (Euler-Maruyama steps of at most
    ``dt``) and compared with the density: ``particle_survival``, ``particle_l1``,
    ``particle_mean_<d>``."""

    def __init__(self, ensemble: ParticleEnsemble, dt: float):
        self.ensemble, self.dt = ensemble, dt

    def __call__(self, frame: Any) -> None:
        if frame.state is None:
            return
        ens, mesh, diags = self.ensemble, self.ensemble.mesh, frame.diagnostics
        ens.run_until(frame.t, self.dt)
        diags["particle_survival"] = float(ens.alive.mean())
        diags["particle_l1"] = float(mesh.integrate(np.abs(ens.density() - frame.state)))
        pm = ens.mean()
        for d in range(mesh.ndim):
            diags[f"particle_mean_{d + 1}"] = float(pm[d])


class Last:
    """Keeps the diagnostics of the last frame that had a state (for the run's summary)."""

    def __init__(self) -> None:
        self.diagnostics: dict[str, float] = {}

    def __call__(self, frame: Any) -> None:
        if frame.state is not None:
            self.diagnostics = dict(frame.diagnostics)


def with_state(observer: Callable[[Any], None]) -> Callable[[Any], None]:
    """``observer`` called only on frames that hold a state (a sink on a rank without the
    gathered density writes nothing)."""

    def call(frame: Any) -> None:
        if frame.state is not None:
            observer(frame)

    return call
