"""The width-depth network PDE of Liu & Markowich (operators, heads, the discrete system)."""
from .heads import Head
from .operators import ConvolutionOperator, DenseOperator, LowRankOperator
from .pde import Gradient, NetworkPDE

from .interchange import from_torch, to_torch   # PyTorch interchange (torch imported on call)

__all__ = ["Head", "DenseOperator", "LowRankOperator", "ConvolutionOperator", "NetworkPDE", "Gradient",
           "to_torch", "from_torch"]
