"""Random-conductance networks: cells drawn once from the programming distribution, pruned.

A network with ``weights = "random"`` is not programmed to trained values. Every cell of every
layer (the mapping's layout: ``n_in + 1`` rows with the bias row last, ``2 n_out`` columns,
``G+`` of output ``k`` in column ``2k`` and ``G-`` in ``2k + 1``) is set once and holds what the
set pulse's stochasticity gives it, a lognormal around the set state:

    G = g_max · exp(spread · N(0, 1))

drawn from ``SeedSequence(seed, spawn_key=(layer,))`` — fixed for the network's life and
reproducible by seed, whatever the partitions. A pair gives the signed random weight
``w = (G+ - G-) / (g_max - g_min)`` (the evaluator's normalization). What is learned is only
which pairs stay connected (Li et al., "Pruning random resistive memory for optimizing analogue
AI": pruning resets or sets *differential cell pairs*), see :mod:`circuitsim.network.mask_training`:

- ``training = "none"``: the network as drawn; with ``keep < 1`` a random subset of pairs
  (untrained scores);
- ``training = "mask"``: edge-popup scores, the top ``keep`` fraction of each layer's pairs
  connected, the conductances never change;
- ``training = "full"``: the same network with its weights trained from the draw (clipped to
  [-1, 1]) and programmed like any trained network (the mapping's law and the device's levels);
  with ``keep < 1`` only the largest-magnitude pairs stay connected (the baseline "fully
  trained network of the same size").

A pruned pair is left unprogrammed: both cells open (``pruned_cells = "open"``: no resistor in
either engine's circuit, conductance 0) or both at ``g_min`` (``"gmin"``); either way its weight
is exactly 0, and the tiles are characterized with those cells (fewer connected cells: less IR
drop, less current). The ``[device]`` statistics then act on the tile's cells as on any others
(open cells stay open). The gain of layer ``k`` is ``c / (rms_w · sqrt(keep · rows))`` with
``rms_w`` the RMS of the layer's drawn weights and ``c`` the MLP's (4 sigmoid, 2 ReLU).

Public API
----------
RandomNetworkConfig, TRAININGS, PRUNED_CELLS, RANDOM_KEYS, draw_conductances, pair_weights, CellNetwork,
layer_mapping, load_or_build
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..configs import check_fields
from ..devices import Device
from ..errors import ConfigError
from ..files import check_array_file
from .mapping import LayerMapping, Partition, cell_mapping, map_layer
from .mlp import MLP, MLPConfig
from .network_cache import cache_key, cached_network

TRAININGS = ("none", "mask", "full")
"""What a random network learns: nothing, its connectivity mask, or its weights."""
PRUNED_CELLS = ("open", "gmin")
"""What a pruned pair's two cells are: open (no device connected) or at ``g_min``."""
_VERSION = 1  # bump when drawing or training changes, to invalidate cached networks


def _number(name, value, low, high, low_open=True):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not ((low < value) if low_open else (low <= value)) or not value <= high:
        raise ConfigError(f"network.{name} must be a number in {'(' if low_open else '['}{low}, {high}], "
                          f"got {value!r}")


@dataclass(frozen=True)
class RandomNetworkConfig:
    """A random-conductance network and how its mask (or weights) are learned."""

    layers: tuple[int, ...] = (400, 120, 84, 10)
    """Widths from the input (pixels) to the output (classes)."""
    activation: str = "sigmoid"
    """Hidden-layer activation, ``"sigmoid"`` or ``"relu"`` (output: softmax)."""
    weights: str = "random"
    """Always ``"random"`` (the spec's switch to this kind of network)."""
    spread: float = 0.5
    """σ of ``ln G`` around the set state ``g_max`` (dimensionless): the programming
    stochasticity of one unverified set pulse."""
    training: str = "none"
    """``"none"``, ``"mask"`` or ``"full"`` (module docstring)."""
    keep: float = 1.0
    """Fraction of each layer's pairs left connected, in (0, 1]."""
    pruned_cells: str = "open"
    """``"open"`` or ``"gmin"``: the cells of a pruned pair."""
    epochs: int = 10
    """Passes over the training set (``"mask"`` and ``"full"``)."""
    batch_size: int = 100
    """Images per Adam step."""
    learning_rate: float = 0.01
    """Initial Adam step of the scores (mask) or weights (full); cosine decay to 1 %."""
    seed: int = 0
    """Seed of the conductance draw, the score initialisation and the batch shuffling."""
    bias: bool = True
    """Whether each layer has a bias row (a row of random pairs driven at ``v_read``)."""
    gains: tuple[float, ...] | None = field(default=None)
    """Gain per layer before the activation; ``None``: ``c / (rms_w · sqrt(keep · rows))``."""

    def __post_init__(self):
        MLPConfig(self.layers, self.activation, "float", self.epochs, self.batch_size,
                  self.learning_rate, self.seed, self.bias, self.gains)  # the MLP's own checks
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if self.weights != "random":
            raise ConfigError(f"a random network has weights = 'random', got {self.weights!r}")
        _number("spread", self.spread, 0.0, 5.0, low_open=False)
        _number("keep", self.keep, 0.0, 1.0)
        for name, allowed in (("training", TRAININGS), ("pruned_cells", PRUNED_CELLS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"network.{name} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")
        if self.gains is not None:
            object.__setattr__(self, "gains", tuple(float(g) for g in self.gains))

    def to_dict(self) -> dict:
        """The configuration as JSON-compatible plain data."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "RandomNetworkConfig":
        """Build a configuration from :meth:`to_dict` output (unknown keys are an error)."""
        check_fields(cls, data)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


RANDOM_KEYS = {"spread", "training", "keep", "pruned_cells"}
"""``[network]`` keys of a random network beyond the MLP's."""


def draw_conductances(config: RandomNetworkConfig, device: Device) -> list[np.ndarray]:
    """Each layer's cells as the set pulses leave them, siemens (``rows × 2 n_out``)."""
    out = []
    for k, (n_in, n_out) in enumerate(zip(config.layers[:-1], config.layers[1:])):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(k,)))
        rows = n_in + int(config.bias)
        out.append(device.g_max * np.exp(config.spread * rng.standard_normal((rows, 2 * n_out))))
    return out


def pair_weights(g: np.ndarray, device: Device) -> np.ndarray:
    """Signed weights ``(G+ - G-) / (g_max - g_min)`` of a layer's cell pairs (``rows × n_out``)."""
    return (g[:, 0::2] - g[:, 1::2]) / (device.g_max - device.g_min)


class CellNetwork(MLP):
    """A network defined by its cells: conductances of every layer and which pairs are connected.

    ``weights``/``biases`` (the :class:`MLP` view, used by the digital path and the evaluator's
    effective network) are ``(G+ - G-) / (g_max - g_min)`` of the connected pairs, 0 elsewhere.

    Parameters
    ----------
    conductances : list of ndarray
        Per layer, ``rows × 2 n_out`` cell conductances as programmed (pruned cells included), S.
    masks : list of ndarray
        Per layer, ``rows × n_out`` booleans: the connected pairs.
    config : RandomNetworkConfig
        How the network was drawn and trained.
    device : Device
        The cell whose ``g_min``/``g_max`` normalize the weights.
    gains : sequence of float
        Gain per layer.
    """

    def __init__(self, conductances, masks, config: RandomNetworkConfig, device: Device, gains):
        self.conductances = [np.asarray(g, dtype=float) for g in conductances]
        self.masks = [np.asarray(m, dtype=bool) for m in masks]
        self.random = config
        self.device = device
        mlp = MLPConfig(config.layers, config.activation, "float", config.epochs, config.batch_size,
                        config.learning_rate, config.seed, config.bias, tuple(gains))
        w = [pair_weights(g, device) * m for g, m in zip(self.conductances, self.masks)]
        super().__init__([a[:a.shape[0] - int(config.bias)] for a in w],
                         [a[-1] if config.bias else np.zeros(a.shape[1]) for a in w], mlp)

    def layer_mapping(self, k: int, partition: Partition = Partition()) -> LayerMapping:
        """Layer ``k``'s cells cut into tiles (the mapping's partition law)."""
        return cell_mapping(self.conductances[k], partition)

    def connected_fraction(self) -> float:
        """Fraction of all pairs (weights and biases) left connected."""
        return sum(int(m.sum()) for m in self.masks) / sum(m.size for m in self.masks)

    def summary(self) -> dict:
        """Result columns of this network."""
        return {"weights": "random", "training": self.random.training, "keep": self.random.keep,
                "pruned_cells": self.random.pruned_cells, "connected": self.connected_fraction()}

    def save(self, path, cache_key: str = "") -> None:
        """Write conductances, masks and configuration to an ``.npz`` file."""
        arrays = {f"G{k}": g for k, g in enumerate(self.conductances)}
        arrays |= {f"M{k}": m for k, m in enumerate(self.masks)}
        meta = {"config": self.random.to_dict(), "gains": list(self.config.gains),
                "device": [self.device.r_low, self.device.r_high, self.device.levels, self.device.name]}
        np.savez(path, meta=np.array(json.dumps(meta)), cache_key=np.array(cache_key), **arrays)

    @classmethod
    def load(cls, path) -> "CellNetwork":
        """Read a network written by :meth:`save`."""
        try:
            check_array_file(path)  # a header declaring 10¹² values is damage, not a request
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                config = RandomNetworkConfig.from_dict(meta["config"])
                n = len(config.layers) - 1
                return cls([f[f"G{k}"] for k in range(n)], [f[f"M{k}"] for k in range(n)], config,
                           Device(*meta["device"]), meta["gains"])
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RecursionError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot read random network file {path}: {exc}") from None


def layer_mapping(net: MLP, k: int, partition: Partition, device: Device, **options) -> LayerMapping:
    """Layer ``k`` of any MLP on its cells: a :class:`CellNetwork`'s own cells, else
    :func:`~circuitsim.network.mapping.map_layer` of its weights (``options`` passed on)."""
    if isinstance(net, CellNetwork):
        if options:
            raise ConfigError(f"a random network has its own cells; {sorted(options)[0]} does not apply")
        return net.layer_mapping(k, partition)
    bias = net.biases[k] if net.config.bias else None
    return map_layer(net.weights[k], bias, device, partition, **options)


def default_gains(config: RandomNetworkConfig, drawn, device: Device) -> tuple[float, ...]:
    """``c / (rms_w · sqrt(keep · rows))`` per layer (module docstring)."""
    if config.gains is not None:
        return config.gains
    c = 4.0 if config.activation == "sigmoid" else 2.0
    gains = []
    for g in drawn:
        w = pair_weights(g, device)
        rms = float(np.sqrt(np.mean(w * w))) or 1.0
        gains.append(c / (rms * math.sqrt(max(config.keep * w.shape[0], 1.0))))
    return tuple(gains)


def build(dataset, config: RandomNetworkConfig, device: Device, progress: bool = False) -> CellNetwork:
    """Draw the cells, learn what ``config.training`` says and program the result."""
    from .mask_training import train_cells

    drawn = draw_conductances(config, device)
    gains = default_gains(config, drawn, device)
    weights, masks = train_cells(dataset, config, [pair_weights(g, device) for g in drawn], gains, progress)
    pruned = 0.0 if config.pruned_cells == "open" else device.g_min
    cells = []
    for k, (g, w, m) in enumerate(zip(drawn, weights, masks)):
        if config.training == "full":  # trained weights, programmed by the mapping's law
            g = map_layer(w[:w.shape[0] - int(config.bias)], w[-1] if config.bias else None, device).conductances
        off = np.repeat(~m, 2, axis=1)
        cells.append(np.where(off, pruned, g))
    return CellNetwork(cells, masks, config, device, gains)


def load_or_build(dataset, config: RandomNetworkConfig, device: Device, cache_dir) -> CellNetwork:
    """:func:`build`, cached in ``cache_dir`` by dataset, configuration and cell range."""
    key = cache_key(f"random-v{_VERSION}|{dataset.name}|{device.r_low!r}|{device.r_high!r}|{device.levels}|",
                    config.to_dict(), (dataset.x_train, dataset.y_train))
    return cached_network(cache_dir, "random", dataset.name, key,
                          lambda: build(dataset, config, device, progress=sys.stderr.isatty()),
                          CellNetwork.load, lambda net, path, k: net.save(path, cache_key=k))
