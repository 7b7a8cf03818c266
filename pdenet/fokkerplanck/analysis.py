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
    sink.write("analysis", "particle_alive", ens.alive.astype(np.int8))
    out: dict[str, float] = {}
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
    sink.write("analysis", "sgd_diffusion", diffusion,
               {"meaning": "D(theta) = lr Sigma(theta) / (2 batch) at the cell faces"})
    sink.write("analysis", "sgd_loss", loss)
