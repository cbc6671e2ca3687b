"""Run a layer network (:class:`~circuitsim.network.network.Network`) through its crossbar tiles.

Every Dense and Conv2d layer is one crossbar layer: its weight matrix (for a convolution
the ``(c_in·k_h·k_w) × c_out`` im2col matrix) and bias row are mapped onto differential
pairs and cut into partitioned tiles exactly like an MLP layer
(:func:`~circuitsim.network.evaluator.map_tiles`); each tile is characterized once and,
for a convolution, serves every output position (weight-stationary). The other layers
(pooling, flatten, batch-norm, activations, residual sums) run digitally in float64.

**Weight scaling.** A crossbar holds weights in [-1, 1] (``g_min`` … ``g_max`` per side of
a pair). Each crossbar layer's weights and bias are divided by their largest magnitude
``s`` (``s = max |W|, |b|``), so that they fill the device's range; the product is
multiplied by ``s`` again in the amplifier after the tile, i.e. the layer's amplifier
gain is ``gain · s``. Binary and ternary networks have ``s = 1``.

**Counting.** Inputs drive rows at ``x · v_read`` (the bias row at ``v_read``). A
convolution computes ``H_out · W_out`` positions per image, each one evaluation of its
tiles: the crossbar energy adds ``v @ M @ v`` over positions and the ADC conversions are
``positions × outputs`` per tile. With an ADC each tile output is converted before the
partial sums of the horizontal partitions are added, the range calibrated per tile on a
calibration batch (:func:`~circuitsim.network.evaluator.adc_range`). Read noise is drawn per
tile and evaluation (every output position of a convolution sees its own reads), before the
tile's ADC (:mod:`circuitsim.tile.read_noise`).

Public API
----------
CrossbarLayer, MappedLayers, map_layers, crossbar_shapes, auto_partition_layers, weight_scale
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..periphery.adc import ADC
from .circuit_config import CircuitConfig
from .evaluator import Block, adc_range, energy_summary, map_tiles
from .layers import Conv2d, Dense
from .mapping import Partition
from .network import Network
from .realization import read_rng
from ..tile.tile_cache import TileCache


def weight_scale(layer: Dense | Conv2d) -> float:
    """Largest weight or bias magnitude of a crossbar layer (1 for an all-zero layer)."""
    w, b = layer.matrix()
    peak = max(float(np.abs(w).max(initial=0.0)), float(np.abs(b).max(initial=0.0)) if b is not None else 0.0)
    return peak or 1.0


def crossbar_shapes(net: Network) -> list[tuple[int, int, bool]]:
    """``(n_in, n_out, bias)`` of every crossbar layer (rows = ``n_in + bias``)."""
    shapes = []
    for k in net.crossbar_layers:
        w, b = net.layers[k].matrix()
        shapes.append((w.shape[0], w.shape[1], b is not None))
    return shapes


def auto_partition_layers(net: Network, max_rows: int, max_cols: int | None = None) -> list[Partition]:
    """Smallest partitions keeping every tile within ``max_rows × max_cols`` (rows count the
    bias row, columns count outputs), one per crossbar layer."""
    max_cols = max_cols or max_rows
    if max_rows < 1 or max_cols < 1:
        raise ConfigError(f"maximum array size must be >= 1, got {max_rows} x {max_cols}")
    return [Partition(math.ceil((n_in + int(bias)) / max_rows), math.ceil(n_out / max_cols))
            for n_in, n_out, bias in crossbar_shapes(net)]


@dataclass(frozen=True, eq=False)
class CrossbarLayer:
    """One Dense or Conv2d layer on its tiles."""

    index: int
    """Position of the layer in the network."""
    blocks: tuple[Block, ...]
    """Its tiles."""
    scale: float
    """Weight scale ``s`` (weights on the tiles are ``W / s``; the amplifier multiplies by ``s``)."""
    bias: bool
    """Whether the last row is the bias row."""
    n_out: int
    """Outputs (columns of differential pairs)."""
    positions: int
    """Evaluations per image (output positions of a convolution, 1 for a dense layer)."""
    read_rng: np.random.Generator | None = None
    """The generator of the layer's read noise (each tile's law is on its block), or None."""

    def sums(self, rows: np.ndarray, use_adc: bool = True, energy: bool = True) -> tuple[np.ndarray, float]:
        """``rows @ W + b`` as the tiles compute it, and the crossbar energy (J per volt² of
        ``v_read``, summed over rows; 0 unless ``energy``)."""
        n_in = rows.shape[1]
        sums = np.zeros((len(rows), self.n_out))
        joules = 0.0
        for block in self.blocks:
            start, stop = block.rows.start, block.rows.stop
            has_bias = self.bias and stop == n_in + 1  # the bias row (input 1) is the layer's last row
            v = rows[:, start:n_in] if has_bias else rows[:, start:stop]
            w = block.weights
            part = v @ w[:-1] + w[-1] if has_bias else v @ w
            if block.read_noise is not None:
                block.read_noise.add_noise(part, v, self.read_rng, bias=has_bias)
            if use_adc and block.adc is not None:
                part = block.adc.quantize(part)
            sums[:, block.outs] += part
            if energy:
                joules += _quadratic(v, block.energy_matrix, has_bias)
        return self.scale * sums, joules


def _quadratic(v: np.ndarray, m: np.ndarray, has_bias: bool) -> float:
    """``sum_n u_n @ m @ u_n`` with ``u_n = [v_n, 1]`` when ``has_bias``, else ``u_n = v_n``."""
    if not has_bias:
        return float(np.sum((v @ m) * v))
    k = v.shape[1]
    cross = m[:k, k] + m[k, :k]
    return float(np.sum((v @ m[:k, :k]) * v) + np.sum(v @ cross) + len(v) * m[k, k])


@dataclass(frozen=True, eq=False)
class MappedLayers:
    """A layer network as its crossbars compute it."""

    network: Network
    """The network mapped (with the circuit's gains, when it sets them)."""
    crossbars: tuple[CrossbarLayer, ...]
    """Its crossbar layers, in order."""
    partitions: tuple[Partition, ...]
    """Partitions of each crossbar layer."""
    circuit: CircuitConfig
    """The circuit configuration."""
    seconds: float
    """Time spent mapping and characterizing (cache lookups included)."""

    @property
    def n_tiles(self) -> int:
        """Number of tiles over all crossbar layers."""
        return sum(len(c.blocks) for c in self.crossbars)

    @property
    def conversions_per_inference(self) -> int:
        """ADC conversions per image (positions × outputs of every tile), 0 without ADCs."""
        if self.circuit.adc is None:
            return 0
        return sum(c.positions * (b.outs.stop - b.outs.start) for c in self.crossbars for b in c.blocks)

    def forward(self, x, use_adc: bool = True, batch: int = 500, energy: bool = True) -> tuple[np.ndarray, float]:
        """Outputs for images ``x`` and the mean crossbar energy per image (J; 0 unless ``energy``)."""
        x = self.network.fit_input(x)
        by_index = {c.index: c for c in self.crossbars}
        energy_sum = [0.0]

        def mac(k, rows):
            sums, joules = by_index[k].sums(rows, use_adc, energy)
            energy_sum[0] += joules
            return sums

        outs = [self.network.forward(x[i:i + batch], mac) for i in range(0, len(x), batch)]
        return np.concatenate(outs), energy_sum[0] * self.circuit.v_read ** 2 / max(len(x), 1)

    def predict(self, x) -> np.ndarray:
        """Predicted classes (through the ADCs when configured)."""
        return np.argmax(self.forward(x, energy=False)[0].reshape(len(x), -1), axis=-1)

    def accuracy(self, x, y) -> float:
        """Fraction of images classified correctly (through the ADCs when configured)."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def analog_accuracy(self, x, y) -> float:
        """Accuracy without the ADCs (the tiles' analog sums)."""
        out = self.forward(x, use_adc=False, energy=False)[0]
        return float(np.mean(np.argmax(out.reshape(len(x), -1), axis=-1) == np.asarray(y)))

    def energy_per_inference(self, x) -> dict:
        """Crossbar, ADC and total energy per image (J), averaged over ``x``."""
        return energy_summary(self.forward(x, use_adc=False)[1], self.circuit, self.conversions_per_inference)

    def effective_network(self) -> Network:
        """The network with each crossbar layer's weights as its tiles compute them (no ADC)."""
        changes = {}
        for c in self.crossbars:
            layer = self.network.layers[c.index]
            eff = np.zeros((c.blocks[-1].rows.stop, c.n_out))
            for b in c.blocks:
                eff[b.rows, b.outs] = b.weights
            eff *= c.scale
            n_in = eff.shape[0] - int(c.bias)
            bias = eff[n_in] if c.bias else None
            if isinstance(layer, Dense):
                changes[c.index] = layer.replace(weight=eff[:n_in], bias=bias)
            else:
                changes[c.index] = layer.replace(weight=eff[:n_in].T.reshape(layer.weight.shape), bias=bias)
        return self.network.replace_layers(changes)


def map_layers(net: Network, partitions, circuit: CircuitConfig, cache: TileCache | None = None,
               x_calibration=None) -> MappedLayers:
    """Map every crossbar layer of ``net`` onto partitioned tiles.

    Parameters
    ----------
    net : Network
        The network (any real weights; see the weight scaling in the module notes).
    partitions : sequence of Partition
        One per crossbar layer (Dense or Conv2d), in order.
    circuit : CircuitConfig
        Device, wires, read voltage, engine, gains (one per crossbar layer) and ADC.
    cache : TileCache, optional
        Where tiles' transfer matrices are kept.
    x_calibration : array_like, optional
        Images that set each tile's ADC range (required with an ADC).
    """
    start = time.perf_counter()
    cache = cache or TileCache()
    partitions, indices = tuple(partitions), net.crossbar_layers
    if len(partitions) != len(indices):
        raise ConfigError(f"give one partition per crossbar layer: {len(indices)} Dense/Conv2d layers, "
                          f"{len(partitions)} partitions")
    if circuit.gains is not None:
        if len(circuit.gains) != len(indices):
            raise ConfigError(f"circuit.gains needs {len(indices)} values (one per crossbar layer), "
                              f"got {len(circuit.gains)}")
        net = net.replace_layers({k: net.layers[k].replace(gain=float(g)) for k, g in zip(indices, circuit.gains)})
    positions = _positions(net)
    crossbars = []
    for n, (k, part) in enumerate(zip(indices, partitions)):
        layer = net.layers[k]
        w, b = layer.matrix()
        s = weight_scale(layer)
        blocks, _ = map_tiles(n, w / s, None if b is None else b / s, part, circuit, cache)
        stats = circuit.device.statistics
        rng = read_rng(stats.seed, n) if stats.read_noise > 0 else None
        crossbars.append(CrossbarLayer(k, blocks, s, b is not None, w.shape[1], positions[k], rng))
    if circuit.adc is not None:
        if x_calibration is None:
            raise ConfigError("an ADC needs calibration images (x_calibration) to set its range")
        crossbars = _calibrated(net, crossbars, circuit, x_calibration)
    return MappedLayers(net, tuple(crossbars), partitions, circuit, time.perf_counter() - start)


def _positions(net: Network) -> dict[int, int]:
    """Evaluations per image of every crossbar layer (from one blank image)."""
    positions = {}

    def mac(k, rows):
        positions[k] = len(rows)
        return np.zeros((len(rows), net.layers[k].matrix()[0].shape[1]))

    net.forward(np.zeros((1,) + net.input_shape), mac)
    return positions


def _calibrated(net: Network, crossbars: list[CrossbarLayer], circuit: CircuitConfig, x) -> list[CrossbarLayer]:
    """Give every block an ADC whose range is set by its partial sums on the batch ``x``."""
    config, by_index, done = circuit.adc, {c.index: c for c in crossbars}, {}
    counter = [0]

    def mac(k, rows):
        layer = by_index[k]
        rows_aug = np.hstack([rows, np.ones((len(rows), 1))]) if layer.bias else rows  # a calibration batch
        blocks = []
        for block in layer.blocks:
            v_min, v_max = adc_range(rows_aug[:, block.rows] @ block.weights, config.bits)
            adc_config = config.replace(v_min=v_min, v_max=v_max, seed=config.seed + counter[0])
            blocks.append(dataclasses.replace(block, adc=ADC(adc_config, block.outs.stop - block.outs.start)))
            counter[0] += 1
        done[k] = dataclasses.replace(layer, blocks=tuple(blocks))
        return layer.sums(rows, use_adc=False, energy=False)[0]

    net.forward(x, mac)
    return [done[c.index] for c in crossbars]
