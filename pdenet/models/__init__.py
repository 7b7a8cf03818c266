"""Model registry: ``[case] model = NAME`` -> model class."""
import difflib

from ..errors import CaseError

MODELS = {}


def register(cls):
    MODELS[cls.name] = cls
    return cls


def get_model(name):
    _load_builtin()
    if name not in MODELS:
        near = difflib.get_close_matches(str(name), list(MODELS), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise CaseError(f"unknown model {name!r}{hint}; available: {', '.join(sorted(MODELS))}",
                        key="case.model")
    return MODELS[name]


def _load_builtin():
    # importing a model module registers it
    from . import fokkerplanck, hamiltonjacobi, hjb, meanfield, network  # noqa: F401
    from . import network_hjb  # noqa: F401
