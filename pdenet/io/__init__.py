"""Result sinks (HDF5 file, memory) and reading results back."""
from .result import Result, open_result
from .sink import FanOut, MemorySink
from .hdf5 import H5Sink

__all__ = ["Result", "open_result", "FanOut", "MemorySink", "H5Sink"]
