"""The forward march of the ``hjb`` model: particles (controlled and plain SGD, same noise) and,
optionally, the PDE densities of the same two processes, stepped together on the particle steps
t_k = k T/K with the feedback of interval [t_k, t_k+1) (a fixed-step system of
:func:`solvers.march.march`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .density import ForwardDensity
from .particles import Particles, euler_maruyama_step


@dataclass
class ForwardState:
    """Everything the forward march carries at particle step ``k``."""

    k: int
    particles: Particles
    rho_controlled: np.ndarray | None = None
    rho_uncontrolled: np.ndarray | None = None


class ForwardSystem:
    """``advance(state, n0, n)``: n Euler-Maruyama steps of the particles (feedback
    ``grads[k]``, grad u(., t_k) on the mesh) and, with ``density``, n density intervals
    (potential f + ``U[k]`` controlled, f alone uncontrolled). The generator ``rng`` gives the
    noise of every step in order."""

    def __init__(self, dt: float, mesh: Any, nu: float, grad_f: Callable[[np.ndarray], np.ndarray],
                 grads: np.ndarray, rng: np.random.Generator, U: np.ndarray | None = None,
                 density: ForwardDensity | None = None):
        self.dt, self.mesh, self.nu, self.grad_f = dt, mesh, nu, grad_f
        self.grads, self.rng, self.U, self.density = grads, rng, U, density

    def advance(self, state: ForwardState, n0: int, n: int) -> ForwardState:
        p, rc, ru = state.particles, state.rho_controlled, state.rho_uncontrolled
        for k in range(n0, n0 + n):
            p = euler_maruyama_step(p, self.grad_f, self.grads[k], self.mesh, self.nu, self.dt, self.rng)
        if self.density is not None:
            assert self.U is not None, "the controlled density needs the values U"
            for k in range(n0, n0 + n):
                rc = self.density.advance(rc, self.dt, self.U[k])
                ru = self.density.advance(ru, self.dt)
        return ForwardState(n0 + n, p, rc, ru)
