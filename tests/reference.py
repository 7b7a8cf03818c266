"""Published reference numbers for the tests: ``data/<topic>.toml`` at the top of the repository
(data/README.md lists the files and their sources).

Every entry of a file is a table with ``value`` (a number or a list), ``source`` (the publication,
or the closed form with its derivation), optionally ``tolerance`` and the parameters the value
belongs to. ``ref("meanfield", "relu_critical_sw2")`` returns the entry as a :class:`Reference`;
``value(topic, name)`` just its value.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Reference:
    value: Any
    source: str
    tolerance: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """A parameter of the entry (``ref(...)["sigma_b2"]``)."""
        return self.params[key]


@functools.cache
def load(topic: str) -> dict[str, Reference]:
    """Every entry of ``data/<topic>.toml``; a missing ``value`` or ``source`` is an error."""
    path = DATA / f"{topic}.toml"
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    out = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry or not str(entry.get("source", "")).strip():
            raise ValueError(f"{path}: entry {name!r} needs a value and a source")
        params = {k: v for k, v in entry.items() if k not in ("value", "source", "tolerance")}
        out[name] = Reference(entry["value"], entry["source"], entry.get("tolerance"), params)
    return out


def ref(topic: str, name: str) -> Reference:
    return load(topic)[name]


def value(topic: str, name: str) -> Any:
    return load(topic)[name].value


def topics() -> list[str]:
    """The topics present in data/ (one .toml file each)."""
    return sorted(p.stem for p in DATA.glob("*.toml"))
