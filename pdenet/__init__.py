"""pdenet: the PDE and optimal-control theory of deep learning, made computable.

Python API (PRODUCT.md section 3)::

    case = pdenet.load_case("cases/network_depth.toml", overrides=["time.steps=32"])
    model = pdenet.validate(case)          # what run checks, without running (writes nothing)
    result = pdenet.run(case, output="out.h5")
    result = pdenet.open("out.h5")
    result.fields["f"], result.time, result.diagnostics, result.mesh
"""
from ._version import __version__
from .case import Case, load_case
from .errors import CaseError, ExpressionError, OutputError, PdenetError, SolverError
from .io import Result, open_result as open  # noqa: A001 - the documented API name
from .mesh import Boundary, Mesh
from .runner import run, validate

# ``open`` is left out of __all__ (it is pdenet.open): ``from pdenet import *`` must not shadow the builtin
__all__ = ["__version__", "Case", "load_case", "validate", "run", "Result", "Mesh", "Boundary",
           "PdenetError", "CaseError", "ExpressionError", "OutputError", "SolverError"]
