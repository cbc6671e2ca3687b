"""A network in a non-canonical layer topology (IMAC-Sim's), as its circuits compute it.

Each layer is mapped with the topology's conventions (weight 0, partition rounding) and
cut into its ``h × v`` partition tiles. In IMAC-Sim's layer every tile ends in its own
difference amplifiers and the horizontal pieces meet at the neuron input through equal
tie resistors into an input that draws no current, so the neuron input is *exactly* the
mean (``"average"``; the sum with ``"sum"``) of the tiles' amplifier outputs, and vertical
pieces are independent (inputs re-driven). A tile's circuit (a
:class:`~circuitsim.tile.layer_circuit.LayerCircuit` of one piece) is linear, and its map
``A`` (amplifier output volts per input-line volt) comes from one factorization
(:func:`~circuitsim.tile.layer_circuit.layer_transfer`); it is cached by content.

The effective network (an :class:`~circuitsim.network.mlp.MLP`) has, per layer, weights
``W_eff = v_read · A^T / h`` assembled from the tiles (the neuron-input voltage per unit
activation) and the bias row's column as biases, so the neuron input is
``s = h_aug @ W_eff`` volts. The neurons are behavioural sigmoids of that voltage,
``sigmoid(gain_k · s)``: ``gain_k`` (1/V) is fixed once per layer so that the *ideal*
layer (no wire resistance, one tile, same cells and amplifier) has the trained network's
pre-activation scale: ``gain_k = g_k / α_k`` where ``g_k`` is the trained gain and
``α_k = <W_ideal, W> / <W, W>`` (weights and bias row). It does not depend on the
partitions or the wires, so the partition sweep measures the circuit, not a re-fit
(``circuit.neuron_reference = "partitioned"`` takes the ideal circuit of the same
partitions instead); ``circuit.gains`` replaces it.

Public API
----------
map_layer_network, imac_amp_gains
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

from ..devices import Wires
from ..errors import ConfigError
from ..tile.extract import Characterization
from ..tile.layer_circuit import LayerCircuit, layer_admittance, layer_transfer
from ..tile.topology import TopologyConfig
from .circuit_config import CircuitConfig
from .evaluator import Block, MappedNetwork
from .mapping import map_layer
from .mlp import MLP
from .realization import realize_layer
from ..tile.tile_cache import TileCache


def imac_amp_gains(circuit: CircuitConfig, n_layers: int) -> tuple[float, ...]:
    """Amplifier gains per layer: ``circuit.amp_gains``, or IMAC-Sim's 30, ..., 30, 10."""
    if circuit.amp_gains is None:
        return (30.0,) * (n_layers - 1) + (10.0,)
    if len(circuit.amp_gains) != n_layers:
        raise ConfigError(f"circuit.amp_gains needs {n_layers} values (one per layer), got {len(circuit.amp_gains)}")
    return tuple(float(g) for g in circuit.amp_gains)


def _topology(circuit: CircuitConfig, amp_gain: float) -> TopologyConfig:
    if circuit.topology != "imac-sim":
        raise ConfigError(f"no network-level path for topology {circuit.topology!r}")
    return TopologyConfig.imac_sim(amp_gain, circuit.opamp_gain)


def _key(layer: LayerCircuit) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([layer.topology.to_dict(), layer.r_row, layer.r_col, layer.g_pos.shape],
                        sort_keys=True).encode())
    for g in (layer.g_pos, layer.g_neg):
        h.update(np.ascontiguousarray(g, dtype="<f8").tobytes())
    return h.hexdigest()


def _characterize(layer: LayerCircuit, cache: TileCache) -> Characterization:
    """``A`` (as ``T``) and ``Y`` of a one-piece layer circuit, from the cache when there."""
    key = _key(layer)
    n_in, n_out = layer.g_pos.shape

    def compute():
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


def _assemble(g, layer, n_out, topology, circuit, wires, cache, blocks) -> np.ndarray:
    """Effective weights (``n_rows × n_out``, neuron-input volts per unit activation) of a
    mapped layer's partition tiles; appends each tile's :class:`Block` to ``blocks``."""
    share = 1.0 / len(layer.row_slices) if topology.combining == "average" else 1.0
    effective = np.zeros((g.shape[0], n_out))
    for rows in layer.row_slices:
        for outs in layer.out_slices:
            result = _characterize(_piece(g, rows, outs, topology, wires), cache)
            effective[rows, outs] = circuit.v_read * share * result.T.T
            blocks.append(Block(rows, outs, effective[rows, outs], circuit.t_read * result.input_admittance))
    return effective


def map_layer_network(net: MLP, partitions, circuit: CircuitConfig, cache: TileCache | None = None,
                      x_calibration=None) -> MappedNetwork:
    """Map ``net`` onto partitioned layer circuits of ``circuit.topology`` (``"imac-sim"``).

    Parameters are those of :func:`~circuitsim.network.evaluator.map_network`
    (``x_calibration`` is unused: this topology has no ADC).
    """
    del x_calibration
    start = time.perf_counter()
    cache = cache or TileCache()
    partitions = tuple(partitions)
    if len(partitions) != len(net.weights):
        raise ConfigError(f"give one partition per layer: {len(net.weights)} layers, {len(partitions)} partitions")
    if circuit.engine != "native":
        raise ConfigError("circuit.topology = imac-sim extracts its exact linear layer maps with the native "
                          "engine; use engine = \"native\" (ngspice checks it in circuitsim layer and validate)")
    amp_gains = imac_amp_gains(circuit, len(net.weights))
    has_bias = net.config.bias
    weights, biases, layers, neuron_gains = [], [], [], []
    for k, (w, b, part) in enumerate(zip(net.weights, net.biases, partitions)):
        topology = _topology(circuit, amp_gains[k])
        layer = map_layer(w, b if has_bias else None, circuit.device, part,
                          rounding=topology.rounding, zero_weight=topology.zero_weight)
        g = layer.conductances  # the design's targets set the neuron gains; the realized cells compute
        realized = realize_layer(g, circuit.device, k)
        blocks = []
        effective = _assemble(realized, layer, w.shape[1], topology, circuit, circuit.wires, cache, blocks)
        layers.append(tuple(blocks))
        if circuit.neuron_reference == "partitioned":
            ideal = _assemble(g, layer, w.shape[1], topology, circuit, Wires(), cache, [])
        else:
            whole = _piece(g, slice(0, g.shape[0]), slice(0, w.shape[1]), topology, Wires())
            ideal = circuit.v_read * _characterize(whole, cache).T.T
        target = np.vstack([w, b[None, :]]) if has_bias else w
        alpha = float(np.sum(ideal * target) / max(np.sum(target * target), 1e-300))
        if not alpha > 0:
            raise ConfigError(f"layer {k + 1}: the ideal imac-sim layer does not follow its weights (scale {alpha:g})")
        neuron_gains.append(net.config.gains[k] / alpha)
        weights.append(effective[: w.shape[0]])
        biases.append(effective[w.shape[0]] if has_bias else np.zeros(w.shape[1]))
    gains = tuple(circuit.gains) if circuit.gains is not None else tuple(neuron_gains)
    if len(gains) != len(net.weights):
        raise ConfigError(f"circuit.gains needs {len(net.weights)} values, got {len(gains)}")
    effective_net = MLP(weights, biases, dataclasses.replace(net.config, gains=gains))
    return MappedNetwork(effective_net, tuple(layers), partitions, circuit, time.perf_counter() - start)
