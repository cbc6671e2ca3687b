"""The declared type of every spec key, and the one-line refusal of a value that does not fit.

Every key of a spec's sections has the type its configuration dataclass declares (``int``,
``float``, ``bool``, ``str``, ``tuple[...]``, or a string switch: a ``Literal`` type whose
values :data:`CHOICES` lists); a value of another type is refused before anything runs, in one
line naming the key, what it must be and what it got.

Public API
----------
TYPES, CHOICES, check_types
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..device_statistics import DRIFT_COMPENSATIONS, PROGRAMMING_NOISE_MODELS
from ..devices import Device, Wires
from ..errors import ConfigError
from ..network.circuit_config import NEGATIVES, NEURON_REFERENCES, READOUTS, TOPOLOGIES, CircuitConfig
from ..network.mlp import MLPConfig
from ..network.random_weights import RandomNetworkConfig
from ..network.spiking import SpikingConfig
from ..periphery.adc import KINDS, ADCConfig
from ..periphery.dac import DAC_KINDS, DACConfig
from ..spice import BACKENDS
from ..tile.extract import ENGINES
from ..tile.cells import CELL_MODELS
from .cells_spec import CELL_TYPES
from .compensation_spec import COMPENSATION_TYPES


def _field_types(*classes: type) -> dict[str, str]:
    return {f.name: f.type for c in classes for f in dataclasses.fields(c)}


TYPES = {
    "dataset": {"name": "str", "path": "str", "side": "int", "crop": "bool", "binarize": "bool",
                "threshold": "float", "test_fraction": "float", "limit": "int", "seed": "int",
                "train_limit": "int"},
    "network": {**_field_types(MLPConfig), **_field_types(RandomNetworkConfig), **_field_types(SpikingConfig)},
    "device": {**_field_types(Device), "preset": "str"},
    "wires": {**_field_types(Wires), "preset": "str"},
    "circuit": _field_types(CircuitConfig),
    "adc": _field_types(ADCConfig),
    "dac": _field_types(DACConfig),
    "mapping": {"weight_bits": "int", "negative": "Negative"},
    "compensation": COMPENSATION_TYPES,
    "cells": CELL_TYPES,
}
"""Declared type of every spec key (the dataclass annotations), by section."""


CHOICES = {"Engine": ENGINES, "Backend": BACKENDS, "Readout": READOUTS, "Topology": TOPOLOGIES,
           "NeuronReference": NEURON_REFERENCES, "ADCKind": ("none",) + KINDS, "DACKind": DAC_KINDS,
           "ProgrammingNoiseModel": PROGRAMMING_NOISE_MODELS, "DriftCompensation": DRIFT_COMPENSATIONS,
           "CellKind": tuple(CELL_MODELS), "Negative": NEGATIVES}
"""The string switches of the configurations (``Literal`` types) and their values."""


def _type_error(name: str, value: Any, declared: str) -> str | None:
    """Why ``value`` does not fit the declared type, or None."""
    kind = declared.replace(" | None", "")
    if kind in CHOICES:
        if isinstance(value, str) and value in CHOICES[kind]:
            return None
        return f"{name} must be one of {', '.join(CHOICES[kind])}, got {value!r}"
    if kind.startswith("tuple["):
        item = kind[len("tuple["):].split(",")[0]
        if not isinstance(value, list):
            return f"{name} must be a list of {item} values, got {value!r}"
        bad = [v for v in value if _type_error(name, v, item)]
        return f"{name} must be a list of {item} values, got {bad[0]!r} in it" if bad else None
    checks = {"bool": lambda v: isinstance(v, bool),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              "str": lambda v: isinstance(v, str)}
    if kind not in checks or checks[kind](value):
        return None
    words = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}
    return f"{name} must be {words[kind]}, got {value!r} ({type(value).__name__})"


def check_types(section: str, table: dict) -> None:
    """Refuse (one line) the first value of ``table`` that does not fit its key's declared type."""
    for key, value in table.items():
        declared = TYPES.get(section, {}).get(key)
        problem = _type_error(f"{section}.{key}", value, declared) if declared else None
        if problem:
            raise ConfigError(problem)
