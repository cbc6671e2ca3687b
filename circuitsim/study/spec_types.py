"""The declared type of every spec key, and the one-line refusals of a value that does not fit
and of a key that no point uses.

Every key of a spec's sections has the type its configuration dataclass declares (``int``,
``float``, ``bool``, ``str``, ``tuple[...]``, or a string switch: a ``Literal`` type whose
values :data:`CHOICES` lists); a value of another type is refused before anything runs, in one
line naming the key, what it must be and what it got. A key that only some setting uses
(``[adc]`` options with ``kind = "none"``, ``t_int`` without a charge readout, ``r_sense``
without the sense readout ...) is refused when no point of the spec has that setting
(:func:`check_used`).

Public API
----------
TYPES, CHOICES, check_types, check_used
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


def check_used(configs: list[dict]) -> None:
    """Refuse (one line) keys that no point's configuration (``configs``: every point's sections) uses."""
    adc_options = {k for config in configs for k in config.get("adc", {}) if k != "kind"}
    if adc_options and all(config.get("adc", {}).get("kind", "sar" if config.get("adc") else "none") == "none"
                           for config in configs):
        raise ConfigError(f"[adc] {sorted(adc_options)[0]} is ignored with kind = \"none\"; "
                          "remove it or choose an ADC kind")
    readouts = {c["circuit"].get("readout", "current") for c in configs}
    named = " or ".join(f'"{r}"' for r in sorted(readouts))
    for key in ("t_int", "c_int"):
        if any(key in c["circuit"] for c in configs) and not readouts & {"charge", "charge-passive"}:
            raise ConfigError(f"circuit.{key} is ignored with readout = {named}; "
                              "remove it or choose a charge readout")
    if any("r_sense" in c["circuit"] for c in configs) and "sense" not in readouts:
        raise ConfigError(f"circuit.r_sense is ignored with readout = {named} "
                          "(only sense resistors have it); remove it or set readout = \"sense\"")
    dac_options = {k for config in configs for k in config.get("dac", {}) if k != "kind"}
    if dac_options and all(config.get("dac", {}).get("kind", "none") == "none" for config in configs):
        raise ConfigError(f"[dac] {sorted(dac_options)[0]} is ignored with kind = \"none\"; "
                          "remove it or choose kind = \"amplitude\" or \"bit-serial\"")
    if any("threshold" in c["dataset"] for c in configs) and not any(c["dataset"].get("binarize") for c in configs):
        raise ConfigError("dataset.threshold is ignored without binarize = true; remove it or binarize")
