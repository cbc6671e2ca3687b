"""What every configuration dataclass shares: rebuilding it from plain data.

Public API
----------
check_fields
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


def check_fields(cls: type, data: dict[str, Any]) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls``.

    Raises
    ------
    ConfigError
        Naming the unknown keys and the valid ones.
    """
    fields = cls.__dataclass_fields__
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys are {sorted(fields)}")
