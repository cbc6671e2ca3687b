"""The ``[compensation]`` section of a spec and its sweep entries.

``[compensation]`` takes the fields of
:class:`~circuitsim.network.compensation.CompensationConfig` (``method``, ``rank``,
``epochs``, ``learning_rate``, ``refresh_steps``, the fixed-point formats, …); each is a grid
axis like any other field (``"compensation.rank" = [1, 2, 4, 8]``). Since most fields matter
to one method only, ``[sweep] compensation`` also takes a list of entries, each a table of
``[compensation]`` fields over the section's own, one point per entry (like partitions)::

    [sweep]
    compensation = [{method = "none"}, {method = "affine"}, {method = "lora", rank = 4},
                    {method = "hwa"}]

A spec without ``[compensation]`` gives the same points (and point keys) as before.
Compensation applies to every network in either topology (``hwa`` not to a random network,
whose cells are drawn rather than programmed); a key no point's method uses is refused before
anything runs.

Public API
----------
COMPENSATION_KEYS, COMPENSATION_TYPES, build_compensation_config, check_compensation_entries,
check_compensation_used
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from ..network.compensation import CompensationConfig

COMPENSATION_KEYS = {f.name for f in dataclasses.fields(CompensationConfig)}
"""Keys of ``[compensation]``."""
COMPENSATION_TYPES = {f.name: f.type for f in dataclasses.fields(CompensationConfig)}
"""Declared type of every ``[compensation]`` key."""
_USED_BY = {"rank": ("lora",), "adapter_format": ("lora",), "epochs": ("lora", "hwa"),
            "learning_rate": ("lora", "hwa"), "batch_size": ("lora", "hwa"), "seed": ("lora", "hwa"),
            "refresh_steps": ("hwa",), "latent_scale": ("hwa",), "scale_format": ("affine",),
            "offset_format": ("affine",), "calibration_images": ("affine", "hwa")}


def build_compensation_config(config: dict) -> CompensationConfig:
    """The :class:`CompensationConfig` of a point's configuration (``none`` without the section)."""
    section = config.get("compensation", {})
    try:
        return CompensationConfig.from_dict(dict(section))
    except TypeError as exc:
        raise ConfigError(f"[compensation]: {exc}") from None


def check_compensation_entries(entries, check_types) -> tuple[dict, ...]:
    """Check ``[sweep] compensation``: a non-empty list of tables of ``[compensation]`` keys
    (``check_types(section, table)`` checks their TOML types)."""
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) and e for e in entries):
        raise ConfigError("[sweep] compensation needs a non-empty list of tables such as "
                          "[{method = \"none\"}, {method = \"lora\", rank = 2}]")
    for entry in entries:
        unknown = sorted(set(entry) - COMPENSATION_KEYS)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in a [sweep] compensation entry; "
                              f"allowed: {', '.join(sorted(COMPENSATION_KEYS))}")
        check_types("compensation", entry)
    return tuple(entries)


def check_compensation_used(configs: list[dict], network_kind) -> None:
    """Refuse compensation keys that no point's method uses, and methods that do not apply to a
    point's network (``network_kind(section)``: ``"mlp"``, ``"random"``, ``"cnn"`` or ``"onnx"``)."""
    methods = []
    for config in configs:
        method = build_compensation_config(config).method
        methods.append(method)
        kind = network_kind(config["network"])
        if method != "none" and kind == "snn":
            raise ConfigError(f"compensation.method = \"{method}\" corrects a network evaluated in one pass; a "
                              "spiking network ([network] kind = \"snn\") takes none yet: remove [compensation]")
        if method == "hwa" and kind == "random":
            raise ConfigError("compensation.method = \"hwa\" fine-tunes programmed weights, and a random network's "
                              "cells are drawn, not programmed; train its mask (training = \"mask\") or use "
                              "affine or lora")
    for key, users in _USED_BY.items():
        if any(key in config.get("compensation", {}) for config in configs) and not set(users) & set(methods):
            raise ConfigError(f"compensation.{key} is ignored unless method is {' or '.join(users)}; "
                              "remove it or choose such a method")
