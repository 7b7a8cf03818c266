"""How things are solved: time steppers, their discrete adjoints, Newton-Krylov.

``solvers`` knows models only through the small protocol documented in
:mod:`solvers.protocol`; it never imports ``pdenet``.
"""
from .schedule import Schedule
from .steppers import STEPPERS, ExplicitRK, Theta, make_stepper
from .integrate import Tape, solve_adjoint, solve_forward

__all__ = ["Schedule", "STEPPERS", "ExplicitRK", "Theta", "make_stepper", "Tape",
           "solve_forward", "solve_adjoint"]
