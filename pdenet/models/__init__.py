"""The model registry: ``[case] model = NAME`` -> the module and class that solve it.

Each entry names a module path, not a class: a model's package is imported only when a case
asks for it, so loading a Fokker-Planck case imports neither the network model nor matplotlib.
Adding a model is one line here (see docs/adding-a-model.md). ``PLOTTERS`` names each model's
figure function the same way; it is imported only by ``pdenet plot``.
"""
from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any, Callable

from ..errors import CaseError

if TYPE_CHECKING:
    from .base import Model

#: model name -> "module:Class"
REGISTRY: dict[str, str] = {
    "network": "pdenet.network.model:NetworkModel",
    "network-hjb": "pdenet.network.reduced.model:NetworkHJBModel",
    "fokker-planck": "pdenet.fokkerplanck.model:FokkerPlanckModel",
    "hamilton-jacobi": "pdenet.hj.model:HamiltonJacobiModel",
    "hjb": "pdenet.hjb.model:HJBModel",
    "mean-field": "pdenet.meanfield.model:MeanFieldModel",
    "heat": "pdenet.heat.model:HeatModel",
}

#: model name -> "module:function" drawing that model's own figure (``pdenet plot``)
PLOTTERS: dict[str, str] = {
    "network": "pdenet.network.plots:plot_network",
    "network-hjb": "pdenet.network.reduced.plots:plot_network_hjb",
    "fokker-planck": "pdenet.fokkerplanck.plots:plot_fokker_planck",
    "hamilton-jacobi": "pdenet.hj.plots:plot_hj",
    "hjb": "pdenet.hjb.plots:plot_hjb",
    "mean-field": "pdenet.meanfield.plots:plot_meanfield",
}


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_model(name: str) -> type[Model]:
    """The model class registered as ``name`` (imports its package on first use)."""
    if not isinstance(name, str):
        raise CaseError(f"expected a string (a model name), got {name!r}; available: "
                        f"{', '.join(model_names())}", key="case.model")
    if name not in REGISTRY:
        near = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise CaseError(f"unknown model {name!r}{hint}; available: {', '.join(model_names())}",
                        key="case.model")
    return _resolve(REGISTRY[name])


def all_models() -> dict[str, type[Model]]:
    """name -> class for every registered model (imports them all: for docs and tests)."""
    return {name: get_model(name) for name in model_names()}


def get_plotter(name: str) -> Callable[..., Any] | None:
    """The figure function of model ``name`` or None (imports matplotlib)."""
    spec = PLOTTERS.get(name) if isinstance(name, str) else None  # a damaged file's attribute
    return _resolve(spec) if spec is not None else None
