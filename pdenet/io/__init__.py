"""Result sinks (HDF5 file, memory) and reading results back.

The names are imported on first use (PEP 562), so that :mod:`pdenet.io.lock` -- which
``pdenet run`` consults before anything heavy is loaded -- does not import h5py or numpy.
"""
from typing import TYPE_CHECKING, Any

__all__ = ["Result", "open_result", "FanOut", "MemorySink", "H5Sink"]

_WHERE = {"Result": "result", "open_result": "result", "FanOut": "sink", "MemorySink": "sink",
          "H5Sink": "hdf5"}

if TYPE_CHECKING:
    from .hdf5 import H5Sink
    from .result import Result, open_result
    from .sink import FanOut, MemorySink


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
