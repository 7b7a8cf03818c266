"""Numerics of the ``heat`` model: the cell-centred Laplacian as a sparse matrix and three time
steppers for u_t = kappa (A u + b) + s(t).

Nothing here reads a case: the functions take a :class:`~pdenet.mesh.Mesh` (its spacing, cells
and boundary descriptions) and numbers, and raise ``ValueError`` for what they cannot do; the
model turns those into case errors naming the key.

Boundaries, per side of each dimension (cell-centred, second order):

* ``periodic``: the two ends are neighbours;
* ``dirichlet`` (value g): a ghost value 2 g - u_0 mirrors the first cell through the face;
* ``neumann`` (value q): q is the outward flux -kappa du/dn through the face (``noflux`` and
  ``none`` mean q = 0), so with no source d/dt int u = -sum over sides of q |face|.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..mesh import Boundary, Mesh

STEPPERS = ("euler", "beuler", "cn")
BOUNDARIES = ("periodic", "dirichlet", "neumann", "noflux", "none")


def _second_difference(n: int, h: float, low: Boundary, high: Boundary,
                       kappa: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """1-D: (D, b) with u_xx ~ D u + b on n cells of width h; b holds the boundary terms."""
    main = np.full(n, -2.0)
    off = np.ones(n - 1)
    D = sp.diags([off, main, off], [-1, 0, 1], shape=(n, n), format="lil")
    b = np.zeros(n)
    if low.kind == "periodic":
        if n == 1:
            D[0, 0] = 0.0
        else:
            D[0, n - 1] += 1.0
            D[n - 1, 0] += 1.0
    else:
        for cell, side in ((0, low), (n - 1, high)):
            if side.kind == "dirichlet":   # ghost 2 g - u: -3 u + 2 g on the diagonal and in b
                D[cell, cell] -= 1.0
                b[cell] += 2.0 * side.value
            else:                          # flux -kappa du/dn = q through the face
                D[cell, cell] += 1.0
                b[cell] -= side.value * h / kappa
    return D.tocsr() / h ** 2, b / h ** 2


def laplacian(mesh: Mesh, kappa: float = 1.0) -> tuple[sp.csr_matrix, np.ndarray]:
    """The discrete Laplacian on ``mesh`` with its boundary conditions: (A, b) with
    Lap u ~ A u + b on the flattened (C-order) cell values. ``kappa`` scales the Neumann
    fluxes (they are fluxes of kappa grad u)."""
    for pair in mesh.boundary:
        for side in pair:
            if side.kind not in BOUNDARIES:
                raise ValueError(f"{side.kind!r} boundaries are not defined for the heat equation; "
                                 f"use {', '.join(BOUNDARIES[:-1])}")
    cells = mesh.cells
    A = sp.csr_matrix((mesh.size, mesh.size))
    b = np.zeros(cells)
    for d, (n, h, (low, high)) in enumerate(zip(cells, mesh.spacing, mesh.boundary)):
        D, bd = _second_difference(n, h, low, high, kappa)
        before, after = int(np.prod(cells[:d])), int(np.prod(cells[d + 1:]))
        A = A + sp.kron(sp.kron(sp.identity(before), D), sp.identity(after))
        shape = [1] * len(cells)
        shape[d] = n
        b = b + bd.reshape(shape)
    return sp.csr_matrix(A), b.ravel()


def stable_dt(mesh: Mesh, kappa: float) -> float:
    """The largest stable step of explicit Euler: dt <= 1 / (2 kappa sum_d 1/h_d^2) (Gershgorin:
    every row of A has |diagonal| + |off-diagonals| <= 4 sum_d 1/h_d^2)."""
    rate = 2.0 * kappa * sum(1.0 / h ** 2 if h ** 2 > 0.0 else math.inf for h in mesh.spacing)
    return 1.0 / rate if rate > 0.0 else math.inf  # (a spacing whose square underflows: rate inf, dt 0)


class HeatStepper:
    """Fixed steps of u' = kappa (A u + b) + s(t) on flat arrays.

    ``euler``: explicit, first order, stable for dt <= :func:`stable_dt`; ``beuler``: implicit
    Euler, first order; ``cn``: Crank-Nicolson, second order. The implicit ones factorise their
    one matrix (I - c dt kappa A) once by sparse LU. ``source(t)``: s on the flat mesh, or None.
    """

    def __init__(self, name: str, A: sp.csr_matrix, b: np.ndarray, kappa: float, dt: float,
                 source: Callable[[float], np.ndarray] | None = None) -> None:
        if name not in STEPPERS:
            raise ValueError(f"unknown stepper {name!r}; one of {', '.join(STEPPERS)}")
        self.name, self.dt, self.source = name, float(dt), source
        self.KA, self.Kb = (kappa * A).tocsr(), kappa * b
        self.lu: Any = None
        if name != "euler":
            c = 1.0 if name == "beuler" else 0.5
            eye = sp.identity(A.shape[0], format="csc")
            try:
                self.lu = spla.splu(sp.csc_matrix(eye - (c * self.dt) * self.KA))
            except RuntimeError as exc:  # SuperLU: "Factor is exactly singular": one line from the runner
                from solvers.errors import NumericalError

                raise NumericalError(f"the {name} step matrix cannot be factored: {exc}") from None

    def _s(self, t: float) -> np.ndarray | float:
        return 0.0 if self.source is None else self.source(t)

    def step(self, u: np.ndarray, t: float) -> np.ndarray:
        """u(t) -> u(t + dt)."""
        dt = self.dt
        if self.name == "euler":
            return u + dt * (self.KA @ u + self.Kb + self._s(t))
        if self.name == "beuler":
            return self.lu.solve(u + dt * (self.Kb + self._s(t + dt)))
        rhs = u + (0.5 * dt) * (self.KA @ u) + dt * self.Kb + (0.5 * dt) * (self._s(t) + self._s(t + dt))
        return self.lu.solve(rhs)


class HeatSystem:
    """The :class:`solvers.march.FixedStepSystem` of the heat model: the state is u on the mesh
    (shape ``mesh.cells``); ``advance`` takes n steps of the fixed dt from step n0."""

    def __init__(self, stepper: HeatStepper, shape: tuple[int, ...]) -> None:
        self.stepper, self.shape, self.dt = stepper, tuple(shape), stepper.dt

    def advance(self, state: np.ndarray, n0: int, n: int) -> np.ndarray:
        u = np.array(state, dtype=float).ravel()
        for k in range(n0, n0 + n):
            u = self.stepper.step(u, k * self.dt)
        return u.reshape(self.shape)
