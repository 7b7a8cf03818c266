"""Newton-Krylov solves for implicit steps, and the transposed solves of their adjoints."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from .errors import NumericalError
from .protocol import Array, LinearMap, ResidualAndJacobian


class ConvergenceError(NumericalError):
    pass


def _gmres(matvec: Callable[[Array], Array], rhs: Array, tol: float, maxiter: int) -> Array:
    n = rhs.size
    op = LinearOperator((n, n), matvec=matvec, dtype=float)
    restart = min(n, 60)
    x, info = gmres(op, rhs, rtol=tol, atol=0.0, restart=restart, maxiter=maxiter)
    if info > 0:
        # check the true residual: GMRES reports failure also when it stalls below tol
        res = np.linalg.norm(matvec(x) - rhs)
        if res > 1e3 * tol * max(float(np.linalg.norm(rhs)), 1e-300):
            raise ConvergenceError(f"GMRES did not converge (residual {res:.3e})")
    return x


def solve_shifted(apply_jac: LinearMap, rhs: Array, shift: float, tol: float, maxiter: int = 200) -> Array:
    """Solve (I - shift*J) x = rhs with J given by ``apply_jac`` (flat arrays)."""
    shape = rhs.shape

    def matvec(v: Array) -> Array:
        v = v.reshape(shape)
        return (v - shift * apply_jac(v)).ravel()

    return _gmres(matvec, rhs.ravel(), tol, maxiter).reshape(shape)


def newton_krylov(residual_and_jac: ResidualAndJacobian, y0: Array, tol: float, maxiter: int,
                  krylov_tol: float) -> tuple[Array, Any]:
    """Solve G(y) = 0 by Newton's method with GMRES inner solves.

    ``residual_and_jac(y) -> (G, apply_dG, state)`` where ``apply_dG(v)`` is the
    Jacobian-vector product of G at y. Stops when ||G|| <= tol * max(1, ||y||).
    Returns (y, state_at_solution).
    """
    y = y0.copy()
    for it in range(maxiter + 1):
        g, apply_dg, state = residual_and_jac(y)
        gnorm = np.linalg.norm(g)
        if not np.isfinite(gnorm):
            raise ConvergenceError("Newton iteration produced a non-finite residual")
        if gnorm <= tol * max(1.0, float(np.linalg.norm(y))):
            return y, state
        if it == maxiter:
            break
        shape = g.shape

        def matvec(v: Array, apply_dg: Callable[[Array], Array] = apply_dg) -> Array:
            return apply_dg(v.reshape(shape)).ravel()

        delta = _gmres(matvec, -g.ravel(), krylov_tol, 200).reshape(shape)
        y = y + delta
    raise ConvergenceError(f"Newton did not converge in {maxiter} iterations (|G| = {gnorm:.3e})")
