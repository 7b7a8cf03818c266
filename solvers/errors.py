"""Numerical failures raised by the solvers (the pdenet runner reports them as one line)."""


class NumericalError(RuntimeError):
    """Non-finite state, failed convergence, inconsistent input arrays."""
