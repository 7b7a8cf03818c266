"""The coefficients of rho_t = div(rho grad f) - div(b rho) + div(D grad rho), built from the
case's expressions (or from arrays, for SGD's own diffusion), in the two forms the numerics
need: sampled on the mesh for the finite-volume operator (:mod:`.fv`; the potential at the
cell centres, the drift at the face centres, the diffusion at the face centres and, for a
state-dependent tensor, the cell centres) and evaluated at particle positions for the Ito SDE
dX = (-grad f + b + c) dt + sqrt(2 D) dW (:mod:`.particles`), where c = 0 for the Ito form
rho_t = ... + div(div(D rho)) and c = div D (the column divergence) for the Fick form
rho_t = ... + div(D grad rho).

An *expression* here is any callable ``e(shape=..., **variables)`` over the coordinates ``x``
(``x1``, ``x2``, ... in 2-D/3-D; 1-D accepts both) and, for the diffusion, ``t`` (a compiled
case expression, :class:`pdenet.expr.Expression`). Invalid coefficients raise ``ValueError``;
the model names the case key.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..expr import coordinate_env
from .fv import FORMS, FokkerPlanckOperator, TensorField, face_coordinates

Expr = Callable[..., Any]


def _face_shape(mesh, d: int) -> tuple[int, ...]:
    shape = list(mesh.cells)
    shape[d] += 1
    return tuple(shape)


def _points(X: np.ndarray) -> dict[str, np.ndarray]:
    """The coordinate variables of particle positions X (n, ndim)."""
    return coordinate_env("x", [X[:, d] for d in range(X.shape[1])])


def _central_difference(e: Expr, X: np.ndarray, d: int, eps: float, **extra: Any) -> np.ndarray:
    """d e / d x_d at the points X by central differences of half-width eps."""
    n = X.shape[0]
    Xp, Xm = X.copy(), X.copy()
    Xp[:, d] += eps
    Xm[:, d] -= eps
    return (e(shape=(n,), **extra, **_points(Xp)) - e(shape=(n,), **extra, **_points(Xm))) / (2 * eps)


class Potential:
    """f: its cell-centre values (fixed at construction) and, from an expression, its force
    -grad f at points (central differences of half-width ``eps[d]``)."""

    def __init__(self, values: np.ndarray, expr: Expr | None = None):
        self.values, self.expr = values, expr

    @classmethod
    def from_expression(cls, expr: Expr, mesh) -> "Potential":
        return cls(expr(shape=mesh.shape, **coordinate_env("x", mesh.centres())), expr)

    def force(self, X: np.ndarray, eps: np.ndarray, out: np.ndarray) -> None:
        """out -= grad f(X)."""
        for d in range(X.shape[1]):
            out[:, d] -= _central_difference(self.expr, X, d, eps[d])

    def at(self, x: float) -> float:
        """f at one point of a 1-D mesh."""
        return float(self.expr(x=np.float64(x), x1=np.float64(x)))


class Drift:
    """b: one component per dimension, sampled at the face centres normal to it (fixed at
    construction) and, from expressions, evaluated at points."""

    def __init__(self, faces: list[np.ndarray], exprs: Sequence[Expr] | None = None):
        self.faces, self.exprs = faces, exprs

    @classmethod
    def from_expressions(cls, texts: Sequence[Any], compile: Callable[[Any], Expr], mesh) -> "Drift":
        """One expression per dimension (``compile`` turns a text into an expression of x)."""
        if len(texts) != mesh.ndim:
            raise ValueError(f"has {len(texts)} components, the mesh has {mesh.ndim} dimensions")
        exprs = [compile(t) for t in texts]
        faces = [e(shape=_face_shape(mesh, d), **coordinate_env("x", face_coordinates(mesh, d)))
                 for d, e in enumerate(exprs)]
        return cls(faces, list(exprs))

    def add(self, X: np.ndarray, out: np.ndarray) -> None:
        """out += b(X)."""
        env = _points(X)
        for d, e in enumerate(self.exprs):
            out[:, d] += e(shape=(X.shape[0],), **env)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Diffusion:
    """D in one of five forms: ``constant`` (ndim numbers, diagonal), ``tensor`` (a constant
    symmetric positive-definite ndim x ndim matrix), ``exprs`` (one expression of x and t per
    dimension, diagonal), ``matrix`` (an ndim x ndim nested list of expressions of x and t: a
    state-dependent full tensor) or ``faces`` (fixed face arrays, one per dimension)."""

    def __init__(self, ndim: int, constant: np.ndarray | None = None, tensor: np.ndarray | None = None,
                 exprs: Sequence[Expr] | None = None, faces: list[np.ndarray] | None = None,
                 matrix: Sequence[Sequence[Expr]] | None = None, field: TensorField | None = None):
        self.ndim = ndim
        #: a fixed tensor field (arrays at the cells and faces: SGD's own D in 2-D)
        self.fixed = field
        self.constant, self.tensor, self.exprs, self.faces = constant, tensor, exprs, faces
        self.matrix = matrix
        every = list(exprs or []) + [e for row in (matrix or []) for e in row]
        #: D depends on t (annealing); on x (a field: the Fick form's SDE has the drift div D)
        self.in_time = any("t" in e.names for e in every)
        self.in_space = faces is not None or field is not None or any(set(e.names) - {"t"} for e in every)

    @classmethod
    def parse(cls, D: Any, ndim: int, compile: Callable[[Any], Expr]) -> "Diffusion":
        """From the case value: a number, an expression, a list of ``ndim`` numbers or
        expressions, or an ndim x ndim list of lists of numbers (``compile`` turns a text or
        number into an expression of x and t)."""
        nd = ndim
        if isinstance(D, bool):
            raise ValueError(f"expected a number, expression or list, got {D!r}")
        if isinstance(D, (int, float)):
            if D <= 0:
                raise ValueError(f"must be positive, got {D!r}")
            return cls(nd, constant=np.full(nd, float(D)))
        if isinstance(D, str):
            return cls(nd, exprs=[compile(D)] * nd)
        if isinstance(D, list) and D and all(isinstance(r, list) for r in D):
            if len(D) != nd or any(len(r) != nd for r in D) or not all(
                    _number(v) or isinstance(v, str) for r in D for v in r):
                raise ValueError(f"a tensor is an {nd} x {nd} list of lists of numbers or expressions")
            if all(_number(v) for r in D for v in r):
                if nd == 1:
                    if D[0][0] <= 0:
                        raise ValueError(f"must be positive, got {D!r}")
                    return cls(nd, constant=np.array([float(D[0][0])]))
                return cls(nd, tensor=np.array(D, dtype=float))
            for a in range(nd):
                for b in range(a):
                    if str(D[a][b]).replace(" ", "") != str(D[b][a]).replace(" ", ""):
                        raise ValueError(f"the diffusion tensor must be symmetric: entry ({a + 1}, {b + 1}) "
                                         f"{D[a][b]!r} differs from ({b + 1}, {a + 1}) {D[b][a]!r}")
            return cls(nd, matrix=[[compile(v) for v in r] for r in D])
        if isinstance(D, list) and len(D) == nd:
            if all(_number(v) for v in D):
                if any(v <= 0 for v in D):
                    raise ValueError(f"must be positive, got {D!r}")
                return cls(nd, constant=np.array(D, dtype=float))
            exprs = []
            for v in D:
                if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                    raise ValueError(f"entries are numbers or expressions, got {v!r}")
                exprs.append(compile(v))
            return cls(nd, exprs=exprs)
        raise ValueError(f"expected a number, an expression, a list of {nd} entries or an "
                         f"{nd} x {nd} tensor, got {D!r}")

    def operator_argument(self, mesh, t: float) -> Any:
        """The ``diffusion`` argument of :class:`~.fv.FokkerPlanckOperator` at time t."""
        if self.fixed is not None:
            return self.fixed
        if self.faces is not None:
            return self.faces
        if self.tensor is not None:
            return self.tensor
        if self.constant is not None:
            return self.constant
        t = np.float64(t)
        if self.matrix is not None or (self.in_space and self.exprs is not None):
            return self.field(mesh, t)
        if not self.in_space:
            return np.array([float(np.broadcast_to(e(t=t), ())) for e in self.exprs])
        return [e(shape=_face_shape(mesh, d), t=t, **coordinate_env("x", face_coordinates(mesh, d)))
                for d, e in enumerate(self.exprs)]

    def entries(self) -> list[list[Any]]:
        """The ndim x ndim expressions (or 0.0) of a matrix or diagonal field."""
        nd = self.ndim
        if self.matrix is not None:
            return [list(r) for r in self.matrix]
        return [[self.exprs[a] if a == b else 0.0 for b in range(nd)] for a in range(nd)]

    def field(self, mesh, t: float) -> TensorField:
        """D(x, t) at the cell and face centres (checked symmetric positive definite per cell)."""
        nd, t = self.ndim, np.float64(t)

        def values(e, env, shape):
            if not callable(e):
                return np.full(shape, float(e))
            return np.broadcast_to(np.asarray(e(shape=shape, t=t, **env), dtype=float), shape)
        E = self.entries()
        env = coordinate_env("x", mesh.centres())
        cells = np.stack([np.stack([values(E[a][b], env, mesh.shape) for b in range(nd)]) for a in range(nd)])
        faces = []
        for d in range(nd):
            env = coordinate_env("x", face_coordinates(mesh, d))
            shape = _face_shape(mesh, d)
            faces.append(np.stack([np.stack([values(E[a][b], env, shape) for b in range(nd)])
                                   for a in range(nd)]))
        return TensorField(cells, faces)

    def scalar(self, mesh, t: float) -> float | None:
        """The scalar D when it is isotropic and constant in space (else None)."""
        if self.tensor is not None or self.in_space or self.matrix is not None:
            return None
        D = np.asarray(self.operator_argument(mesh, t), dtype=float)
        return float(D[0]) if np.all(D == D[0]) else None

    def divergence(self, X: np.ndarray, t: float, eps: np.ndarray, out: np.ndarray) -> None:
        """out += div D(X), (div D)_d = sum_e d_e D_de (the drift that turns the Fick form into an
        Ito SDE; zero when D is constant in x)."""
        if not self.in_space:
            return
        if self.matrix is not None:
            for a in range(self.ndim):
                for e in range(self.ndim):
                    if set(self.matrix[a][e].names) - {"t"}:
                        out[:, a] += _central_difference(self.matrix[a][e], X, e, eps[e], t=np.float64(t))
            return
        if self.exprs is None:
            return
        for d, e in enumerate(self.exprs):
            out[:, d] += _central_difference(e, X, d, eps[d], t=np.float64(t))

    def noise(self, X: np.ndarray, t: float, dW: np.ndarray) -> np.ndarray:
        """sqrt(2 D(X, t)) dW."""
        if self.tensor is not None:
            return dW @ np.linalg.cholesky(2.0 * self.tensor).T
        if self.constant is not None:
            return dW * np.sqrt(2.0 * self.constant)
        n = X.shape[0]
        env = _points(X)
        if self.matrix is not None:
            nd = self.ndim
            M = np.empty((n, nd, nd))
            for a in range(nd):
                for b in range(nd):
                    M[:, a, b] = np.broadcast_to(self.matrix[a][b](shape=(n,), t=np.float64(t), **env), (n,))
            L = np.linalg.cholesky(2.0 * M)
            return np.einsum("nab,nb->na", L, dW)
        s = np.stack([np.broadcast_to(e(shape=(n,), t=np.float64(t), **env), (n,)) for e in self.exprs],
                     axis=1)
        return dW * np.sqrt(2.0 * s)


class Coefficients:
    """Potential, drift, diffusion and absorbing set of one case, on one mesh."""

    def __init__(self, mesh, potential: Potential | None, drift: Drift | None, diffusion: Diffusion,
                 absorbing: np.ndarray | None = None, absorbing_expr: Expr | None = None, form: str = "ito"):
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        #: "ito" (div(div(D rho))) or "fick" (div(D grad rho))
        self.form = form
        self.mesh = mesh
        self.potential, self.drift, self.diffusion = potential, drift, diffusion
        #: cells held at rho = 0 (a mask), and the expression that marks them (positive inside)
        self.absorbing, self.absorbing_expr = absorbing, absorbing_expr
        span = np.array([u - l for l, u in zip(mesh.lower, mesh.upper)])
        #: half-width of the central differences at particle positions
        self.eps = 1e-6 * span

    def operator(self, t: float = 0.0) -> FokkerPlanckOperator:
        """The finite-volume generator at time t (the coefficients change in t only through D(t))."""
        return FokkerPlanckOperator(self.mesh, None if self.potential is None else self.potential.values,
                                    None if self.drift is None else self.drift.faces,
                                    self.diffusion.operator_argument(self.mesh, t), self.absorbing,
                                    form=self.form)

    # -- the SDE of the same equation (pdenet.fokkerplanck.particles) ------------------------------
    def velocity(self, X: np.ndarray, t: float) -> np.ndarray:
        """-grad f + b (+ div D in the Fick form) at the points X (n, ndim), the Ito drift of the SDE."""
        v = np.zeros((X.shape[0], self.mesh.ndim))
        if self.potential is not None:
            self.potential.force(X, self.eps, v)
        if self.drift is not None:
            self.drift.add(X, v)
        if self.form == "fick":
            self.diffusion.divergence(X, t, self.eps, v)
        return v

    def noise(self, X: np.ndarray, t: float, dW: np.ndarray) -> np.ndarray:
        return self.diffusion.noise(X, t, dW)

    def absorbed(self, X: np.ndarray) -> np.ndarray:
        """Which points lie in the absorbing set (needs ``absorbing_expr``)."""
        return np.asarray(self.absorbing_expr(shape=(X.shape[0],), **_points(X))) > 0
