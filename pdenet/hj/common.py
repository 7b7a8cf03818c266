"""Case-file pieces shared by the ``hamilton-jacobi`` and ``hjb`` models: the [time] table of
the HJ schemes, nu from nu or beta, boundary checks, the deprecated ``model.outputs``."""
import warnings

import numpy as np

from ..case import Key
from ..errors import CaseError

HJ_BOUNDARIES = ("periodic", "extrapolate", "none")

TIME_SCHEMA = {
    "t_end": Key("float", None, "Final time T (give two of t_end, steps, dt).", positive=True),
    "stepper": Key("str", "ssp-rk3", "hamilton-jacobi/hjb: ssp-rk3 (explicit, CFL- and diffusion-limited "
                   "step), euler, imex (ARS(2,2,2): H explicit, nu Lap u implicit, second order; for "
                   "large nu) or imex-euler (forward/backward Euler, first order).",
                   choices=["ssp-rk3", "euler", "imex", "imex-euler"]),
    "cfl": Key("float", 0.5, "hamilton-jacobi/hjb: safety factor of the automatic step "
               "dt = cfl / (sum_d max|dH/dp_d|/h_d + nu sum_d kappa/h_d^2 / 2.5).", positive=True),
}


#: ``model.outputs``, the deprecated alias of ``[time] outputs`` (kept so that old case files run)
OUTPUTS_ALIAS = Key("int", None, "Deprecated alias of [time] outputs (the number of saved times after "
                    "t = 0); give time.outputs.", positive=True)


def outputs_alias(data, prefix="model"):
    """Map the deprecated ``model.outputs`` onto ``time.outputs`` (one of them, or both equal)."""
    old = data[prefix].get("outputs")
    if old is None:
        return
    new = data["time"].get("outputs")
    if new is not None and new != old:
        raise CaseError(f"is the deprecated alias of time.outputs; give time.outputs only (here "
                        f"time.outputs = {new}, {prefix}.outputs = {old})", key=f"{prefix}.outputs")
    warnings.warn(f"{prefix}.outputs is deprecated; give [time] outputs", DeprecationWarning, stacklevel=3)
    data["time"]["outputs"] = old


def resolve_nu(model, prefix="model"):
    """nu from ``nu`` or ``beta`` (nu = 1/(2 beta), the thesis' beta^-1/2); exactly one given."""
    nu, beta = model.get("nu"), model.get("beta")
    if (nu is None) == (beta is None):
        raise CaseError("give exactly one of nu (diffusion coefficient) and beta (nu = 1/(2 beta))",
                        key=f"{prefix}.nu")
    if nu is not None:
        if nu < 0.0:
            raise CaseError(f"must be >= 0, got {nu}", key=f"{prefix}.nu")
        return float(nu)
    if beta <= 0.0:
        raise CaseError(f"must be positive, got {beta}", key=f"{prefix}.beta")
    return 0.5 / float(beta)


def check_mesh(data):
    """HJ stencils: periodic or extrapolate boundaries, >= 4 cells per dimension."""
    b = data["mesh"]["boundary"]
    kinds = []
    for item in (b if isinstance(b, list) else [b]):
        for s in (item if isinstance(item, list) else [item]):
            kinds.append(s.get("kind", "none") if isinstance(s, dict) else str(s))
    bad = [k for k in kinds if k not in HJ_BOUNDARIES]
    if bad:
        raise CaseError(f"{bad[0]!r} is not supported by the HJ schemes; use periodic or extrapolate "
                        "(none means extrapolate)", key="mesh.boundary")
    cells = data["mesh"]["cells"]
    if any(c < 4 for c in (cells if isinstance(cells, list) else [cells])):
        raise CaseError("the HJ stencils need at least 4 cells per dimension", key="mesh.cells")


