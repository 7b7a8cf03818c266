"""Structured, cell-centred box meshes in 1-3 dimensions.

A mesh of the box prod_d [lower_d, upper_d] into cells_d equal cells per
dimension. Values live at cell centres; the midpoint rule with weight
``cell_volume`` is the quadrature, so ``mesh.integrate(f) = h^n sum f``.

Refinement by an integer factor with piecewise-constant prolongation and
averaging restriction is the width limit of Liu & Markowich Theorem 2.2: a
network on the coarse mesh is the same network as its prolongation on the fine
mesh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .resources import format_bytes, total_memory


class MeshError(ValueError):
    """A mesh that cannot be built; ``argument`` names the offending argument (``cells``,
    ``lower``, ``upper``, ``boundary``, or "" for their combination). The case layer maps it to
    the ``[mesh]`` key (:meth:`pdenet.models.base.Model.build_mesh`)."""

    def __init__(self, message: str, argument: str = "") -> None:
        super().__init__(message)
        self.argument = argument

BOUNDARY_KINDS = ("periodic", "noflux", "dirichlet", "neumann", "extrapolate", "none")


@dataclass(frozen=True)
class Boundary:
    """Boundary condition on one side of one dimension.

    kind: periodic | noflux | dirichlet | neumann | extrapolate | none.
    value: the Dirichlet value or the Neumann outward flux (0 for noflux).
    """

    kind: str = "none"
    value: float = 0.0

    def __post_init__(self):
        if self.kind not in BOUNDARY_KINDS:
            raise MeshError(f"unknown boundary kind {self.kind!r}; one of {', '.join(BOUNDARY_KINDS)}",
                            "boundary")


def _as_tuple(value, ndim, name, kind):
    if np.ndim(value) == 0:
        value = [value] * ndim
    value = list(value)
    if len(value) != ndim:
        raise MeshError(f"has {len(value)} entries, expected {ndim} (one per dimension)", name)
    try:
        return tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise MeshError(f"entries must be {kind.__name__}s, got {value!r}", name) from None


def check_fits(cells: tuple[int, ...], memory: int | None = None) -> None:
    """MeshError (argument cells) when one float64 field on ``cells`` exceeds the physical memory
    (``memory`` bytes; default: this machine's). Nothing is allocated; called by :class:`Mesh`
    before any array of the mesh exists."""
    have = total_memory() if memory is None else memory
    n = math.prod(cells)
    need = 8 * n
    if have is not None and need > have:
        shown = f"{n:.3g}" if n < 10 ** 300 else "more than 1e+300"  # an int beyond float range
        raise MeshError(f"{shown} cells ({' x '.join(map(str, cells))}): one field needs "
                        f"{format_bytes(need)}, this machine has {format_bytes(have)}", "cells")


class Mesh:
    """Cell-centred box mesh.

    Parameters
    ----------
    lower, upper : float or sequence of float, one per dimension
    cells : int or sequence of int
    boundary : str, Boundary, or a sequence (one per dimension) of those or of
        (low, high) pairs.
    """

    def __init__(self, lower, upper, cells, boundary="none"):
        sizes = [np.size(v) for v in (lower, upper, cells)]
        ndim = max(sizes)
        if len({n for n, v in zip(sizes, (lower, upper, cells)) if np.ndim(v) > 0}) > 1:
            raise MeshError(f"lower, upper and cells have {sizes[0]}, {sizes[1]} and {sizes[2]} entries; "
                            "give one per dimension", "")
        if not 1 <= ndim <= 3:
            raise MeshError(f"meshes have 1, 2 or 3 dimensions, got {ndim}", "cells")
        self.lower = _as_tuple(lower, ndim, "lower", float)
        self.upper = _as_tuple(upper, ndim, "upper", float)
        cells_in = [cells] * ndim if np.ndim(cells) == 0 else list(cells)
        if any(isinstance(c, float) and not float(c).is_integer() for c in cells_in):
            raise MeshError(f"cell counts must be integers, got {cells_in!r}", "cells")
        self.cells = _as_tuple(cells_in, ndim, "cells", int)
        if any(c < 1 for c in self.cells):
            raise MeshError(f"cell counts must be positive, got {list(self.cells)}", "cells")
        check_fits(self.cells)
        if any(not (u > l) for l, u in zip(self.lower, self.upper)):
            raise MeshError(f"upper must exceed lower in every dimension, got lower={list(self.lower)} "
                            f"upper={list(self.upper)}", "upper")
        self.boundary = self._parse_boundary(boundary, ndim)

    @staticmethod
    def _parse_boundary(spec, ndim):
        def one(s):
            if isinstance(s, Boundary):
                return s
            if isinstance(s, dict):
                kind, value = s.get("kind", "none"), s.get("value", 0.0)
                if (not isinstance(kind, str) or isinstance(value, bool)
                        or not isinstance(value, (int, float))):
                    raise MeshError(f"a condition table is {{kind = <name>, value = <number>}}, got {s!r}",
                                    "boundary")
                return Boundary(kind, float(value))
            if not isinstance(s, str):
                raise MeshError(f"expected a condition ({', '.join(BOUNDARY_KINDS)}), got {s!r}", "boundary")
            return Boundary(s)

        if isinstance(spec, (str, Boundary, dict)):
            spec = [spec] * ndim
        if not isinstance(spec, (list, tuple)):
            raise MeshError(f"expected a condition ({', '.join(BOUNDARY_KINDS)}), a list per dimension or "
                            f"[low, high] pairs, got {spec!r}", "boundary")
        spec = list(spec)
        if len(spec) != ndim:
            raise MeshError(f"has {len(spec)} entries, expected {ndim}", "boundary")
        sides = []
        for s in spec:
            pair = s if isinstance(s, (list, tuple)) else (s, s)
            if len(pair) != 2:
                raise MeshError("a per-dimension entry is one condition or a (low, high) pair", "boundary")
            low, high = one(pair[0]), one(pair[1])
            if (low.kind == "periodic") != (high.kind == "periodic"):
                raise MeshError("periodic must be set on both sides of a dimension", "boundary")
            sides.append((low, high))
        return tuple(sides)

    # -- geometry -----------------------------------------------------------
    @property
    def ndim(self):
        """Number of dimensions (1-3)."""
        return len(self.cells)

    @property
    def shape(self):
        """Cells per dimension, as a tuple (the shape of a field)."""
        return self.cells

    @property
    def size(self):
        """Total number of cells."""
        return math.prod(self.cells)

    @cached_property
    def spacing(self):
        """Cell width per dimension."""
        return tuple((u - l) / n for l, u, n in zip(self.lower, self.upper, self.cells))

    @property
    def cell_volume(self):
        """Volume (length, area) of one cell: the midpoint-rule weight h."""
        return float(np.prod(self.spacing))

    @property
    def volume(self):
        """Volume of the box."""
        return float(np.prod([u - l for l, u in zip(self.lower, self.upper)]))

    @cached_property
    def axes(self):
        """Cell-centre coordinates along each dimension (tuple of 1-D arrays)."""
        return tuple(l + (np.arange(n) + 0.5) * h
                     for l, n, h in zip(self.lower, self.cells, self.spacing))

    @cached_property
    def faces(self):
        """Face coordinates along each dimension (n+1 values)."""
        return tuple(np.linspace(l, u, n + 1) for l, u, n in zip(self.lower, self.upper, self.cells))

    def centres(self, sparse=False):
        """Cell-centre coordinate arrays, one per dimension, shaped like the mesh."""
        return tuple(np.meshgrid(*self.axes, indexing="ij", sparse=sparse))

    def weights(self):
        """Midpoint quadrature weights (all equal to the cell volume)."""
        return np.full(self.cells, self.cell_volume)

    def integrate(self, values, axes=None):
        """Midpoint-rule integral over the trailing ``ndim`` axes of ``values``."""
        values = np.asarray(values)
        axes = tuple(range(values.ndim - self.ndim, values.ndim)) if axes is None else axes
        return values.sum(axis=axes) * self.cell_volume

    def norm(self, values, p=2):
        """Discrete L^p norm over the trailing ``ndim`` axes (p = inf allowed)."""
        values = np.abs(np.asarray(values))
        axes = tuple(range(values.ndim - self.ndim, values.ndim))
        if np.isinf(p):
            return values.max(axis=axes)
        return (values ** p).sum(axis=axes) ** (1.0 / p) * self.cell_volume ** (1.0 / p)

    # -- refinement ---------------------------------------------------------
    def refine(self, factor):
        """The mesh with every cell split into ``factor`` cells per dimension."""
        factor = int(factor)
        if factor < 1:
            raise ValueError("refinement factor must be a positive integer")
        return Mesh(self.lower, self.upper, [c * factor for c in self.cells], self.boundary)

    def refinement_factor(self, fine):
        """Integer factor r with fine == self.refine(r); ValueError otherwise."""
        ratios = {f / c for f, c in zip(fine.cells, self.cells)}
        if (len(ratios) != 1 or not float(next(iter(ratios))).is_integer()
                or fine.lower != self.lower or fine.upper != self.upper):
            raise ValueError(f"mesh {fine.cells} is not an integer refinement of {self.cells}")
        return int(next(iter(ratios)))

    def prolong(self, values, fine):
        """Piecewise-constant prolongation from this mesh to ``fine`` (trailing axes)."""
        r = self.refinement_factor(fine)
        values = np.asarray(values)
        lead = values.ndim - self.ndim
        for d in range(self.ndim):
            values = np.repeat(values, r, axis=lead + d)
        return values

    def restrict(self, values, fine):
        """Averaging restriction of ``values`` on ``fine`` onto this mesh (trailing axes)."""
        r = self.refinement_factor(fine)
        values = np.asarray(values)
        lead = values.shape[: values.ndim - self.ndim]
        shape = list(lead)
        for c in self.cells:
            shape += [c, r]
        values = values.reshape(shape)
        axes = tuple(len(lead) + 2 * d + 1 for d in range(self.ndim))
        return values.mean(axis=axes)

    # -- description --------------------------------------------------------
    def describe(self):
        """Plain dict (lower, upper, cells, boundary) for HDF5 attributes and case files."""
        return {
            "lower": list(self.lower),
            "upper": list(self.upper),
            "cells": list(self.cells),
            "boundary": [[s.kind for s in pair] for pair in self.boundary],
        }

    def __eq__(self, other):
        return isinstance(other, Mesh) and self.describe() == other.describe()

    def __repr__(self):
        kinds = [[s.kind for s in pair] for pair in self.boundary]
        bc = kinds[0][0] if all(k == kinds[0][0] for pair in kinds for k in pair) else kinds
        def g(v):
            return "[" + ", ".join(f"{float(x):g}" for x in v) + "]"
        return f"Mesh(lower={g(self.lower)}, upper={g(self.upper)}, cells={list(self.cells)}, boundary={bc!r})"
