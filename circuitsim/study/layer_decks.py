"""Deck lines of one crossbar layer's circuits in a whole-circuit deck (:mod:`circuitsim.study.whole_circuit`).

A tile or layer circuit (:class:`~circuitsim.tile.circuit.Circuit`) is written with its input
nodes ``in<i>`` renamed to the deck's input nodes and every other name prefixed, so that the
circuits of every layer and tile share one deck; an imac-sim layer is its whole partitioned layer
circuit, nonlinear cells (``circuit.cells``) written between its nodes as the pieces' own decks
write them (:func:`~circuitsim.tile.nonlinear_layer_run.layer_cell_lines`).

Public API
----------
node_namer, circuit_lines, imac_layer_lines
"""

from __future__ import annotations

import re

import numpy as np

from ..network.mapped import MappedNetwork
from ..network.nonlinear_layers import ExactLayer
from ..network.topologies import imac_amp_gains
from ..tile.layer_circuit import LayerCircuit, build_layer_circuit
from ..tile.netlist import format_value as _f
from ..tile.nonlinear_layer import wires_only
from ..tile.nonlinear_layer_run import layer_cell_lines
from ..tile.topology import TopologyConfig

_INPUT = re.compile(r"in(\d+)$")


def node_namer(prefix: str, inputs: list[str]):
    """Deck names of a tile circuit's nodes: ``in<i>`` is ``inputs[i]``, the others but ground prefixed."""
    return lambda node: inputs[int(m.group(1))] if (m := _INPUT.match(node)) else ("0" if node == "0" else prefix + node)


def circuit_lines(circuit, prefix: str, inputs: list[str], out: list[str]) -> list[str]:
    """Elements of a circuit whose sources ``Vin<i>`` drive ``in<i>``, those nodes renamed
    ``inputs[i]`` (the sources left out), other names made unique by ``prefix``."""
    names = np.array(list(map(node_namer(prefix, inputs), circuit.node_names)), dtype=object)
    for group in circuit.groups:
        if group.kind == "C" or group.names[0].startswith("Vin"):
            continue
        dc = "DC " if group.kind == "V" else ""
        nodes = [" ".join(row) for row in names[group.nodes]]
        out.append(f"* {prefix}: {group.comment}")
        out.extend(f"{n[0]}{prefix}{n[1:]} {nd} {dc}{_f(v)}" for n, nd, v in zip(group.names, nodes, group.values))
    return out


def imac_layer_lines(mapped: MappedNetwork, k: int, volts_per_unit: float, v_amp: float, lines: list[str]) -> None:
    """Layer ``k`` in the imac-sim topology: its whole partitioned layer circuit (difference
    amplifiers, 1 mΩ ties) of the realized cells (nonlinear ones as their pieces solve them), then per output a buffer
    ``V = clip(volts_per_unit·α·V(nin), ±v_amp)`` (``α``: the global drift compensation of the
    output's vertical partition, 1 without; ``V(nin)`` is the effective network's sum ``s``)."""
    circuit, crossbar = mapped.circuit, mapped.crossbars[k]
    topology = TopologyConfig.imac_sim(imac_amp_gains(circuit, len(mapped.crossbars))[k], circuit.opamp_gain)
    g = np.zeros((crossbar.weights.shape[0], 2 * crossbar.n_out))
    alpha = np.ones(crossbar.n_out)  # global drift compensation, one factor per vertical partition
    for block in crossbar.blocks:
        g[block.rows, 2 * block.outs.start:2 * block.outs.stop] = block.conductances
        alpha[block.outs] = block.drift_scale
    row_slices = tuple(slice(a, b) for a, b in sorted({(b.rows.start, b.rows.stop) for b in crossbar.blocks}))
    out_slices = tuple(slice(a, b) for a, b in sorted({(b.outs.start, b.outs.stop) for b in crossbar.blocks}))
    layer = LayerCircuit(g[:, 0::2], g[:, 1::2], row_slices, out_slices, topology, circuit.wires.r_row,
                         circuit.wires.r_col)
    prefix, inputs = f"{k}_", [f"x{k}_{i}" for i in range(layer.n_rows)]
    pieces = [(b.rows, b.outs, b.exact) for b in crossbar.blocks if isinstance(b.exact, ExactLayer)]
    circuit_lines(build_layer_circuit(wires_only(layer) if pieces else layer), prefix, inputs, lines)
    for rows, outs, exact in pieces:  # nonlinear cells between the layer's nodes, as the pieces' decks write them
        lines.extend(layer_cell_lines(layer, exact.solver.cells, node_namer(prefix, inputs), prefix, lines, rows, outs))
    lines.append(f"* layer {k}: buffers (V = k*V(nin), clipped at the rails)")
    vmax = _f(v_amp)
    for o in range(crossbar.n_out):
        lines.append(f"Bd{k}_{o} d{k}_{o} 0 V = max(-{vmax}, min({vmax}, "
                     f"{_f(volts_per_unit * alpha[o])}*v({prefix}nin{o})))")
