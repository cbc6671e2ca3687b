"""Sweep specifications: a TOML file naming dataset, network, device, wires,
circuit options and what to sweep.

Example (``examples/amin2022.toml``)::

    [dataset]
    name = "mnist"
    binarize = true

    [network]
    layers = [400, 120, 84, 10]
    weights = "binary"

    [device]
    preset = "sot-mram-amin2022"

    [wires]
    preset = "imac-14nm"

    [sweep]
    partitions = [{h = [1, 1, 1], v = [1, 1, 1]}, {auto = 32}]
    "wires.r_row" = [2.0, 9.24]      # a grid over any field, as section.key

``[device]`` also takes the device statistics (:mod:`circuitsim.device_statistics`: a preset
``statistics = "pcm-aihwkit"`` and/or fields such as ``programming_noise = 0.1``), which
can be grid axes too (``"device.programming_noise" = [0.0, 0.1]``); ``[sweep] seeds = N``
runs every point once per device seed (:func:`seed_points`).

``[network] weights = "random"`` is a random-conductance network
(:mod:`circuitsim.network.random_weights`) with ``training``, ``keep``, ``pruned_cells`` and
``spread``, grid axes like any field. ``[network] kind = "snn"`` runs the network as a spiking
network (:mod:`circuitsim.network.spiking`; its neuron fields, time steps and early stop are
grid axes too).

``[cells]`` gives the canonical tiles' cell model and parameters (:mod:`circuitsim.study.cells_spec`;
``model = "sinh"``, ``v0 = 0.2``; grid axes too); its tiles are then solved exactly for every image.
``[circuit] readout = "sense"`` ends every canonical tile's bit lines in ``r_sense`` ohm to ground
(linear or nonlinear cells; ``"circuit.r_sense"`` a grid axis too).

Every point of the sweep is one combination of the grid values and one
partition entry. Everything is checked before anything runs: TOML types (a boolean
field takes ``true``/``false``, an integer field an integer, a number field a number
that is not a boolean), keys that no point would use (``[adc]`` options without an
ADC, charge-mode options when no point reads out charge, ``r_sense`` without the sense
readout, ``threshold`` without ``binarize``: :func:`~.spec_types.check_used`), partitions,
and (:func:`~.network_spec.check_dataset`) the network's layers against the dataset.

Public API
----------
SweepSpec, Point, load_spec, parse_spec, seed_points, MAX_POINTS
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..device_statistics import STATISTICS_FIELDS, statistics_preset
from ..devices import Device, Wires, device_preset, wire_preset
from ..errors import ConfigError
from ..network.circuit_config import CircuitConfig
from ..network.mapped import check_columns_per_adc, crossbar_shapes
from ..network.datasets import DATASETS
from ..network.mapping import Partition, auto_partition, format_partitions, weight_slices
from ..network.mlp import MLPConfig
from ..network.random_weights import RANDOM_KEYS, RandomNetworkConfig
from ..network.spiking import SPIKING_KEYS
from ..periphery.adc import KINDS, ADCConfig
from ..periphery.dac import DACConfig
from .cells_spec import CELL_KEYS, build_cells
from .compensation_spec import (COMPENSATION_KEYS, check_compensation_entries,
                                check_compensation_used)
from .network_spec import (LAYER_KINDS, LAYER_NETWORK_KEYS, check_layer_network, check_network_section, crossbar_count,
                           layer_partitions, layer_skeleton, model_sha256, network_kind,
                           check_partition_entry, check_resistance_sum, check_spiking, mlp_shapes)
from .spec_types import check_types, check_used

DATASET_KEYS = {"name", "path", "side", "crop", "binarize", "threshold", "test_fraction", "limit", "seed",
                "train_limit"}
NETWORK_KEYS = {f.name for f in dataclasses.fields(MLPConfig)} | LAYER_NETWORK_KEYS | RANDOM_KEYS | SPIKING_KEYS
DEVICE_KEYS = {"preset", "r_low", "r_high", "levels", "v_read_max", "statistics", *STATISTICS_FIELDS}
WIRE_KEYS = {"preset"} | {f.name for f in dataclasses.fields(Wires)}
CIRCUIT_KEYS = {"v_read", "engine", "backend", "gains", "t_read", "readout", "r_sense", "t_int", "c_int",
                "topology", "amp_gains", "opamp_gain", "neuron_reference", "fet_r_on", "fet_r_off", "string_max",
                "mtj_ra_spread", "mtj_tmr_spread"}
ADC_KEYS = {f.name for f in dataclasses.fields(ADCConfig)} - {"v_min", "v_max"}
DAC_KEYS = {f.name for f in dataclasses.fields(DACConfig)}
MAPPING_KEYS = {"weight_bits", "negative"}
OPTIONAL_SECTIONS = ("dac", "mapping", "compensation", "cells")
"""Sections a point's configuration holds only when the spec gives them (so that the points of
specs without them keep their keys)."""
MAX_POINTS = 10_000
"""Most runs (points × seeds) :func:`parse_spec` accepts unless told otherwise (``--yes``)."""
MAX_RUNS = 1_000_000
"""Most runs (points × seeds) of one spec even with ``--yes``: split larger studies."""
LIMITS = {("network", "epochs"): 10_000, ("network", "surrogate_epochs"): 10_000,
          ("compensation", "epochs"): 10_000, ("dataset", "side"): 1024,
          ("network", "batch_size"): 1_000_000, ("compensation", "refresh_steps"): 1_000_000}
"""Upper bounds of integer fields whose value sets a run's time or memory (a typo of 1e9
epochs would otherwise run for ever)."""


SECTIONS = {"title": None, "dataset": DATASET_KEYS, "network": NETWORK_KEYS, "device": DEVICE_KEYS,
            "wires": WIRE_KEYS, "circuit": CIRCUIT_KEYS, "adc": ADC_KEYS, "dac": DAC_KEYS, "mapping": MAPPING_KEYS,
            "compensation": COMPENSATION_KEYS, "cells": CELL_KEYS,
            "sweep": None}


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the swept values and the configuration they give."""

    index: int
    """Position in the sweep."""
    values: dict
    """Swept values by ``section.key`` (partitions as ``h_partitions``/``v_partitions``)."""
    config: dict
    """The whole configuration of this point (plain data, as in the spec)."""
    partitions: tuple[Partition, ...]
    """Partitions of each layer."""
    model_sha256: str = ""
    """SHA-256 of the model file the network is read from (``[network] onnx``), empty when the
    network is trained by circuitsim: a model replaced at the same path is another point."""

    @property
    def key(self) -> str:
        """Stable identifier of the point's configuration (and of its model file's content)."""
        identity = {"config": self.config, "partitions": [dataclasses.astuple(p) for p in self.partitions]}
        if self.model_sha256:  # only then: the keys of points without a model file stay as they were
            identity["model_sha256"] = self.model_sha256
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep specification."""

    base: dict
    """Configuration sections (dataset, network, device, wires, circuit, adc) as plain data."""
    grid: dict
    """Swept fields (``section.key``) and their values."""
    partitions: tuple
    """Partition entries (``{"h": [...], "v": [...]}`` or ``{"auto": n}``)."""
    text: str
    """The spec as written (kept with the results)."""
    title: str = ""
    """Free-form title."""
    seeds: int | None = None
    """Device-statistics seeds per point (``[sweep] seeds = N``): a Monte Carlo over
    ``device.seed = seed, seed + 1, ..., seed + N - 1``; None: one run per point."""
    compensations: tuple = ()
    """``[sweep] compensation`` entries (:mod:`circuitsim.study.compensation_spec`): one point per
    entry, its fields over ``[compensation]``'s; empty: none."""

    def configs(self):
        """Yield ``(swept values, configuration)`` for every combination of the grid."""
        for combo in itertools.product(*self.grid.values(), *([self.compensations] if self.compensations else [])):
            config = json.loads(json.dumps(self.base))
            swept = dict(zip(self.grid, combo))
            if self.compensations:  # the last factor: one [sweep] compensation entry
                swept |= {f"compensation.{k}": v for k, v in combo[-1].items()}
            for name, value in swept.items():
                section, key = name.split(".")
                config[section][key] = value
            yield swept, config

    @property
    def n_points(self) -> int:
        """Number of points (grid combinations times partition entries)."""
        return math.prod(len(v) for v in self.grid.values()) * len(self.partitions) * max(1, len(self.compensations))

    def points(self) -> list[Point]:
        """Every point: the grid's product times the partition entries."""
        points = []
        for swept, config in self.configs():
            model = model_sha256(config)
            for entry in self.partitions:
                parts = _partitions(entry, config)
                values = dict(swept)
                values["h_partitions"] = format_partitions(p.h for p in parts)
                values["v_partitions"] = format_partitions(p.v for p in parts)
                points.append(Point(len(points), values, config, parts, model))
        return seed_points(points, self.seeds) if self.seeds else points


def seed_points(points: list[Point], seeds: int) -> list[Point]:
    """Each point once per device seed (``values["seed"]``, ``config["device"]["seed"]``);
    the copies keep their point's index, and their keys differ by the seed."""
    out = []
    for point in points:
        first = int(point.config["device"].get("seed", 0))
        for seed in range(first, first + seeds):
            config = json.loads(json.dumps(point.config))
            config["device"]["seed"] = seed
            out.append(Point(point.index, {**point.values, "seed": seed}, config, point.partitions,
                             point.model_sha256))
    return out


def build_network_config(config: dict) -> MLPConfig | RandomNetworkConfig:
    """The :class:`MLPConfig` of a point's configuration (a
    :class:`~circuitsim.network.random_weights.RandomNetworkConfig` for ``weights = "random"``);
    for a spiking network, that of its weights (activation ReLU unless given)."""
    net = dict(config["network"])
    if net.pop("kind", None) == "snn":
        net = {"activation": "relu", **{k: v for k, v in net.items() if k not in SPIKING_KEYS}}
    for key in ("layers", "gains"):
        if net.get(key) is not None:
            net[key] = tuple(net[key])
    return RandomNetworkConfig(**net) if net.get("weights") == "random" else MLPConfig(**net)


def build_circuit_config(config: dict) -> CircuitConfig:
    """The :class:`CircuitConfig` of a point's configuration."""
    dev = dict(config["device"])
    stats = {k: dev.pop(k) for k in list(dev) if k in STATISTICS_FIELDS or k == "statistics"}
    device = device_preset(dev.pop("preset")) if "preset" in dev else None
    if device is not None and dev:
        device = dataclasses.replace(device, **dev, name=f"{device.name}*")
    elif device is None:
        device = Device(**dev)
    if stats:  # device statistics: a named preset and/or fields on top of the device's own
        base = statistics_preset(stats.pop("statistics")) if "statistics" in stats else device.statistics
        device = dataclasses.replace(device, statistics=dataclasses.replace(base, **stats))
    wires_cfg = dict(config["wires"])
    wires = wire_preset(wires_cfg.pop("preset")) if "preset" in wires_cfg else Wires()
    wires = dataclasses.replace(wires, **wires_cfg)
    circuit = dict(config["circuit"])
    for key in ("gains", "amp_gains"):
        if circuit.get(key) is not None:
            circuit[key] = tuple(circuit[key])
    return CircuitConfig(device=device, wires=wires, adc=build_adc_config(config), dac=DACConfig(**config.get("dac", {})),
                         **config.get("mapping", {}), cells=build_cells(config), **circuit)


def build_adc_config(config: dict) -> ADCConfig | None:
    """The ADC of a point: ``[adc]`` absent or ``kind = "none"`` means no ADC; otherwise the
    kind's typical non-idealities (:meth:`ADCConfig.preset`) with the given fields on top."""
    adc = dict(config.get("adc", {}))
    kind = adc.pop("kind", "sar" if adc else "none")
    if kind == "none":
        return None
    if kind not in KINDS:
        raise ConfigError(f"unknown ADC kind {kind!r}; choose one of none, {', '.join(KINDS)}")
    return ADCConfig.preset(kind, bits=adc.pop("bits", 8), v_min=-1.0, v_max=1.0, **adc)


def slice_count(config: dict) -> int:
    """Slice columns per output of a configuration (``[mapping] weight_bits`` on its device's levels; 1 without)."""
    bits = config.get("mapping", {}).get("weight_bits")
    return 1 if bits is None else weight_slices(bits, build_circuit_config(config).device.levels)


def _partitions(entry: dict, config: dict) -> tuple[Partition, ...]:
    columns = dict(slices=slice_count(config), reference=config.get("mapping", {}).get("negative") == "offset")
    if network_kind(config["network"]) in LAYER_KINDS:
        return layer_partitions(entry, config, **columns)
    layers = config["network"].get("layers", MLPConfig().layers)
    bias = config["network"].get("bias", True)
    if "auto" in entry:
        return tuple(auto_partition(layers, int(entry["auto"]), bias=bias, **columns))
    return tuple(Partition(h, v) for h, v in zip(entry["h"], entry["v"]))


def _check_architecture(config: dict, entries) -> None:
    """Refuse (one line) a point's impossible design: sliced weights on a random-conductance
    network's own cells, more slices than its tiles' columns (``{auto = N}``), an ADC shared by
    more columns than its widest tile has, resistance-sum strings the point cannot have."""
    circuit = build_circuit_config(config)
    circuit.check_own_cells(network_kind(config["network"]) == "random")
    shapes = (crossbar_shapes(layer_skeleton(config)) if network_kind(config["network"]) in LAYER_KINDS
              else mlp_shapes(config["network"]))
    for entry in entries:
        if entry != {"h": None, "v": None}:
            check_columns_per_adc(circuit, shapes, _partitions(entry, config))
    if circuit.topology == "resistance-sum":
        whole = (Partition(),) * len(shapes)
        check_resistance_sum(config, circuit.string_max,
                             [(e, whole if e == {"h": None, "v": None} else _partitions(e, config)) for e in entries])


def _check_limits(config: dict) -> None:
    for (section, key), limit in LIMITS.items():
        value = config.get(section, {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise ConfigError(f"{section}.{key} = {value} is more than {limit}; give a smaller value")


def _check_keys(where: str, table: Any, allowed: set) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in [{where}]; allowed: {', '.join(sorted(allowed))}")


def parse_spec(text: str, max_points: int | None = None) -> SweepSpec:
    """Parse and validate a spec given as TOML text (refused above ``max_points`` points)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the spec is not valid TOML: {exc}") from None
    _check_keys("spec", data, set(SECTIONS))
    base = {}
    for section in (name for name in SECTIONS if name not in ("title", "sweep")):
        table = data.get(section, {})
        _check_keys(section, table, SECTIONS[section])
        check_types(section, table)
        if section not in OPTIONAL_SECTIONS or section in data:  # not given: the points of before
            base[section] = dict(table)
    if base["dataset"].get("name", "mnist") not in DATASETS:
        raise ConfigError(f"unknown dataset {base['dataset']['name']!r}; choose one of {', '.join(DATASETS)}")
    if not set(base["device"]) - set(STATISTICS_FIELDS) - {"statistics"}:  # no cell given: the default one
        base["device"] = {"preset": "sot-mram-amin2022", **base["device"]}
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise ConfigError("[sweep] must be a table")
    sweep = dict(sweep)
    partitions = sweep.pop("partitions", [{"h": None, "v": None}])
    if not isinstance(partitions, list) or not partitions:
        raise ConfigError("sweep.partitions needs a non-empty list of entries such as {h = [1, 1], v = [1, 1]}; "
                          "leave it out for one tile per layer")
    seeds = sweep.pop("seeds", None)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ConfigError(f"[sweep] seeds must be a positive integer (device realizations per point), got {seeds!r}")
    compensations = ()
    if "compensation" in sweep:
        compensations = check_compensation_entries(sweep.pop("compensation"), check_types)
    grid = {}
    for name, values in sweep.items():
        section, _, key = name.partition(".")
        if section not in SECTIONS or SECTIONS[section] is None or key not in SECTIONS[section]:
            raise ConfigError(f"unknown sweep key {name!r}; sweep a field as \"section.key\", e.g. \"wires.r_row\"")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep key {name!r} needs a non-empty list of values")
        for value in values:
            check_types(section, {key: value})
        grid[name] = values
    if compensations or any(name.startswith("compensation.") for name in grid):
        base.setdefault("compensation", {})
    for section in ("dac", "mapping", "cells"):
        if any(name.startswith(f"{section}.") for name in grid):
            base.setdefault(section, {})
    spec = SweepSpec(base, grid, tuple(partitions), text, str(data.get("title", "")), seeds, compensations)
    runs = spec.n_points * (seeds or 1)
    if runs > MAX_RUNS:
        raise ConfigError(f"the spec has {runs} runs (points × seeds), more than {MAX_RUNS} even with --yes; "
                          "sweep fewer values or seeds, or split the study into several specs")
    if max_points is not None and runs > max_points:
        raise ConfigError(f"the spec has {runs} {'runs (points × seeds)' if seeds else 'points'} "
                          f"(more than {max_points}); pass --yes to run them all, or sweep fewer values")
    # build every point's configuration now, so that a bad value fails before anything runs
    for _, config in spec.configs():
        _check_limits(config)
        check_network_section(config["network"])
        if network_kind(config["network"]) in LAYER_KINDS:
            check_layer_network(config, spec.partitions)
            _check_architecture(config, spec.partitions)
            continue
        if network_kind(config["network"]) == "snn":
            check_spiking(config)
        try:
            build_network_config(config)
            build_circuit_config(config)  # checks the circuit fields
        except TypeError as exc:  # a missing or misspelt field reaching a constructor
            raise ConfigError(f"incomplete configuration: {exc}") from None
        for entry in spec.partitions:
            check_partition_entry(entry, mlp_shapes(config["network"]))
        _check_architecture(config, spec.partitions)
    check_used([config for _, config in spec.configs()])
    check_compensation_used([config for _, config in spec.configs()], network_kind)
    if spec.partitions == ({"h": None, "v": None},):
        n = crossbar_count(base)
        spec = dataclasses.replace(spec, partitions=({"h": [1] * n, "v": [1] * n},))
    return spec


def load_spec(path: str | Path, max_points: int | None = None, smoke: bool = False) -> SweepSpec:
    """Read and validate a spec file (refused above ``max_points`` points); with ``smoke``, its
    quick run that keeps its structure (:func:`circuitsim.study.smoke.smoke_text`)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"spec file {path} does not exist")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read spec file {path}: {exc}") from None
    if smoke:
        from .smoke import smoke_text

        text = smoke_text(text)
    return parse_spec(text, max_points)
