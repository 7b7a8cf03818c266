"""Newton-Krylov solves for implicit steps, and the transposed solves of their adjoints."""
import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres


from .errors import NumericalError


class ConvergenceError(NumericalError):
    pass


def _gmres(matvec, rhs, tol, maxiter):
    n = rhs.size
    op = LinearOperator((n, n), matvec=matvec, dtype=float)
    restart = min(n, 60)
    x, info = gmres(op, rhs, rtol=tol, atol=0.0, restart=restart, maxiter=maxiter)
    if info > 0:
        # check the true residual: GMRES reports failure also when it stalls below tol
        res = np.linalg.norm(matvec(x) - rhs)
        if res > 1e3 * tol * max(np.linalg.norm(rhs), 1e-300):
            raise ConvergenceError(f"GMRES did not converge (residual {res:.3e})")
    return x


def solve_shifted(apply_jac, rhs, shift, tol, maxiter=200):
    """Solve (I - shift*J) x = rhs with J given by ``apply_jac`` (flat arrays)."""
    shape = rhs.shape

    def matvec(v):
        v = v.reshape(shape)
        return (v - shift * apply_jac(v)).ravel()

    return _gmres(matvec, rhs.ravel(), tol, maxiter).reshape(shape)


def newton_krylov(residual_and_jac, y0, tol, maxiter, krylov_tol):
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
        if gnorm <= tol * max(1.0, np.linalg.norm(y)):
            return y, state
        if it == maxiter:
            break
        shape = g.shape

        def matvec(v, apply_dg=apply_dg):
            return apply_dg(v.reshape(shape)).ravel()

        delta = _gmres(matvec, -g.ravel(), krylov_tol, 200).reshape(shape)
        y = y + delta
    raise ConvergenceError(f"Newton did not converge in {maxiter} iterations (|G| = {gnorm:.3e})")
