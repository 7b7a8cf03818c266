"""The fokker-planck model's per-run analysis after the march: first-passage times, Kramers'
time, the particle ensemble's escape times, the SGD runs. Each function writes its arrays to
the sink (group ``analysis``) and returns its summary attributes."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from . import diagnostics as fpd
from .fv import FokkerPlanckOperator
from .particles import ParticleEnsemble


def first_passage(sink: Any, op: FokkerPlanckOperator, absorbing: np.ndarray | None, rho0: np.ndarray,
                  point: Sequence[float] | float | None) -> dict[str, float]:
    """The mean first-passage time field to the absorbing set (backward equation), its mean over
    the initial density and, with ``point``, its value there."""
    mesh = op.mesh
    T = fpd.mfpt_field(op.matrix(), absorbing).reshape(mesh.cells)
    sink.write("analysis", "mfpt", T, {"meaning": "mean first-passage time to the absorbing "
                                       "set from each cell (backward equation A^T T = -1)"})
    out = {"mfpt_initial": float(mesh.integrate(T * rho0) / mesh.integrate(rho0))}
    if point is not None:
        interp = RegularGridInterpolator(mesh.axes, T, bounds_error=False, fill_value=None)
        out["mfpt_at_point"] = float(interp(np.atleast_1d(point).reshape(1, -1))[0])
    return out


def particle_escape(sink: Any, ens: ParticleEnsemble, dt: float, t_end: float, absorbing: bool,
                    until_absorbed: bool, max_time: float) -> dict[str, float]:
    """The ensemble's histogram at t_end; with ``until_absorbed`` (and an absorbing set) the
    particles run on until absorbed or ``max_time``; positions, and with absorption the exit
    times and their mean (the particles' MFPT)."""
    sink.write("analysis", "particle_histogram", ens.density(),
               {"meaning": "particle density at t_end (histogram on the cells, per initial "
                           "particle: its mass is the particle survival)"})
    if until_absorbed and absorbing:
        while ens.alive.any() and ens.t < max_time:
            t0 = ens.t
            ens.run_until(min(ens.t + 100.0 * max(t_end, 1.0), max_time), dt)
            if ens.t == t0:  # within round-off of max_time (the steps' sum fell just short of it)
                break
    sink.write("analysis", "particle_positions", ens.X)
    out: dict[str, float] = {}
    if ens.winding_centre is not None:
        sink.write("analysis", "particle_winding", ens.winding,
                   {"meaning": "signed turns of each particle path about particles.winding_about"})
        out["particle_winding_mean"] = float(ens.winding.mean())
        out["particle_winding_rate"] = float(ens.winding.mean() / ens.t) if ens.t > 0 else float("nan")
    sink.write("analysis", "particle_alive", ens.alive.astype(np.int8))
    if absorbing:
        et = ens.exit_time
        sink.write("analysis", "particle_exit_times", et,
                   {"meaning": "absorption time of each particle (nan: not absorbed)"})
        done = np.isfinite(et)
        if done.any():
            out["particle_mfpt"] = float(np.mean(et[done]))
            out["particle_mfpt_stderr"] = float(np.std(et[done], ddof=1) / np.sqrt(done.sum())) \
                if done.sum() > 1 else float("nan")
            out["particle_absorbed_fraction"] = float(done.mean())
    return out


def sgd_runs(sink: Any, histogram: np.ndarray, theta: np.ndarray, diffusion: np.ndarray,
             loss: np.ndarray) -> None:
    """The SGD runs at the last save, D(theta) at the faces and the loss at the cells."""
    sink.write("analysis", "sgd_histogram", histogram,
               {"meaning": "density of the SGD runs at the last save (histogram on the cells)"})
    sink.write("analysis", "sgd_theta", theta)
    if diffusion is not None:
        sink.write("analysis", "sgd_diffusion", diffusion,
                   {"meaning": "D(theta) = lr Sigma(theta) / (2 batch) at the cell faces"})
    sink.write("analysis", "sgd_loss", loss)


def nonequilibrium(sink: Any, op: FokkerPlanckOperator, coefficients: Any, rho_ss: np.ndarray,
                   temperature: float, write_fields: bool) -> dict[str, float]:
    """The most likely points (minima of phi) beside the zeros of the deterministic drift
    -grad f + b (the critical points of the loss; Theorem 6.48's shift between them); with
    ``write_fields`` (a time-dependent run) also rho_ss, phi and j_<d>, and the residuals."""
    from . import nonequilibrium as ne

    mesh = op.mesh
    phi = ne.potential(rho_ss, temperature)
    j = ne.conservative_force(op, rho_ss)
    out: dict[str, float] = {}
    if write_fields:
        sink.write("analysis", "rho_ss", rho_ss, {"meaning": "the steady state of the same operator"})
        sink.write("analysis", "phi", phi, {"meaning": "implicit potential -T log rho_ss, min 0"})
        for d in range(mesh.ndim):
            sink.write("analysis", f"j_{d + 1}", j[d], {"meaning": "conservative force J_ss/rho_ss"})
        out.update(ne.residuals(op, rho_ss, phi, j))
    minima = ne.local_minima(mesh, phi)
    sink.write("analysis", "phi_minima", minima, {"meaning": "local minima of phi (most likely points), "
                                                              "one row per point"})
    co = coefficients
    if co.potential is not None and co.potential.expr is None:
        return out   # a potential given only on the cells (SGD): no drift at points
    if (co.potential is None or co.potential.expr is not None) and (co.drift is None or co.drift.exprs is not None):
        def velocity(X: np.ndarray) -> np.ndarray:
            v = np.zeros_like(X)
            if co.potential is not None:
                co.potential.force(X, co.eps, v)
            if co.drift is not None:
                co.drift.add(X, v)
            return v
        # starts: the minima of phi and the cells where |v| is a local minimum
        speed = np.sqrt(sum(c ** 2 for c in np.moveaxis(velocity(np.stack(
            [c.ravel() for c in mesh.centres()], axis=1)), 1, 0))).reshape(mesh.cells)
        vc = velocity(np.stack([c.ravel() for c in mesh.centres()], axis=1))
        for d in range(mesh.ndim):
            sink.write("analysis", f"drift_{d + 1}", vc[:, d].reshape(mesh.cells),
                       {"meaning": "the deterministic drift -grad f + b at the cell centres"})
        starts = np.concatenate([minima, ne.local_minima(mesh, speed, strict=False)])
        zeros = ne.drift_zeros(mesh, velocity, starts)
        sink.write("analysis", "drift_zeros", zeros, {"meaning": "zeros of the deterministic drift "
                                                               "-grad f + b (critical points of the loss)"})
        if len(minima):
            shift = ne.nearest_shift(minima, zeros)
            sink.write("analysis", "critical_point_shift", shift,
                       {"meaning": "for each minimum of phi, the vector to the nearest drift zero"})
            if np.isfinite(shift).all():
                out["critical_point_shift_max"] = float(np.linalg.norm(shift, axis=1).max())
    return out


def sgd_mode(sink: Any, sgd: Any, mesh: Any, rho_ss: np.ndarray, lr: float, batch: int) -> dict[str, float]:
    """SGD out of equilibrium: the minimiser of the loss beside the most likely point of the PDE
    steady state (the minimum of phi nearest to it). One parameter: also the theory's most likely
    point, the root of f'(theta) + D'(theta) = 0 (Theorem 6.48 with Q = 0: at a critical point of
    Phi, f' = -beta^-1 (div D); exact for the Ito steady state rho ∝ D^-1 exp(-int f'/D))."""
    from scipy import optimize as opt

    from . import nonequilibrium as ne

    theta_f = np.atleast_1d(sgd.minimiser())
    minima = ne.local_minima(mesh, ne.potential(rho_ss, 1.0))
    out: dict[str, float] = {}
    sink.write("analysis", "sgd_minimiser", theta_f, {"meaning": "argmin of the loss f"})
    if len(minima):
        mode = minima[np.argmin(np.linalg.norm(minima - theta_f, axis=1))]
        sink.write("analysis", "sgd_mode", mode, {"meaning": "the most likely point of the PDE steady state"})
        sink.write("analysis", "sgd_mode_shift", mode - theta_f, {"meaning": "most likely point minus minimiser"})
        out["sgd_mode_shift"] = float(np.linalg.norm(mode - theta_f))
    if mesh.ndim == 1:
        h = 1e-6
        g = lambda t: sgd.per_sample(np.array([t]))[1].mean() + (  # noqa: E731
            sgd.diffusion(np.array([t + h]), lr, batch)[0] - sgd.diffusion(np.array([t - h]), lr, batch)[0]) / (2 * h)
        t0 = float(theta_f[0])
        w = 0.05 * (mesh.upper[0] - mesh.lower[0])
        lo, hi = t0 - w, t0 + w
        if np.sign(g(lo)) != np.sign(g(hi)):
            pred = opt.brentq(g, lo, hi, xtol=1e-14)
            sink.write("analysis", "sgd_mode_predicted", np.array([pred]),
                       {"meaning": "root of f' + D' = 0: the theory's most likely point"})
            out["sgd_mode_shift_predicted"] = float(abs(pred - t0))
    return out
