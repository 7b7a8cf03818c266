"""The width-depth network PDE of Liu & Markowich (operators, heads, the discrete system)."""
from .heads import Head
from .operators import ConvolutionOperator, DenseOperator, LowRankOperator
from .pde import Gradient, NetworkPDE

__all__ = ["Head", "DenseOperator", "LowRankOperator", "ConvolutionOperator", "NetworkPDE", "Gradient"]
