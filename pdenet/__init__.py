"""pdenet: the PDE and optimal-control theory of deep learning, made computable.

Python API (PRODUCT.md section 3)::

    case = pdenet.load_case("cases/network_depth.toml", overrides=["time.steps=32"])
    model = pdenet.validate(case)          # what run checks, without running (writes nothing)
    result = pdenet.run(case, output="out.h5")
    result = pdenet.open("out.h5")
    result.fields["f"], result.time, result.diagnostics, result.mesh

The public names are imported on first use (PEP 562): ``import pdenet`` stays cheap, so the
command line can answer quickly (``pdenet run`` refuses a target another run holds before
numpy, h5py or numba are loaded).
"""
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import CaseError, ExpressionError, OutputError, PdenetError, SolverError

# ``open`` is left out of __all__ (it is pdenet.open): ``from pdenet import *`` must not shadow the builtin
__all__ = ["__version__", "Case", "load_case", "validate", "run", "Result", "Mesh", "Boundary",
           "PdenetError", "CaseError", "ExpressionError", "OutputError", "SolverError"]

_WHERE = {"Case": ("case", "Case"), "load_case": ("case", "load_case"),
          "Result": ("io", "Result"), "open": ("io", "open_result"),
          "Mesh": ("mesh", "Mesh"), "Boundary": ("mesh", "Boundary"),
          "run": ("runner", "run"), "validate": ("runner", "validate")}

if TYPE_CHECKING:
    from .case import Case, load_case
    from .io import Result, open_result as open  # noqa: A001 - the documented API name
    from .mesh import Boundary, Mesh
    from .runner import run, validate


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        module, attr = _WHERE[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    if not name.startswith("_"):  # a submodule (pdenet.runner, pdenet.io, ...), as before the names were lazy
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
