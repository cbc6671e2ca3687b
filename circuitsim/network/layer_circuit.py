"""A network layer as one partitioned layer circuit in a chosen topology.

:func:`layer_circuit` maps a layer's weights (``n_in × n_out`` in [-1, 1]) and bias onto
cell pairs with the topology's conventions (weight 0, bias row position, partition
rounding) and returns the :class:`~circuitsim.tile.layer_circuit.LayerCircuit` that both
engines solve. :func:`layer_input_voltages` turns activations into input-line voltages
(activation 1 → ``v_read``; the bias row at ``v_read``).
:func:`effective_layer` gives the layer's exact linear map in the layout of the trained
network: ``outputs = (v_read · h) @ W_eff + v_read · b_eff``.

Public API
----------
layer_circuit, layer_input_voltages, effective_layer
"""

from __future__ import annotations

import numpy as np

from ..devices import Device, Wires
from ..errors import ConfigError
from ..tile.layer_circuit import LayerCircuit, layer_transfer
from ..tile.topology import TopologyConfig, partition_slices
from .mapping import Partition, map_layer
from .realization import realize_layer


def layer_circuit(weights, bias, device: Device, wires: Wires, partition: Partition,
                  topology: TopologyConfig, layer_index: int | None = None, cells=None) -> LayerCircuit:
    """Map one layer onto a partitioned layer circuit.

    Parameters
    ----------
    weights : array_like
        ``n_in × n_out`` weights in [-1, 1].
    bias : array_like or None
        ``n_out`` biases in [-1, 1] (one more input line, driven at ``v_read``), or None.
    device : Device
        Cell conductance range and levels.
    wires : Wires
        ``r_row`` per input-line segment and ``r_col`` per summing-line segment (capacitances
        do not enter a DC layer).
    partition : Partition
        Horizontal and vertical partition counts.
    topology : TopologyConfig
        Arrangement of cells, wires and readouts.
    layer_index : int, optional
        Position of the layer in its network: the cells are then realized with the device's
        statistics (:func:`~circuitsim.network.realization.realize_layer`); without it
        they hold their targets.
    cells : array_like, optional
        The layer's own cells (``rows × 2 n_out`` conductances, siemens; a random-conductance
        network's), used instead of mapping ``weights``.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ConfigError(f"weights must be a finite n_in x n_out array, got shape {w.shape}")
    if bias is not None:
        bias = np.asarray(bias, dtype=float).ravel()
        if bias.shape != (w.shape[1],) or not np.all(np.isfinite(bias)):
            raise ConfigError(f"bias must hold {w.shape[1]} finite values (one per output), got shape {bias.shape}")
    if cells is not None:
        g = np.asarray(cells, dtype=float)
    elif np.abs(w).max() > 1 or (bias is not None and np.abs(bias).max(initial=0) > 1):
        raise ConfigError("weights and biases must lie in [-1, 1]; scale them first")
    else:
        g = map_layer(w, bias, device, Partition(), zero_weight=topology.zero_weight).conductances
    if layer_index is not None:
        g = realize_layer(g, device, layer_index)[1]
    if bias is not None and topology.bias_row == "first":
        g = np.vstack([g[-1:], g[:-1]])
    n_rows = g.shape[0]
    for name, value, limit in (("h", partition.h, n_rows), ("v", partition.v, w.shape[1])):
        if int(value) != value or not 1 <= value <= limit:
            raise ConfigError(f"partition {name} must be an integer in 1..{limit}, got {value!r}")
    return LayerCircuit(g[:, 0::2], g[:, 1::2],
                        partition_slices(n_rows, partition.h, topology.rounding),
                        partition_slices(w.shape[1], partition.v, topology.rounding),
                        topology, wires.r_row, wires.r_col)


def layer_input_voltages(inputs, v_bias: float | None, topology: TopologyConfig) -> np.ndarray:
    """Input-line voltages (``vectors × n_rows``) from input voltages and the bias row's."""
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if v_bias is None:
        return x
    column = np.full((len(x), 1), float(v_bias))
    return np.hstack([column, x] if topology.bias_row == "first" else [x, column])


def effective_layer(circuit: LayerCircuit, n_in: int, has_bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(W_eff, b_eff)`` with outputs ``= (v_read · h) @ W_eff + v_read · b_eff`` exactly.

    ``W_eff`` is ``n_in × n_out`` and ``b_eff`` ``n_out`` (zeros without a bias row), in
    the units of the layer's outputs per volt (siemens, or V/V for a voltage readout).
    """
    a = layer_transfer(circuit).T  # n_rows x n_out
    if not has_bias:
        return a, np.zeros(a.shape[1])
    if circuit.topology.bias_row == "first":
        return a[1:], a[0]
    return a[:n_in], a[n_in]
