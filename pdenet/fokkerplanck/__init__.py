"""Fokker-Planck equations on the structured meshes: finite volumes (Scharfetter-Gummel),
diagnostics, first-passage times and SDE particle ensembles (PRODUCT.md 1.2)."""
from .fv import FokkerPlanckOperator, bernoulli


def kernels():
    """The numba dispatchers of the Fokker-Planck model (for compile/cache statistics)."""
    from . import fv, particles

    return [fv._fp_apply, fv._fp_euler_steps, particles._advance, particles._histogram]


__all__ = ["FokkerPlanckOperator", "bernoulli", "kernels"]
