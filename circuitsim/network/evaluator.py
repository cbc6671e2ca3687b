"""Run a network through its crossbar tiles: the numpy DNN evaluator.

Each layer is mapped onto differential conductance pairs (:mod:`circuitsim.network.mapping`),
cut into tiles, and every tile's transfer matrix ``T`` is extracted (and cached by
content hash). With linear cells and virtual-ground readout a tile is exactly
``I = T @ V``, so the differential currents of a layer, with partial sums of the
horizontal partitions added, equal ``h @ W_eff`` where ``W_eff`` is assembled from
the tiles' ``T+ - T-`` divided by ``v_read · (g_max - g_min)`` (the normalization
that makes ``W_eff = W`` for ideal wires). The differential amplifier's gain and
the neuron then act as in the digital network, so without ADCs the evaluator is
an :class:`~circuitsim.network.mlp.MLP` whose weights are the effective ones.

With an ADC (:class:`~circuitsim.periphery.adc.ADCConfig`), every tile output is converted
before the partial sums of the horizontal partitions are added digitally. The
ADC's input is the tile's normalized differential current (1 = one unit weight
at full input); its range is calibrated per tile from the partial sums of a
calibration batch (clipped at the bits' optimal multiple of their RMS, mid-tread
from 2 bits on; see ``adc_range``). Energy per inference adds the crossbar's supply energy
over a read pulse (``t_read · V·Y·V`` from each tile's input admittance; with a
charge readout, the supply energy of the integration window measured in ngspice)
and the ADC conversions (:mod:`circuitsim.periphery.energy`).

Public API
----------
Block, MappedNetwork, map_network, map_tiles, tile_conductances, adc_range, energy_summary
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..periphery.adc import ADC, ADCConfig
from ..periphery.energy import adc_energy
from ..tile.crossbar import Tile
from ..tile.extract import Characterization
from .circuit_config import CircuitConfig
from .mapping import LayerMapping, Partition, map_layer
from .mlp import MLP
from .random_weights import layer_mapping
from .noise_law import NoiseLaw
from .realization import read_rng, realize_conductances, realize_tile
from .tile_cache import TileCache


def _energy_matrix(result: Characterization, circuit: CircuitConfig) -> np.ndarray:
    """Energy of one evaluation as a quadratic form of the input voltages."""
    if circuit.readout == "current":
        return circuit.t_read * result.input_admittance
    return np.asarray(result.metadata["energy_matrix_J"])


@dataclass(frozen=True, eq=False)
class Block:
    """One tile's place in its layer and what it computes."""

    rows: slice
    """Rows of the layer (inputs, then the bias row) the tile holds."""
    outs: slice
    """Outputs of the layer the tile holds."""
    weights: np.ndarray
    """Normalized effective weights, ``rows × outs``."""
    energy_matrix: np.ndarray
    """``M`` (joules per volt²): one evaluation of input voltages ``v`` costs ``v @ M @ v``."""
    adc: ADC | None = None
    """The tile's ADC (one column per output), or None."""
    read_noise: NoiseLaw | None = None
    """Law of the read noise of the normalized sums for normalized inputs, or None."""


def energy_summary(crossbar: float, circuit: CircuitConfig, conversions: int) -> dict:
    """Crossbar, ADC and total energy per image (J) from the crossbar's and the conversions'."""
    adc = 0.0
    if circuit.adc is not None:
        adc = adc_energy(circuit.adc.bits, conversions, circuit.adc_energy)
    return {"crossbar_energy": crossbar, "adc_energy": adc, "energy_per_inference": crossbar + adc}


@dataclass(frozen=True, eq=False)
class MappedNetwork:
    """A network as its crossbars compute it."""

    network: MLP
    """Effective network: weights from the tiles' transfer matrices (no ADC)."""
    layers: tuple[tuple[Block, ...], ...]
    """The tiles of each layer."""
    partitions: tuple[Partition, ...]
    """Partitions of each layer."""
    circuit: CircuitConfig
    """The circuit configuration."""
    seconds: float
    """Time spent mapping and characterizing (cache lookups included)."""
    read_noise: tuple[NoiseLaw, ...] = ()
    """Per layer: the law of its read noise (the tiles' side by side); empty without."""
    read_rngs: tuple[np.random.Generator, ...] = ()
    """Per layer: the generator of its read noise (advances with every image)."""

    @property
    def n_tiles(self) -> int:
        """Number of tiles over all layers."""
        return sum(len(layer) for layer in self.layers)

    @property
    def conversions_per_inference(self) -> int:
        """ADC conversions per image (one per tile output), 0 without ADCs."""
        if self.circuit.adc is None:
            return 0
        return sum(b.outs.stop - b.outs.start for layer in self.layers for b in layer)

    def forward(self, x, use_adc: bool = True, energy: bool = True) -> tuple[np.ndarray, float]:
        """Class scores of images ``x`` and the mean crossbar energy per image (J; 0 unless ``energy``).

        Without ADCs a layer's sums (and its read noise, drawn from the layer's law) are one
        matrix product each; with ADCs every tile's sums and noise are converted before the
        partial sums of the horizontal partitions are added (:meth:`layer_sums`).
        """
        h = np.asarray(x, dtype=float)
        total = 0.0
        for k, layer in enumerate(self.layers):
            sums = self.layer_sums(k, h, use_adc)
            if energy:
                h_aug = np.hstack([h, np.ones((len(h), 1))]) if self.network.config.bias else h
                for block in layer:
                    volts = self.circuit.v_read * h_aug[:, block.rows]
                    total += float(np.einsum("ni,ij,nj->", volts, block.energy_matrix, volts)) / len(h)
            h = self.network.activate(k, sums)
        return h, total

    def layer_sums(self, k: int, h: np.ndarray, use_adc: bool = True, matrix: np.ndarray | None = None) -> np.ndarray:
        """Layer ``k``'s sums for its inputs ``h`` (without the bias input): every tile's partial
        sums of ``matrix`` (default: the effective weights; the bias row last) with its read
        noise, through its ADC (``use_adc``), added over the horizontal partitions."""
        bias = self.network.config.bias
        n = h.shape[1]
        if not (use_adc and self.circuit.adc is not None):
            if matrix is None:
                weights, offset = self.network.weights[k], self.network.biases[k]
            else:
                weights, offset = (matrix[:n], matrix[n]) if bias else (matrix, 0.0)
            if not self.read_noise:
                return h @ weights + offset
            law, sums = self.read_noise[k], np.empty((len(h), weights.shape[1]))
            for part in law.passes(len(h)):  # each pass's inputs are read from memory once
                np.matmul(h[part], weights, out=sums[part])
                sums[part] += offset
                law.add_noise(sums[part], h[part], self.read_rngs[k], bias)
            return sums
        h_aug = np.hstack([h, np.ones((len(h), 1))]) if bias else h
        sums = np.zeros((len(h), self.network.weights[k].shape[1]))
        for block in self.layers[k]:
            v = h_aug[:, block.rows]
            part = v @ (block.weights if matrix is None else matrix[block.rows, block.outs])
            if block.read_noise is not None:
                block.read_noise.add_noise(part, v, self.read_rngs[k])
            sums[:, block.outs] += block.adc.quantize(part)
        return sums

    def predict(self, x) -> np.ndarray:
        """Predicted classes (through the ADCs when configured)."""
        if self.circuit.adc is None and not self.read_noise:
            return self.network.predict(x)
        return np.argmax(self.forward(x, energy=False)[0], axis=-1)

    def accuracy(self, x, y) -> float:
        """Fraction of images classified correctly (through the ADCs when configured)."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def analog_accuracy(self, x, y) -> float:
        """Accuracy without the ADCs (the tiles' analog sums, read noise included)."""
        if not self.read_noise:
            return self.network.accuracy(x, y)
        return float(np.mean(np.argmax(self.forward(x, use_adc=False, energy=False)[0], axis=-1) == np.asarray(y)))

    def energy_per_inference(self, x) -> dict:
        """Crossbar, ADC and total energy per image (J), averaged over ``x``."""
        return energy_summary(self.forward(x, use_adc=False)[1], self.circuit, self.conversions_per_inference)


#: MSE-optimal clipping of a Gaussian signal, in standard deviations, by ADC bits
#: (Banner et al., "Post-training 4-bit quantization", NeurIPS 2019; 1 bit: 2 E|x| / sigma)
CLIP_SIGMAS = {1: 1.6, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.94, 6: 3.29, 7: 3.61, 8: 3.92}


def adc_range(partial_sums: np.ndarray, bits: int) -> tuple[float, float]:
    """Input range for a tile's ADC from calibration partial sums.

    The half-range ``a`` clips at ``CLIP_SIGMAS[bits]`` standard deviations (RMS) of
    the partial sums, or at their largest magnitude when that is smaller (or beyond 8
    bits). One bit is a sign decision over ``±a``; from 2 bits on the range is
    mid-tread and symmetric: codes centred on ``-a, ..., 0, ..., +a`` (the top code
    lies beyond ``+a`` and is reached only by clipping).
    """
    peak = float(np.abs(partial_sums).max(initial=0.0))
    rms = float(np.sqrt(np.mean(np.square(partial_sums)))) if partial_sums.size else 0.0
    half = min(peak, CLIP_SIGMAS[bits] * rms) if bits in CLIP_SIGMAS else peak
    half = half or 1e-12
    if bits == 1:
        return -half, half
    lsb = half / ((1 << (bits - 1)) - 1)
    return -half - 0.5 * lsb, half + 1.5 * lsb


def _calibrated_adcs(layers, net: MLP, config: ADCConfig, x_calibration) -> tuple:
    """Give every block an ADC whose range is set by its partial sums on the batch."""
    h = np.asarray(x_calibration, dtype=float)
    out, index = [], 0
    for k, layer in enumerate(layers):
        h_aug = np.hstack([h, np.ones((len(h), 1))]) if net.config.bias else h
        blocks = []
        for block in layer:
            v_min, v_max = adc_range(h_aug[:, block.rows] @ block.weights, config.bits)
            adc_config = config.replace(v_min=v_min, v_max=v_max, seed=config.seed + index)
            blocks.append(dataclasses.replace(block, adc=ADC(adc_config, block.outs.stop - block.outs.start)))
            index += 1
        out.append(tuple(blocks))
        h = net.activate(k, _layer_sums(layer, h_aug, net.weights[k].shape[1]))
    return tuple(out)


def _layer_sums(layer, h_aug, n_out) -> np.ndarray:
    sums = np.zeros((len(h_aug), n_out))
    for block in layer:
        sums[:, block.outs] += h_aug[:, block.rows] @ block.weights
    return sums


def tile_conductances(mapping: LayerMapping, layer: int, a: int, c: int, circuit: CircuitConfig) -> np.ndarray:
    """The conductances of tile ``(a, c)`` of crossbar layer ``layer``: the one place where a
    tile's conductance matrix is built from its layer's mapping."""
    return mapping.tile_conductances(a, c)


def map_tiles(layer: int, w: np.ndarray, b: np.ndarray | None, partition: Partition, circuit: CircuitConfig,
              cache: TileCache, progress=None, mapping: LayerMapping | None = None) -> tuple[tuple[Block, ...], np.ndarray]:
    """Map one crossbar layer (weights ``w`` in [-1, 1], bias row ``b`` or None) onto tiles.

    Returns the layer's blocks and its normalized effective weights ``rows × n_out``
    (the bias row last), assembled from the tiles' transfer matrices; ``progress`` (a
    tqdm bar, optional) advances by one per tile. ``mapping`` gives the layer's cells
    instead of mapping ``w`` and ``b`` (a random network's own cells).
    """
    device = circuit.device
    scale = 1.0 / (device.g_max - device.g_min)
    if circuit.readout != "current":  # T in V/V: V_out = Q / c_int = I t_int / c_int
        scale *= circuit.c_int / circuit.t_int
    mapping = mapping or map_layer(w, b, device, partition)
    effective = np.zeros((mapping.conductances.shape[0], w.shape[1]))
    blocks = []
    # the layer's realized tiles characterized together (one factorization per tile shape)
    wires = dataclasses.asdict(circuit.wires)
    cache.prefetch([Tile(realize_conductances(tile_conductances(mapping, layer, a, c, circuit), device, layer, (a, c))[1],
                         **wires) for a in range(len(mapping.row_slices)) for c in range(len(mapping.out_slices))], circuit)
    for a, rows in enumerate(mapping.row_slices):
        for c, outs in enumerate(mapping.out_slices):
            # device statistics (circuitsim.network.realization): the realized, characterized tile
            real = realize_tile(tile_conductances(mapping, layer, a, c, circuit), circuit, cache, layer, (a, c))
            if progress is not None:
                progress.update()
            result = real.characterization
            T = result.T * real.scale
            effective[rows, outs] = (T[0::2] - T[1::2]).T * scale
            blocks.append(Block(rows, outs, effective[rows, outs], _energy_matrix(result, circuit),
                                read_noise=real.read_noise))
    return tuple(blocks), effective


def map_network(net: MLP, partitions, circuit: CircuitConfig, cache: TileCache | None = None,
                x_calibration=None) -> MappedNetwork:
    """Map ``net`` onto partitioned tiles and build its effective network.

    Parameters
    ----------
    net : MLP
        The trained network (weights in [-1, 1]).
    partitions : sequence of Partition
        One per layer.
    circuit : CircuitConfig
        Device, wires, read voltage, engine and ADC.
    cache : TileCache, optional
        Where tiles' transfer matrices are kept.
    x_calibration : array_like, optional
        Images that set each tile's ADC range (required with an ADC).
    """
    start = time.perf_counter()
    cache = cache or TileCache()
    partitions = tuple(partitions)
    if len(partitions) != len(net.weights):
        raise ConfigError(f"give one partition per layer: {len(net.weights)} layers, {len(partitions)} partitions")
    weights, biases, layers = [], [], []
    bar = _tile_progress(sum(p.h * p.v for p in partitions))
    for k, (w, b, part) in enumerate(zip(net.weights, net.biases, partitions)):
        blocks, effective = map_tiles(k, w, b if net.config.bias else None, part, circuit, cache, bar,
                                      mapping=layer_mapping(net, k, part, circuit.device))
        layers.append(blocks)
        weights.append(effective[: w.shape[0]])
        biases.append(effective[w.shape[0]] if net.config.bias else np.zeros(w.shape[1]))
    bar.close()
    config = net.config
    if circuit.gains is not None:
        if len(circuit.gains) != len(net.weights):
            raise ConfigError(f"circuit.gains needs {len(net.weights)} values, got {len(circuit.gains)}")
        config = dataclasses.replace(config, gains=tuple(circuit.gains))
    effective_net = MLP(weights, biases, config)
    layers = tuple(layers)
    noise = {}
    if circuit.device.statistics.read_noise > 0:
        noise = {"read_noise": tuple(_layer_read_noise(layer) for layer in layers),
                 "read_rngs": tuple(read_rng(circuit.device.statistics.seed, k) for k in range(len(layers)))}
    if circuit.adc is not None:
        if x_calibration is None:
            raise ConfigError("an ADC needs calibration images (x_calibration) to set its range")
        layers = _calibrated_adcs(layers, effective_net, circuit.adc, x_calibration)
    return MappedNetwork(effective_net, layers, partitions, circuit, time.perf_counter() - start, **noise)


def _layer_read_noise(layer: tuple[Block, ...]) -> NoiseLaw:
    """A layer's read-noise law: its tiles' side by side, as their weights."""
    shape = (max(b.rows.stop for b in layer), max(b.outs.stop for b in layer))
    return NoiseLaw.side_by_side([(b.rows, b.outs, b.read_noise) for b in layer], shape)


def _tile_progress(total: int):
    """A progress bar of tile characterization on a terminal (nothing in logs)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="tiles", unit="tile", leave=False, file=sys.stderr,
                disable=not sys.stderr.isatty() or total < 2)
