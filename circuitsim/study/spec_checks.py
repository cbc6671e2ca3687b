"""Checks of a spec beyond its types: limits of the fields that set a run's time or memory,
partition entries of an MLP, and a network against its dataset.

Public API
----------
LIMITS, check_limits, check_partition_entry, check_dataset
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .network_spec import LAYER_KINDS, network_inputs, network_io, network_kind

LIMITS = {("network", "epochs"): 10_000, ("compensation", "epochs"): 10_000, ("dataset", "side"): 1024,
          ("network", "batch_size"): 1_000_000, ("compensation", "refresh_steps"): 1_000_000}
"""Upper bounds of integer fields whose value sets a run's time or memory (a typo of 1e9
epochs would otherwise run for ever)."""


def check_limits(config: dict) -> None:
    """Refuse a value above its :data:`LIMITS` bound."""
    for (section, key), limit in LIMITS.items():
        value = config.get(section, {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise ConfigError(f"{section}.{key} = {value} is more than {limit}; give a smaller value")


def check_partition_entry(entry: Any, layers: tuple, bias: bool) -> None:
    """Refuse an MLP partitions entry that is malformed or does not fit its ``layers``."""
    if not isinstance(entry, dict) or not (set(entry) == {"h", "v"} or set(entry) == {"auto"}):
        raise ConfigError(f"a partitions entry must be {{h = [...], v = [...]}} or {{auto = N}}, got {entry!r}")
    if "auto" in entry:
        if not isinstance(entry["auto"], int) or entry["auto"] < 1:
            raise ConfigError(f"auto partition size must be a positive integer, got {entry['auto']!r}")
        return
    n_layers = len(layers) - 1
    for name in ("h", "v"):
        values = entry[name]
        if not isinstance(values, list) or len(values) != n_layers:
            raise ConfigError(f"partition {name} = {values!r} needs one value per layer ({n_layers})")
        for k, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"partition {name} = {values!r}: values must be positive integers")
            limit = layers[k] + int(bias) if name == "h" else layers[k + 1]
            if value > limit:
                what = "rows" if name == "h" else "outputs"
                raise ConfigError(f"partition {name} = {values!r}: layer {k} has only {limit} {what}, "
                                  f"fewer than {value} partitions")


def check_dataset(config: dict, data) -> None:
    """Refuse a network (MLP, CNN or ONNX model) whose inputs are not the dataset's input size
    or which has fewer outputs than the dataset has classes."""
    n_in = int(np.prod(data.x_train.shape[1:]))
    network_in = network_inputs(config)
    network_out = network_io(config)[1] if network_in == n_in else 0  # run it only on the right inputs
    if network_kind(config["network"]) not in LAYER_KINDS:  # an MLP (trained or random)
        if network_in != n_in:
            raise ConfigError(f"network.layers[0] = {network_in} but dataset {data.name!r} has {n_in} inputs per "
                              f"image; set layers[0] = {n_in} (or change dataset.side)")
        if network_out < data.n_classes:
            raise ConfigError(f"network.layers[-1] = {network_out} outputs but dataset {data.name!r} has "
                              f"{data.n_classes} classes; set layers[-1] = {data.n_classes}")
        return
    what = (f"the ONNX model {config['network']['onnx']}" if network_kind(config["network"]) == "onnx"
            else "the CNN of [network]")
    if network_in != n_in:
        raise ConfigError(f"{what} takes {network_in} inputs per image but dataset {data.name!r} has {n_in}; "
                          "set [dataset] side (and crop) to match the network")
    if network_out < data.n_classes:
        raise ConfigError(f"{what} has {network_out} outputs but dataset {data.name!r} has {data.n_classes} "
                          f"classes: a class without an output can never be predicted; give a model with "
                          f"{data.n_classes} outputs")
