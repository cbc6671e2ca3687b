"""Topologies of a crossbar layer: how its weights become tiles and how the tiles combine.

A topology is a builder: given one crossbar layer's weights (already divided by its weight
scale, so in [-1, 1]), its bias row, its partition and the circuit, it returns the layer's
:class:`Block` s (one per tile: rows, outputs, effective weights, energy matrix, read-noise
law) and the whole layer's effective weights. Everything downstream (ADCs, read noise,
energy, the network around the layer) is the same for every topology
(:mod:`circuitsim.network.mapped`).

- ``"canonical"`` (:func:`canonical_layer`): every tile is the canonical tile of the design
  notes, realized with the device statistics per tile and characterized exactly (``T``, cached
  by content); its effective weights are ``(T+ - T-) / (v_read (g_max - g_min))`` (with a
  charge readout ``T`` is in V/V and scaled by ``c_int / t_int``), so ideal wires give the
  weights back. The partial sums of horizontal partitions are added. With the offset scheme
  (``circuit.negative = "offset"``) a tile's columns are single cells, the last its reference,
  whose reading (converted on its own) every other column's loses (:meth:`Block.subtract_reference`):
  the effective weights are ``(T_j - T_ref) / (v_read (g_max - g_min))`` per slice column.
- ``"resistance-sum"`` (:func:`resistance_sum_layer`): Jung et al.'s MRAM strings
  (:mod:`circuitsim.tile.resistance_sum`). Every output of a horizontal partition is one string
  of cells in series (at most ``circuit.string_max``, bias row included), each cell two FET–MTJ
  pairs holding a weight of ±1; an activation ``h`` of 0 or 1 drives the cell's input
  ``x = 2 h - 1``. The string's resistance reading is exactly affine in ``x``
  (:func:`~circuitsim.tile.resistance_sum.string_affine`), so a tile is its effective weights
  and an offset; the digital periphery turns the ±1 sum into the 0/1 one, ``S = (MAC + sum w) / 2``
  with the stored (nominal) weights ``w``. Device statistics: ``circuit.mtj_ra_spread`` and
  ``circuit.mtj_tmr_spread`` per MTJ; wire: ``circuit.wires.r_col`` per cell, which the
  readout's reference (a nominal string with its wire) cancels in the sums but not in the energy.
  The MTJs, the strings solved as circuits and the 0/1 input checks are in
  :mod:`circuitsim.network.resistance_sum`.
- ``"imac-sim"`` (:func:`imac_sim_layer`): IMAC-Sim's layer. Every tile ends in its own
  difference amplifiers and the horizontal pieces meet at the neuron input through equal
  tie resistors into an input that draws no current, so the neuron input is exactly the mean
  (``"average"``) of the tiles' amplifier outputs; vertical pieces are independent. A tile's
  map ``A`` (amplifier output volts per input-line volt) comes from one factorization
  (:func:`~circuitsim.tile.layer_circuit.layer_transfer`), cached by content; the effective
  weights are ``v_read · A^T / h`` (neuron-input volts per unit activation). The neuron's gain
  is fixed once per layer so that the *ideal* layer (no wire resistance; one tile, or the
  same partitions with ``circuit.neuron_reference = "partitioned"``) has the trained
  pre-activation scale: ``gain = g · s / α`` with ``α = <W_ideal, W> / <W, W>``.

Public API
----------
Block, LayerTiles, TOPOLOGIES, augment, build_layer, combine_slices, imac_amp_gains, layer_cells,
resistance_sum_layer
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..devices import Wires
from ..errors import ConfigError
from ..periphery.adc import ADC
from ..tile.extract import Characterization
from ..tile.layer_circuit import LayerCircuit, layer_admittance, layer_transfer
from ..tile.noise_law import NoiseLaw
from ..tile.read_noise import ReadNoise
from ..tile.resistance_sum import check_binary, string_affine
from ..tile.tile_cache import TileCache
from ..tile.topology import TopologyConfig, partition_slices
from .circuit_config import CircuitConfig
from .mapping import LayerMapping, Partition, cell_mapping, map_layer, map_offset_layer, map_sliced_layer
from .nonlinear_layers import ExactLayer, exact_layer
from .nonlinear_tiles import ExactTile, exact_tile
from .realization import realize_layer, realize_tile, realized_tile
from .resistance_sum import mtj_resistances, string_cell


def augment(h: np.ndarray, bias: bool) -> np.ndarray:
    """Rows ``h`` with a column of ones (the bias row's input) when the layer has a bias row."""
    return np.hstack([h, np.ones((len(h), 1))]) if bias else h


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
    conductances: np.ndarray | None = None
    """The tile's cells as realized (device statistics drawn, drifted): what was characterized,
    ``rows × 2 outs`` siemens (the whole-circuit deck is written from these)."""
    drift_scale: float = 1.0
    """Global drift compensation factor applied to the tile's outputs (1: none)."""
    tile: tuple[int, int] = (0, 0)
    """``(a, c)``: the tile's horizontal and vertical partition in its layer."""
    offset: np.ndarray | None = None
    """Constant part of the tile's normalized sums, ``(outs,)``, added before its ADC (a
    resistance-sum string's), or None."""
    energy_per_read: float = 0.0
    """Energy of one evaluation that the quadratic form leaves out (a resistance-sum string's
    read current), joules."""
    exact: ExactTile | ExactLayer | None = None
    """A tile of nonlinear cells: its exact solve (:mod:`~circuitsim.network.nonlinear_tiles`, imac-sim's
    pieces :mod:`~circuitsim.network.nonlinear_layers`),
    which its sums and energy come from; ``weights`` and ``energy_matrix`` are then those of
    the cells linear at the read voltage. None: the tile is linear."""
    reference: np.ndarray | None = None
    """The offset scheme: the normalized reading of the tile's reference column per input,
    ``(rows,)`` (its columns read ``weights + reference``), or None: differential pairs."""

    @property
    def n_columns(self) -> int:
        """Columns the tile's ADCs convert: its outputs, and the reference column when it has one."""
        return int(self.outs.stop - self.outs.start) + int(self.reference is not None)

    def partial_sums(self, v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Normalized partial sums of rows ``v`` (this tile's inputs), before noise and ADC (solved exactly
        when the tile has nonlinear cells and no other ``weights`` are given; the reference column's last)."""
        if weights is None and self.exact is not None:
            part = self.exact.sums(v)
        elif weights is None and self.reference is not None:
            part = np.asarray(v @ np.hstack([self.weights + self.reference[:, None], self.reference[:, None]]))
        else:
            part = np.asarray(v @ (self.weights if weights is None else weights))
        return part if self.offset is None else part + self.offset

    def subtract_reference(self, readings: np.ndarray) -> np.ndarray:
        """The tile's sums from its (converted) :meth:`partial_sums`: the reference column's subtracted."""
        return readings if self.reference is None else readings[:, :-1] - readings[:, -1:]


@dataclass(frozen=True, eq=False)
class LayerTiles:
    """What a topology builds for one crossbar layer."""

    blocks: tuple[Block, ...]
    """Its tiles."""
    effective: np.ndarray
    """Effective weights of the whole layer, ``rows × n_out`` (the bias row last)."""
    gain: float | None = None
    """The gain after the tiles that the topology sets (imac-sim's neurons), or None: the layer's."""
    factors: np.ndarray | None = None
    """Sliced weights or the offset scheme: the shift-add factor of each slice; ``effective`` and
    the blocks' outputs are then slice columns (``o · S + k``), else None."""

    def combined(self) -> np.ndarray:
        """Effective weights per layer output (the slices shift-added), ``rows × n_out``."""
        return self.effective if self.factors is None else combine_slices(self.effective, self.factors)


def combine_slices(columns: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The shift-add of slice columns ``o · S + k`` (last axis) into outputs ``o``: ``Σ_k factors[k] · column``."""
    n = len(factors)
    return np.asarray(columns.reshape(columns.shape[:-1] + (columns.shape[-1] // n, n)) @ factors)


def layer_cells(weights: np.ndarray, bias: np.ndarray | None, cells: np.ndarray | None, circuit: CircuitConfig,
                partition: Partition, topology: TopologyConfig | None = None) -> LayerMapping:
    """The layer's cells cut into tiles: its own ``cells`` when it has them, else ``weights``
    (in [-1, 1]) mapped onto pairs with the topology's conventions."""
    rounding = "nearest" if topology is None else topology.rounding
    if cells is not None:
        return cell_mapping(cells, partition, rounding)
    if topology is None:
        return map_layer(weights, bias, circuit.device, partition)
    return map_layer(weights, bias, circuit.device, partition, rounding=topology.rounding,
                     zero_weight=topology.zero_weight)


def _energy_matrix(result: Characterization, circuit: CircuitConfig) -> np.ndarray:
    """Energy of one evaluation as a quadratic form of the input voltages."""
    if not circuit.charge_mode and result.input_admittance is not None:
        return circuit.t_read * np.asarray(result.input_admittance)
    return np.asarray(result.metadata["energy_matrix_J"])


def canonical_layer(index: int, weights: np.ndarray, bias: np.ndarray | None, cells: np.ndarray | None,
                    partition: Partition, circuit: CircuitConfig, cache: TileCache, progress: Any = None) -> LayerTiles:
    """Crossbar layer ``index`` on canonical tiles (module notes); ``progress`` (a tqdm bar,
    optional) advances by one per tile."""
    device = circuit.device
    scale = 1.0 / (device.g_max - device.g_min)
    if circuit.charge_mode:  # T in V/V: V_out = Q / c_int = I t_int / c_int
        scale *= circuit.c_int / circuit.t_int
    factors = None
    circuit.check_own_cells(cells is not None)
    if circuit.negative == "offset":
        mapping, factors = map_offset_layer(weights, bias, device, partition, circuit.weight_bits)
    elif circuit.weight_bits is not None:
        mapping, factors = map_sliced_layer(weights, bias, device, partition, circuit.weight_bits)
    else:
        mapping = layer_cells(weights, bias, cells, circuit, partition)
    effective = np.zeros((mapping.conductances.shape[0], mapping.n_columns))
    blocks = []
    realized = {(a, c): realized_tile(mapping.tile_conductances(a, c), circuit, index, (a, c))
                for a in range(len(mapping.row_slices)) for c in range(len(mapping.out_slices))}
    cache.prefetch([tile for _, tile in realized.values()], circuit)  # the layer's tiles together
    for a, rows in enumerate(mapping.row_slices):
        for c, outs in enumerate(mapping.out_slices):
            real = realize_tile(mapping.tile_conductances(a, c), circuit, cache, index, (a, c), realized[a, c])
            if progress is not None:
                progress.update()
            T = real.characterization.T * real.scale
            reference = None if mapping.reference is None else T[-1] * scale  # the reference column, last
            effective[rows, outs] = ((T[0::2] - T[1::2]).T if reference is None else T[:-1].T - T[-1][:, None]) * scale
            exact = (exact_tile(real.conductances, circuit, real.scale, f"crossbar layer {index + 1} tile ({a}, {c})")
                     if circuit.nonlinear else None)
            blocks.append(Block(rows, outs, effective[rows, outs], _energy_matrix(real.characterization, circuit),
                                read_noise=real.read_noise, conductances=real.conductances,
                                drift_scale=real.scale, tile=(a, c), exact=exact, reference=reference))
    return LayerTiles(tuple(blocks), effective, factors=factors)


def imac_amp_gains(circuit: CircuitConfig, n_layers: int) -> tuple[float, ...]:
    """Amplifier gains per crossbar layer: ``circuit.amp_gains``, or IMAC-Sim's 30, ..., 30, 10."""
    if circuit.amp_gains is None:
        return (30.0,) * (n_layers - 1) + (10.0,)
    if len(circuit.amp_gains) != n_layers:
        raise ConfigError(f"circuit.amp_gains needs {n_layers} values (one per crossbar layer), "
                          f"got {len(circuit.amp_gains)}")
    return tuple(float(g) for g in circuit.amp_gains)


def _circuit_key(layer: LayerCircuit) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([layer.topology.to_dict(), layer.r_row, layer.r_col, layer.g_pos.shape],
                        sort_keys=True).encode())
    for g in (layer.g_pos, layer.g_neg):
        h.update(np.ascontiguousarray(g, dtype="<f8").tobytes())
    return h.hexdigest()


def _characterize(layer: LayerCircuit, cache: TileCache) -> Characterization:
    """``A`` (as ``T``) and ``Y`` of a one-piece layer circuit, from the cache when there."""
    key = _circuit_key(layer)
    n_in, n_out = layer.g_pos.shape

    def compute() -> Characterization:
        start = time.perf_counter()
        a = layer_transfer(layer)
        return Characterization(a, {"engine": "native", "topology": layer.topology.name, "content_hash": key,
                                    "seconds": time.perf_counter() - start}, layer_admittance(layer))

    def verify(entry: Characterization) -> str | None:
        if not isinstance(entry.metadata, dict) or entry.metadata.get("content_hash") != key:
            return "its content hash is not this layer circuit's"
        if np.shape(entry.T) != (n_out, n_in) or not np.all(np.isfinite(entry.T)):
            return f"its map has shape {np.shape(entry.T)} or non-finite values, expected {(n_out, n_in)}"
        return None

    return cache.lookup(f"{key}-layer", compute, verify)


def _piece(g: np.ndarray, rows: slice, outs: slice, topology: TopologyConfig, wires: Wires) -> LayerCircuit:
    tile = g[rows, 2 * outs.start:2 * outs.stop]
    return LayerCircuit(tile[:, 0::2], tile[:, 1::2], (slice(0, tile.shape[0]),), (slice(0, tile.shape[1] // 2),),
                        topology, wires.r_row, wires.r_col)


_Piece = tuple[tuple[int, int], slice, slice, LayerCircuit, Characterization]


def _pieces(g: np.ndarray, mapping: LayerMapping, topology: TopologyConfig, wires: Wires,
            cache: TileCache) -> list[_Piece]:
    """Every partition tile of a mapped layer's cells ``g``: ``((a, c), rows, outs, its
    one-piece layer circuit, its characterization)``."""
    pieces = []
    for a, rows in enumerate(mapping.row_slices):
        for c, outs in enumerate(mapping.out_slices):
            piece = _piece(g, rows, outs, topology, wires)
            pieces.append(((a, c), rows, outs, piece, _characterize(piece, cache)))
    return pieces


def _effective(pieces: list[_Piece], shape: tuple[int, int], share: float, v_read: float) -> np.ndarray:
    """Effective weights (neuron-input volts per unit activation) of a layer's pieces."""
    effective = np.zeros(shape)
    for _, rows, outs, _, result in pieces:
        effective[rows, outs] = v_read * share * result.T.T
    return effective


def _drift_scales(programmed: np.ndarray, drifted: np.ndarray, mapping: LayerMapping) -> list[float]:
    """Global drift compensation per vertical partition of an imac-sim layer: ``α_c =
    Σ_ij |W_prog,ij| / Σ_ij |W_t,ij|`` over its rows ``i`` and outputs ``j``, the reference
    reads of one row at 1 at a time through the wires.

    One all-ones read (aihwkit's ``GlobalDriftCompensation``, the canonical tiles'
    :func:`~.realization.drift_compensation`) does not serve here: an imac-sim output is a
    difference amplifier's, and a binary layer's column sums of ``G+ − G−`` nearly cancel, so
    the ratio of two near-zero sums follows the wires rather than the drift. The pieces of a
    vertical partition meet in analog at its neurons, so the factor acts there, one per
    partition rather than one per tile.
    """
    scales = []
    for outs in mapping.out_slices:
        now = float(np.abs(drifted[:, outs]).sum())
        scales.append(float(np.abs(programmed[:, outs]).sum()) / now if now > 0 else 1.0)
    return scales


def imac_sim_layer(index: int, weights: np.ndarray, bias: np.ndarray | None, cells: np.ndarray | None,
                   partition: Partition, circuit: CircuitConfig, cache: TileCache, gain: float,
                   amp_gain: float) -> LayerTiles:
    """Crossbar layer ``index`` as IMAC-Sim's partitioned layer circuit (module notes); ``gain``
    is the layer's gain times its weight scale, ``amp_gain`` its difference amplifiers'.

    Device statistics draw the whole layer's cells at once
    (:func:`~.realization.realize_layer`); read noise is every piece's first-order law of
    its amplifier outputs (:meth:`~circuitsim.tile.read_noise.ReadNoise.of_layer`), and global
    drift compensation one factor per vertical partition (:func:`_drift_scales`).
    """
    if circuit.engine != "native":
        raise ConfigError("circuit.topology = imac-sim extracts its exact linear layer maps with the native "
                          "engine; use engine = \"native\" (ngspice checks it in circuitsim layer and validate)")
    stats = circuit.device.statistics
    topology = TopologyConfig.imac_sim(amp_gain, circuit.opamp_gain)
    mapping = layer_cells(weights, bias, cells, circuit, partition, topology)
    g = mapping.conductances  # the design's targets set the neuron gains; the realized cells compute
    programmed, realized = realize_layer(g, circuit.device, index)
    n_out = weights.shape[1]
    share = 1.0 / len(mapping.row_slices) if topology.combining == "average" else 1.0
    pieces = _pieces(realized, mapping, topology, circuit.wires, cache)
    effective = _effective(pieces, (g.shape[0], n_out), share, circuit.v_read)
    scales = [1.0] * len(mapping.out_slices)
    if stats.drifts and stats.drift_compensation == "global" and realized is not programmed:
        reference = _effective(_pieces(programmed, mapping, topology, circuit.wires, cache), effective.shape, share,
                               circuit.v_read)
        scales = _drift_scales(reference, effective, mapping)
        for outs, alpha in zip(mapping.out_slices, scales):
            effective[:, outs] *= alpha
    blocks = []
    for (a, c), rows, outs, piece, result in pieces:
        noise = None
        if stats.read_noise > 0:
            law = ReadNoise.of_layer(piece, stats.read_noise).law()
            noise = law.scaled((circuit.v_read * share * scales[c]) ** 2, np.float32)  # per unit activation
        cells = realized[rows, 2 * outs.start:2 * outs.stop]
        exact = exact_layer(piece, cells, circuit, share * scales[c], f"crossbar layer {index + 1} tile ({a}, {c})")
        blocks.append(Block(rows, outs, effective[rows, outs], _energy_matrix(result, circuit), read_noise=noise,
                            conductances=cells, drift_scale=scales[c], tile=(a, c), exact=exact))
    if circuit.neuron_reference == "partitioned":
        ideal = _effective(_pieces(g, mapping, topology, Wires(), cache), effective.shape, share, circuit.v_read)
    else:
        whole = _piece(g, slice(0, g.shape[0]), slice(0, n_out), topology, Wires())
        ideal = circuit.v_read * _characterize(whole, cache).T.T
    target = np.vstack([weights, bias[None, :]]) if bias is not None else weights
    alpha = float(np.sum(ideal * target) / max(np.sum(target * target), 1e-300))
    if not alpha > 0:
        raise ConfigError(f"crossbar layer {index + 1}: the ideal imac-sim layer does not follow its weights "
                          f"(scale {alpha:g})")
    return LayerTiles(tuple(blocks), effective, gain / alpha)


def resistance_sum_layer(index: int, weights: np.ndarray, bias: np.ndarray | None, cells: np.ndarray | None,
                         partition: Partition, circuit: CircuitConfig) -> LayerTiles:
    """Crossbar layer ``index`` on resistance-sum strings (module notes). Its weights and bias
    (divided by the weight scale) must be ±1 and its strings at most ``circuit.string_max``."""
    what = f"crossbar layer {index + 1}"
    if cells is not None:
        raise ConfigError(f"{what} brings its own cells; the resistance-sum topology stores binary weights only")
    target = np.vstack([weights, bias[None, :]]) if bias is not None else np.asarray(weights)
    check_binary(f"{what} weight", target, fix="train with binary weights (weights = \"binary\") or "
                 "binarize them (sign), biases included")
    n_rows, n_out = target.shape
    row_slices, out_slices = (partition_slices(n, p) for n, p in ((n_rows, partition.h), (n_out, partition.v)))
    longest = max(s.stop - s.start for s in row_slices)
    if longest > circuit.string_max:
        raise ConfigError(f"{what}: strings of {longest} cells ({n_rows} rows in {partition.h} partitions) are "
                          f"longer than the readout's range of {circuit.string_max}; use at least "
                          f"{-(-n_rows // circuit.string_max)} horizontal partitions")
    cell = string_cell(circuit)
    effective = np.zeros((n_rows, n_out))
    blocks = []
    for a, rows in enumerate(row_slices):
        for c, outs in enumerate(out_slices):
            w = target[rows, outs]
            r_a, r_b = mtj_resistances(w, circuit, index, (a, c))
            wx, ox = string_affine(r_a, r_b, cell, circuit.string_max)
            effective[rows, outs] = wx
            offset = 0.5 * (ox - wx.sum(0) + w.sum(0))  # S = (MAC + sum w) / 2 for x = 2 h - 1
            mean = 0.5 * (cell.cell_resistance(r_a, r_b, 1.0) + cell.cell_resistance(r_a, r_b, -1.0)).sum(0)
            energy = float(circuit.t_read * circuit.v_read ** 2 * np.sum(1.0 / mean))
            size = rows.stop - rows.start
            mtjs = np.empty((size, 2 * w.shape[1]))
            mtjs[:, 0::2], mtjs[:, 1::2] = 1.0 / r_a, 1.0 / r_b
            blocks.append(Block(rows, outs, wx, np.zeros((size, size)), conductances=mtjs, tile=(a, c),
                                offset=offset, energy_per_read=energy))
    return LayerTiles(tuple(blocks), effective)


TOPOLOGIES = ("canonical", "imac-sim", "resistance-sum")
"""Layer topologies a network can be mapped in (``circuit.topology``)."""


def build_layer(index: int, n_layers: int, weights: np.ndarray, bias: np.ndarray | None, cells: np.ndarray | None,
                partition: Partition, circuit: CircuitConfig, cache: TileCache, gain: float,
                progress: Any = None) -> LayerTiles:
    """Crossbar layer ``index`` (of ``n_layers``) in ``circuit.topology``: the one dispatch."""
    if circuit.topology == "imac-sim":
        amp_gain = imac_amp_gains(circuit, n_layers)[index]
        tiles = imac_sim_layer(index, weights, bias, cells, partition, circuit, cache, gain, amp_gain)
        if progress is not None:
            progress.update(len(tiles.blocks))
        return tiles
    if circuit.topology == "canonical":
        return canonical_layer(index, weights, bias, cells, partition, circuit, cache, progress)
    if circuit.topology == "resistance-sum":
        tiles = resistance_sum_layer(index, weights, bias, cells, partition, circuit)
        if progress is not None:
            progress.update(len(tiles.blocks))
        return tiles
    raise ConfigError(f"circuit.topology must be one of {', '.join(TOPOLOGIES)}, got {circuit.topology!r}")
