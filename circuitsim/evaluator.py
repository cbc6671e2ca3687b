"""Run a network through its crossbar tiles: the numpy DNN evaluator.

Each layer is mapped onto differential conductance pairs (:mod:`circuitsim.mapping`),
cut into tiles, and every tile's transfer matrix ``T`` is extracted (and cached by
content hash). With linear cells and virtual-ground readout a tile is exactly
``I = T @ V``, so the differential currents of a layer, with partial sums of the
horizontal partitions added, equal ``h @ W_eff`` where ``W_eff`` is assembled from
the tiles' ``T+ - T-`` divided by ``v_read · (g_max - g_min)`` (the normalization
that makes ``W_eff = W`` for ideal wires). The differential amplifier's gain and
the neuron then act as in the digital network, so the evaluator is an
:class:`~circuitsim.mlp.MLP` whose weights are the effective ones.

Public API
----------
CircuitConfig, TileCache, MappedNetwork, map_network
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .crossbar import Tile
from .devices import Device, Wires
from .errors import ConfigError
from .extract import ENGINES, Characterization, characterize
from .mapping import Partition, map_layer
from .mlp import MLP


@dataclass(frozen=True)
class CircuitConfig:
    """How a network becomes circuits."""

    device: Device = field(default_factory=lambda: Device(8.49e3, 25.46e3, 2, "sot-mram-amin2022"))
    """Memory cell (conductance range and levels)."""
    wires: Wires = field(default_factory=Wires)
    """Interconnect parasitics per segment."""
    v_read: float = 0.8
    """Input voltage for an activation of 1 (the supply, Vdd), volts."""
    engine: str = "native"
    """Engine extracting each tile's ``T``: ``"native"`` or ``"ngspice"``."""
    backend: str = "shared"
    """ngspice backend when ``engine == "ngspice"``."""
    gains: tuple[float, ...] | None = None
    """Differential-amplifier gains per layer (dimensionless, applied to the normalized
    sums); ``None`` uses the gains the network was trained with."""

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"circuit.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not (0 < self.v_read < float("inf")):
            raise ConfigError(f"circuit.v_read must be > 0 volts, got {self.v_read!r}")


class TileCache:
    """Transfer matrices by tile content hash, in memory and optionally on disk.

    Parameters
    ----------
    folder : str or Path, optional
        Where ``<hash>-<engine>.npz`` files are kept; memory only when None.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else None
        self._memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def transfer(self, tile: Tile, engine: str = "native", backend: str = "shared") -> np.ndarray:
        """Return ``T`` of ``tile``, characterizing it only when not cached."""
        key = f"{tile.content_hash()}-{engine}"
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        path = self.folder / f"{key}.npz" if self.folder else None
        if path is not None and path.is_file():
            T = Characterization.load(path).T
            self.hits += 1
        else:
            result = characterize(tile, engine=engine, backend=backend)
            T = result.T
            self.misses += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                result.save(path)
        self._memory[key] = T
        return T


@dataclass(frozen=True, eq=False)
class MappedNetwork:
    """A network as its crossbars compute it."""

    network: MLP
    """Effective network: weights from the tiles' transfer matrices."""
    partitions: tuple[Partition, ...]
    """Partitions of each layer."""
    n_tiles: int
    """Number of tiles over all layers."""
    seconds: float
    """Time spent mapping and characterizing (cache lookups included)."""

    def accuracy(self, x, y) -> float:
        """Fraction of images classified correctly."""
        return self.network.accuracy(x, y)

    def predict(self, x) -> np.ndarray:
        """Predicted classes."""
        return self.network.predict(x)


def map_network(net: MLP, partitions, circuit: CircuitConfig, cache: TileCache | None = None) -> MappedNetwork:
    """Map ``net`` onto partitioned tiles and build its effective network.

    Parameters
    ----------
    net : MLP
        The trained network (weights in [-1, 1]).
    partitions : sequence of Partition
        One per layer.
    circuit : CircuitConfig
        Device, wires, read voltage and engine.
    cache : TileCache, optional
        Where tiles' transfer matrices are kept.
    """
    start = time.perf_counter()
    cache = cache or TileCache()
    partitions = tuple(partitions)
    if len(partitions) != len(net.weights):
        raise ConfigError(f"give one partition per layer: {len(net.weights)} layers, {len(partitions)} partitions")
    device, wires = circuit.device, circuit.wires
    scale = 1.0 / (device.g_max - device.g_min)
    weights, biases, n_tiles = [], [], 0
    for w, b, part in zip(net.weights, net.biases, partitions):
        layer = map_layer(w, b if net.config.bias else None, device, part)
        effective = np.zeros((layer.conductances.shape[0], w.shape[1]))
        for a, rows in enumerate(layer.row_slices):
            for c, outs in enumerate(layer.out_slices):
                tile = Tile(layer.tile_conductances(a, c), **dataclasses.asdict(wires))
                T = cache.transfer(tile, circuit.engine, circuit.backend)
                effective[rows, outs] = (T[0::2] - T[1::2]).T * scale
                n_tiles += 1
        weights.append(effective[: w.shape[0]])
        biases.append(effective[w.shape[0]] if net.config.bias else np.zeros(w.shape[1]))
    config = net.config
    if circuit.gains is not None:
        if len(circuit.gains) != len(net.weights):
            raise ConfigError(f"circuit.gains needs {len(net.weights)} values, got {len(circuit.gains)}")
        config = dataclasses.replace(config, gains=tuple(circuit.gains))
    return MappedNetwork(MLP(weights, biases, config), partitions, n_tiles, time.perf_counter() - start)
