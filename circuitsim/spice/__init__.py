"""ngspice backends: in-process (PySpice shared library) and subprocess (batch mode).

Public API
----------
get_backend, BACKENDS, SpiceBackend, find_ngspice, require_ngspice, NgspiceInfo
"""

from __future__ import annotations

from typing import Literal, get_args

from ..errors import ConfigError
from .base import SpiceBackend
from .discovery import NgspiceInfo, find_ngspice, require_ngspice

Backend = Literal["shared", "subprocess"]
"""How ngspice runs: in-process (shared library) or as a subprocess."""
BACKENDS: tuple[str, ...] = get_args(Backend)
_instances: dict[str, SpiceBackend] = {}


def get_backend(name: str = "shared") -> SpiceBackend:
    """Return the backend called ``name`` (``"shared"`` or ``"subprocess"``), created once."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown ngspice backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name not in _instances:
        if name == "shared":
            from .shared import SharedBackend as backend_class
        else:
            from .batch import BatchBackend as backend_class
        _instances[name] = backend_class()
    return _instances[name]


__all__ = ["BACKENDS", "get_backend", "SpiceBackend", "NgspiceInfo", "find_ngspice", "require_ngspice"]
