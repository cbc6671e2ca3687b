"""Any network on its crossbars: ``map_network`` and the ``MappedNetwork`` it returns.

One path for every network (:class:`~circuitsim.network.network.Network`: a trained MLP via
:meth:`~circuitsim.network.network.Network.from_mlp`, a random-conductance network with its
own cells, a CNN, an ONNX model) under every topology (:mod:`circuitsim.network.topologies`).
Every Dense and Conv2d layer is one crossbar layer: its weight matrix (for a convolution the
``(c_in·k_h·k_w) × c_out`` im2col matrix) and bias row are divided by the layer's weight scale
``s`` (:func:`~circuitsim.network.layers.weight_scale`), built into tiles by the topology and
characterized once; a convolution's tiles serve every output position (weight-stationary).
The other layers (pooling, flatten, batch-norm, activations, residual sums) run digitally.

**What a crossbar layer computes.** Its rows ``h`` (one per image and output position) drive
the word lines at ``h · v_read`` (the bias row at ``v_read``). Without ADCs its sums are one
product with the layer's effective weights, ``h @ W_eff + b_eff`` (``W_eff`` assembled from the
tiles; equal to ``W / s`` for ideal wires in the canonical topology), times ``s``, then the
layer's gain. With an ADC (:class:`~circuitsim.periphery.adc.ADCConfig`) every tile's partial
sums are converted before the horizontal partitions are added digitally, each tile's ADC its
own instance, its range calibrated on a calibration batch (:mod:`circuitsim.network.adc_calibration`).

**Read noise** (``device.statistics.read_noise``) is drawn per image and evaluation from the
tiles' laws (:mod:`circuitsim.tile.read_noise`): without ADCs from the layer's law (its tiles'
side by side, drawn in passes over the images), with ADCs from each tile's law before its
conversion; one generator per crossbar layer.

**Nonlinear cells** (``circuit.cells``): a tile of nonlinear cells has no ``T``; its partial
sums and supply energy come from an exact solve of the tile for every image and output position
(:mod:`circuitsim.network.nonlinear_tiles`; an imac-sim piece: :mod:`~circuitsim.network.nonlinear_layers`),
the effective weights being those of its cells linear at the read voltage (:meth:`MappedNetwork.linear_at_read`).

**Energy per inference** adds the crossbar's supply energy over a read pulse (``v @ M @ v``
per evaluation, ``M = t_read · Y`` from each tile's input admittance; with a charge readout,
the supply energy of the integration window measured in ngspice), the ADC conversions
(``positions × outputs`` per tile; :mod:`circuitsim.periphery.energy`), the shift-add of every
conversion and the DACs' one-bit conversions (:mod:`circuitsim.periphery.costs`, which also
gives the area, :meth:`MappedNetwork.area`).

Public API
----------
MappedNetwork, map_network, map_layers, CalibrationPass, crossbar_shapes, auto_partition_layers
(its crossbar layers: :mod:`circuitsim.network.crossbar_layer`)
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from ..periphery.costs import ISAAC_COSTS, CostTable
from ..periphery.energy import adc_conversion_time
from ..tile.noise_law import NoiseLaw
from ..tile.tile_cache import TileCache
from .adc_calibration import calibrated
from .circuit_config import CircuitConfig
from .layers import Dense, weight_scale
from .mapping import Partition, auto_partition, weight_slices
from .mlp import MLP
from .network import Network
from .crossbar_layer import CrossbarLayer, energy_summary
from .realization import read_rng
from .resistance_sum import check_binary_images, check_binary_inputs
from .topologies import Block, build_layer


class CalibrationPass(Protocol):
    """How the calibration images run through a network's crossbars when it is not run in one
    forward pass (a :class:`~circuitsim.network.spiking.SpikingConfig`)."""

    def calibration_pass(self, network: Network) -> Callable[[ArrayLike, Callable[[int, np.ndarray], np.ndarray]],
                                                             object]: ...


BATCH = 500
"""Images per pass through a network with convolutions (their receptive fields are large)."""


@dataclass(frozen=True, eq=False)
class MappedNetwork:
    """A network as its crossbars compute it."""

    network: Network
    """The network mapped (gains as the circuit sets them; nominal weights)."""
    crossbars: tuple[CrossbarLayer, ...]
    """Its crossbar layers, in order."""
    partitions: tuple[Partition, ...]
    """Partitions of each crossbar layer."""
    circuit: CircuitConfig
    """The circuit configuration."""
    seconds: float
    """Time spent mapping and characterizing (cache lookups included)."""
    mlp: MLP | None = None
    """The effective network as an :class:`~circuitsim.network.mlp.MLP` (weights from the tiles, no
    ADC, the circuit's gains) when an MLP was mapped, else None."""

    @property
    def n_tiles(self) -> int:
        """Number of tiles over all crossbar layers."""
        return sum(len(c.blocks) for c in self.crossbars)

    @property
    def conversions_per_inference(self) -> int:
        """ADC conversions per image (positions × evaluations × columns of every tile, reference
        columns included), 0 without ADCs."""
        if self.circuit.adc is None:
            return 0
        return sum(c.positions * c.n_cycles * b.n_columns for c in self.crossbars for b in c.blocks)

    def latency(self) -> dict[str, float]:
        """Seconds per image of every crossbar layer and of the whole network (``"latency"``).

        A layer's tiles work in parallel; its evaluations (output positions × input cycles) follow
        one another, each a read pulse (``circuit.t_read``) and, with ADCs, the conversions of
        ``columns_per_adc`` columns one after the other (:func:`~circuitsim.periphery.energy.adc_conversion_time`),
        pipelined with the next read as in ISAAC: ``n · max(t_read, t_adc) + min(t_read, t_adc)``.
        Layers follow one another; digital work between them is not counted.
        """
        adc = self.circuit.adc
        t_adc = adc.columns_per_adc * adc_conversion_time(adc.bits) if adc is not None else 0.0
        t_read = self.circuit.t_read
        out = {}
        for n, c in enumerate(self.crossbars):
            evaluations = c.positions * c.n_cycles
            out[f"latency_layer{n + 1}"] = evaluations * max(t_read, t_adc) + min(t_read, t_adc)
        out["latency"] = sum(out.values())
        return out

    @property
    def exact(self) -> bool:
        """Whether some tiles have nonlinear cells, solved exactly for every image
        (:mod:`circuitsim.network.nonlinear_tiles`)."""
        return any(c.exact for c in self.crossbars)

    def linear_at_read(self) -> "MappedNetwork":
        """The network as a linear simulator predicts it: every nonlinear cell replaced by its
        conductance at the read voltage (the tiles' ``T``; itself when every cell is linear)."""
        if not self.exact:
            return self
        return dataclasses.replace(self, crossbars=tuple(c.linear_at_read() for c in self.crossbars))

    def newton_iterations(self) -> np.ndarray:
        """Newton iterations of every exact tile solve so far (empty without nonlinear cells)."""
        counts = [b.exact.iterations for c in self.crossbars for b in c.blocks if b.exact is not None]
        return np.array([i for its in counts for i in its], dtype=np.int64)

    def reset_dac(self) -> None:
        """Start counting clipped activations anew in every layer's DAC."""
        for c in self.crossbars:
            if c.dac is not None:
                c.dac.reset()

    @property
    def dac_clipped(self) -> float:
        """Fraction of the activations every DAC converted since :meth:`reset_dac` that it clipped (0 without DACs)."""
        counts = [c.dac.counts for c in self.crossbars if c.dac is not None]
        total = sum(n for _, n in counts)
        return sum(k for k, _ in counts) / total if total else 0.0

    def layer_sums(self, n: int, h: np.ndarray, use_adc: bool = True, matrix: np.ndarray | None = None) -> np.ndarray:
        """Crossbar layer ``n``'s normalized sums for its rows ``h`` (:meth:`CrossbarLayer.sums`)."""
        return self.crossbars[n].sums(h, use_adc, matrix)

    def layer_mac(self, k: int, rows: np.ndarray, use_adc: bool = True) -> np.ndarray:
        """Network layer ``k``'s sums for its rows as its tiles compute them (times its weight
        scale; the layer applies its gain): the multiply-accumulate of every evaluation."""
        layer = self._by_index[k]
        sums = layer.sums(rows, use_adc)
        return sums if layer.scale == 1.0 else layer.scale * sums

    def layer_energy(self, k: int, rows: np.ndarray, n_images: int) -> float:
        """Crossbar energy per image (J) of network layer ``k`` reading ``rows`` (at ``rows · v_read``)
        for a batch of ``n_images`` images."""
        return self._by_index[k].energy(rows, self.circuit.v_read, n_images)

    @property
    def _by_index(self) -> dict[int, CrossbarLayer]:
        return {c.index: c for c in self.crossbars}

    def forward(self, x: ArrayLike, use_adc: bool = True, energy: bool = True) -> tuple[np.ndarray, float]:
        """Outputs for images ``x`` and the mean crossbar energy per image (J; 0 unless ``energy``)."""
        images = self.network.fit_input(x)
        check_binary_images(images, self.circuit)
        joules = [0.0]

        def mac(k: int, rows: np.ndarray) -> np.ndarray:
            if energy:
                joules[0] += self.layer_energy(k, rows, len(images))
            return self.layer_mac(k, rows, use_adc)

        batch = BATCH if any(c.positions > 1 for c in self.crossbars) else None
        return self.network.forward(images, mac, batch), joules[0]

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Predicted classes (through the ADCs when configured)."""
        out = self.forward(x, energy=False)[0]
        return np.asarray(np.argmax(out.reshape(len(out), -1), axis=-1))

    def accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        """Fraction of images classified correctly (through the ADCs when configured)."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def analog_accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        """Accuracy without the ADCs (the tiles' analog sums, read noise included)."""
        out = self.forward(x, use_adc=False, energy=False)[0]
        return float(np.mean(np.argmax(out.reshape(len(out), -1), axis=-1) == np.asarray(y)))

    def energy_per_inference(self, x: ArrayLike, costs: CostTable = ISAAC_COSTS) -> dict[str, float]:
        """Energy per image (J) averaged over ``x``: crossbar, ADC, DAC, digital (shift-add) and
        their sum ``energy_per_inference`` (:func:`~circuitsim.network.crossbar_layer.energy_summary`)."""
        dac = sum(c.dac_conversions for c in self.crossbars)
        return energy_summary(self.forward(x, use_adc=False)[1], self.circuit, self.conversions_per_inference,
                              dac, costs)

    def area(self, costs: CostTable = ISAAC_COSTS) -> dict[str, float]:
        """Area (m²) of every crossbar layer (``area_layer1`` …), by part over the network
        (``area_cells``, ``area_adc``, ``area_dac``, ``area_shift_add``) and in total (``area``)."""
        out: dict[str, float] = {}
        parts = dict.fromkeys(("area_cells", "area_adc", "area_dac", "area_shift_add"), 0.0)
        for n, c in enumerate(self.crossbars):
            layer = c.area(self.circuit, costs)
            out[f"area_layer{n + 1}"] = sum(layer.values())
            for key, value in layer.items():
                parts[key] += value
        return {**out, **parts, "area": sum(parts.values())}

    def effective_network(self) -> Network:
        """The network with each crossbar layer's weights as its tiles compute them (no ADC)."""
        changes = {}
        for c in self.crossbars:
            layer = self.network.layers[c.index]
            eff = c.scale * c.weights
            n_in = eff.shape[0] - int(c.bias)
            bias = eff[n_in] if c.bias else None
            if isinstance(layer, Dense):
                changes[c.index] = layer.replace(weight=eff[:n_in], bias=bias, scale=None, cells=None)
            else:
                changes[c.index] = layer.replace(weight=eff[:n_in].T.reshape(layer.weight.shape), bias=bias,
                                                 scale=None)
        return self.network.replace_layers(changes)


def _positions(net: Network) -> dict[int, int]:
    """Evaluations per image of every crossbar layer (from one blank image)."""
    positions: dict[int, int] = {}

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        positions[k] = len(rows)
        return np.zeros((len(rows), net.layers[k].matrix()[0].shape[1]))

    net.forward(np.zeros((1,) + net.input_shape), mac)
    return positions


def crossbar_shapes(net: Network) -> list[tuple[int, int, bool]]:
    """``(n_in, n_out, bias)`` of every crossbar layer (rows = ``n_in + bias``)."""
    shapes = []
    for k in net.crossbar_layers:
        w, b = net.layers[k].matrix()
        shapes.append((w.shape[0], w.shape[1], b is not None))
    return shapes


def auto_partition_layers(net: Network | MLP, max_rows: int, max_cols: int | None = None,
                          slices: int = 1, reference: bool = False) -> list[Partition]:
    """Smallest partitions keeping every tile within ``max_rows × max_cols`` (rows count the
    bias row, columns count outputs, ``slices`` columns each, and a ``reference`` column), one
    per crossbar layer (:func:`~circuitsim.network.mapping.auto_partition`)."""
    net = Network.from_mlp(net) if isinstance(net, MLP) else net
    parts = []
    for n_in, n_out, bias in crossbar_shapes(net):
        parts += auto_partition([n_in, n_out], max_rows, max_cols, bias, slices, reference)
    return parts


def check_columns_per_adc(circuit: CircuitConfig, shapes: Sequence[tuple[int, int, bool]],
                          partitions: Sequence[Partition]) -> None:
    """Refuse (one line) ``[adc] columns_per_adc`` above the columns of the widest tile of a
    mapping (``shapes``: ``(n_in, n_out, bias)`` of every crossbar layer)."""
    if circuit.adc is None or circuit.adc.columns_per_adc == 1:
        return
    slices = weight_slices(circuit.weight_bits, circuit.device.levels) if circuit.weight_bits is not None else 1
    reference = int(circuit.negative == "offset")
    widest = max(math.ceil(n_out / p.v) * slices + reference for (_, n_out, _), p in zip(shapes, partitions))
    if circuit.adc.columns_per_adc > widest:
        raise ConfigError(f"[adc] columns_per_adc = {circuit.adc.columns_per_adc} is more than the widest tile's "
                          f"{widest} columns; set columns_per_adc <= {widest}")


def map_network(net: Network | MLP, partitions: Sequence[Partition], circuit: CircuitConfig,
                cache: TileCache | None = None, x_calibration: ArrayLike | None = None,
                spiking: CalibrationPass | None = None) -> MappedNetwork:
    """Map every crossbar layer of ``net`` onto partitioned tiles of ``circuit.topology``.

    Parameters
    ----------
    net : Network or MLP
        The network (an MLP is taken as :meth:`Network.from_mlp`: its weights in [-1, 1], a
        random-conductance network with its own cells).
    partitions : sequence of Partition
        One per crossbar layer (Dense or Conv2d), in order.
    circuit : CircuitConfig
        Device (and its statistics), wires, read voltage, engine, readout, topology, gains
        (one per crossbar layer) and ADC.
    cache : TileCache, optional
        Where tiles' characterizations are kept (memory only by default).
    x_calibration : array_like, optional
        Images that set each tile's ADC range (required with an ADC).
    spiking : SpikingConfig, optional
        The network runs as a spiking network of this configuration
        (:mod:`circuitsim.network.spiking`): the ADC ranges are set on the rows its crossbars
        read over the time steps (spikes) instead of the non-spiking forward pass.
    """
    start = time.perf_counter()
    cache = cache or TileCache()
    mlp = net if isinstance(net, MLP) else None
    network = Network.from_mlp(net) if isinstance(net, MLP) else net
    parts, indices = tuple(partitions), network.crossbar_layers
    if len(parts) != len(indices):
        raise ConfigError(f"give one partition per crossbar layer: {len(indices)} Dense/Conv2d layers, "
                          f"{len(parts)} partitions")
    if circuit.gains is not None and len(circuit.gains) != len(indices):
        raise ConfigError(f"circuit.gains needs {len(indices)} values (one per crossbar layer), "
                          f"got {len(circuit.gains)}")
    if (circuit.adc is not None or circuit.dac.kind != "none") and x_calibration is None:
        raise ConfigError("an ADC or a DAC needs calibration images (x_calibration) to set its range")
    check_columns_per_adc(circuit, crossbar_shapes(network), parts)
    check_binary_inputs(network, circuit)
    if x_calibration is not None:
        check_binary_images(network.fit_input(x_calibration), circuit)
    positions = _positions(network)
    stats = circuit.device.statistics
    bar = _tile_progress(sum(p.h * p.v for p in parts))
    crossbars: list[CrossbarLayer] = []
    gains: dict[int, float] = {}
    for n, (k, part) in enumerate(zip(indices, parts)):
        layer = network.layers[k]
        w, b = layer.matrix()
        s = weight_scale(layer)
        tiles = build_layer(n, len(indices), w / s, None if b is None else b / s, getattr(layer, "cells", None),
                            part, circuit, cache, layer.gain * s, bar)
        scale = s
        if tiles.gain is not None:  # the topology's neurons take the weight scale in their gain
            gains[k], scale = tiles.gain, 1.0
        law, rng = None, None
        if stats.read_noise > 0:
            law, rng = _layer_read_noise(tiles.blocks, tiles.effective.shape), read_rng(stats.seed, n)
        crossbars.append(CrossbarLayer(k, tiles.blocks, tiles.combined(), scale, b is not None, positions[k], law, rng,
                                       factors=tiles.factors, columns=None if tiles.factors is None else tiles.effective,
                                       v_read=circuit.v_read, v_allowed=circuit.device.v_read_max))
    bar.close()
    if circuit.gains is not None:
        gains = {k: float(g) for k, g in zip(indices, circuit.gains)}
    if gains:
        network = network.replace_layers({k: network.layers[k].replace(gain=g) for k, g in gains.items()})
    if (circuit.adc is not None or circuit.dac.kind != "none") and x_calibration is not None:
        forward = spiking.calibration_pass(network) if spiking is not None else None
        crossbars = calibrated(network, crossbars, circuit.adc, circuit.dac, circuit.v_read, x_calibration, forward)
    effective_mlp = _effective_mlp(mlp, network, crossbars) if mlp is not None else None
    return MappedNetwork(network, tuple(crossbars), parts, circuit, time.perf_counter() - start, effective_mlp)


map_layers = map_network
"""The former name of :func:`map_network` for layer networks."""


def _effective_mlp(mlp: MLP, net: Network, crossbars: list[CrossbarLayer]) -> MLP:
    """The MLP whose weights and biases are the tiles' and whose gains are the mapped network's."""
    weights, biases = [], []
    for c in crossbars:
        n_in = c.weights.shape[0] - int(c.bias)
        weights.append(c.weights[:n_in])
        biases.append(c.weights[n_in] if c.bias else np.zeros(c.n_out))
    gains = tuple(net.layers[c.index].gain for c in crossbars)
    return MLP(weights, biases, dataclasses.replace(mlp.config, gains=gains))


def _layer_read_noise(blocks: tuple[Block, ...], shape: tuple[int, int]) -> NoiseLaw:
    """A layer's read-noise law: its tiles' side by side, as their weights."""
    return NoiseLaw.side_by_side([(b.rows, b.outs, b.read_noise) for b in blocks], shape)


class _NoProgress:
    """The progress bar when none shows (tqdm is imported only for one that does: ~15 ms)."""

    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _tile_progress(total: int) -> Any:
    """A progress bar of tile characterization on a terminal (nothing in logs)."""
    if not sys.stderr.isatty() or total < 2:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc="tiles", unit="tile", leave=False, file=sys.stderr)
