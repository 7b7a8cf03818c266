"""Fokker-Planck equations on the structured meshes: finite volumes (Scharfetter-Gummel),
diagnostics, first-passage times and SDE particle ensembles (PRODUCT.md 1.2)."""
from .fv import FokkerPlanckOperator, bernoulli

__all__ = ["FokkerPlanckOperator", "bernoulli"]
