"""Observers of the ``hjb`` forward march (:mod:`pdenet.hjb.forward`): the fields and
diagnostics at each saved particle step, each observer with its own state."""
from __future__ import annotations

from typing import Any, Collection, Sequence

import numpy as np

from solvers.march import Frame

from .density import histogram_noise_l1
from .particles import histogram, mean_and_stderr, outside

TAGS = ("controlled", "uncontrolled")


class ValueFunctions:
    """u, v and the feedback alpha = grad u at the frame's particle step (from the backward
    solves, one level per step), and max(u - v) (<= 0 by Theorem 4.11)."""

    def __init__(self, U: np.ndarray, V: np.ndarray, grads: np.ndarray):
        self.U, self.V, self.grads = U, V, grads

    def __call__(self, frame: Frame) -> None:
        k = frame.state.k
        frame.fields.update(u=self.U[k], v=self.V[k], alpha=self.grads[k])
        frame.diagnostics["u_minus_v_max"] = float(np.max(self.U[k] - self.V[k]))


class ParticleDensities:
    """Histograms rho (controlled) and rho_sgd (plain SGD) of the particles, their mass and
    the mean loss under each."""

    def __init__(self, mesh: Any, f_cells: np.ndarray):
        self.mesh, self.f = mesh, f_cells

    def __call__(self, frame: Frame) -> None:
        p, mesh = frame.state.particles, self.mesh
        rho, rho_sgd = histogram(mesh, p.X), histogram(mesh, p.Y)
        frame.fields.update(rho=rho, rho_sgd=rho_sgd)
        frame.diagnostics.update({"mass_rho": float(mesh.integrate(rho)),
                                  "mean_f_controlled": float(mesh.integrate(rho * self.f)),
                                  "mean_f_sgd": float(mesh.integrate(rho_sgd * self.f))})


class PDEDensities:
    """The PDE densities rho_controlled, rho_uncontrolled: mass, minimum, mean loss and mean
    position (coordinate names ``names``) under each."""

    def __init__(self, mesh: Any, f_cells: np.ndarray, names: Sequence[str]):
        self.mesh, self.f, self.names = mesh, f_cells, names
        self.centres = mesh.centres()

    def __call__(self, frame: Frame) -> None:
        mesh, diag = self.mesh, frame.diagnostics
        s = frame.state
        frame.fields.update(rho_controlled=s.rho_controlled, rho_uncontrolled=s.rho_uncontrolled)
        for tag, r in zip(TAGS, (s.rho_controlled, s.rho_uncontrolled)):
            diag[f"mass_rho_{tag}"] = float(mesh.integrate(r))
            diag[f"min_rho_{tag}"] = float(r.min())
            diag[f"mean_f_{tag}_pde"] = float(mesh.integrate(r * self.f))
            for e, name in enumerate(self.names):
                diag[f"mean_{name}_{tag}_pde"] = float(mesh.integrate(r * self.centres[e]))


class DensityComparison:
    """PDE against particles (after :class:`ParticleDensities` and :class:`PDEDensities`): L1
    distance of the histogram from the PDE density with its expected sampling noise, the
    fraction of particles outside the box, the particle means with standard errors; keeps the
    largest |mean difference|/stderr (``worst_z``) and L1/noise (``worst_l1``) after t = 0."""

    def __init__(self, mesh: Any, names: Sequence[str]):
        self.mesh, self.names = mesh, names
        self.worst_z, self.worst_l1 = 0.0, 0.0

    def __call__(self, frame: Frame) -> None:
        mesh, diag, f = self.mesh, frame.diagnostics, frame.fields
        p, k = frame.state.particles, frame.state.k
        n = p.X.shape[0]
        for tag, pts, r, hist in (("controlled", p.X, f["rho_controlled"], f["rho"]),
                                  ("uncontrolled", p.Y, f["rho_uncontrolled"], f["rho_sgd"])):
            mean, sem = mean_and_stderr(mesh, pts)
            l1 = float(mesh.integrate(np.abs(hist - r)))
            noise = histogram_noise_l1(r, mesh, n)
            diag[f"l1_{tag}"] = l1
            diag[f"l1_noise_{tag}"] = noise
            diag[f"particles_outside_{tag}"] = outside(mesh, pts)
            for e, name in enumerate(self.names):
                diag[f"mean_{name}_{tag}_particles"] = float(mean[e])
                diag[f"mean_{name}_{tag}_stderr"] = float(sem[e])
                if k > 0:
                    z = abs(mean[e] - diag[f"mean_{name}_{tag}_pde"]) / sem[e]
                    self.worst_z = max(self.worst_z, float(z))
            if k > 0 and noise > 0:
                self.worst_l1 = max(self.worst_l1, l1 / noise)


class KeepFields:
    """Drops the fields not asked for (``output.fields``) before the sink writer."""

    def __init__(self, want: Collection[str]):
        self.want = want

    def __call__(self, frame: Frame) -> None:
        for name in [n for n in frame.fields if n not in self.want]:
            del frame.fields[name]
