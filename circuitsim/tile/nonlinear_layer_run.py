"""A layer circuit of nonlinear cells in ngspice: its deck and operating points.

The deck is :func:`~circuitsim.tile.layer_circuit.build_layer_circuit` of the layer without its
cells (:func:`~circuitsim.tile.nonlinear_layer.wires_only`) with every cell written by
:meth:`~circuitsim.tile.cells.CellModel.spice_lines` between the nodes
:func:`~circuitsim.tile.nonlinear_layer.cell_nodes` names (B-sources, resistors, level-1
MOSFETs and their cards): the very circuit :class:`~circuitsim.tile.nonlinear_layer.LayerSolver`
solves, run with the tight tolerances of :data:`~circuitsim.tile.nonlinear_run.SPICE_OPTIONS`.

Public API
----------
layer_cell_lines, nonlinear_layer_deck, ngspice_layer
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..errors import ConfigError
from .cells import CellModel
from .layer_circuit import LayerCircuit, _readings, build_layer_circuit, combine_readings
from .netlist import write_netlist
from .nonlinear_layer import LayerResult, cell_nodes, wires_only
from .nonlinear_run import SPICE_OPTIONS


def layer_cell_lines(layer: LayerCircuit, cells: CellModel, node: Callable[[str], str] = str, prefix: str = "",
                     held=(), rows: slice = slice(None), outs: slice = slice(None)) -> list[str]:
    """Deck lines of ``cells`` between their nodes in ``layer``'s circuit.

    Parameters
    ----------
    layer : LayerCircuit
    cells : CellModel
        The cells of ``rows`` and the outputs ``outs`` (``rows × 2 outs``, pairs interleaved).
    node : callable, optional
        Maps a node name of the layer's circuit to the deck's (e.g. prefixed, inputs renamed).
    prefix : str
        Put in front of every cell's element and internal node names (unique in the deck).
    held : sequence of str
        Lines the deck holds already: gate sources and ``.model`` cards among them are not repeated.
    rows, outs : slice
        Which rows and outputs of the layer the cells are (a piece of it; all by default).
    """
    word, bit = cell_nodes(layer)
    cols = slice(2 * (outs.start or 0), None if outs.stop is None else 2 * outs.stop)
    word, bit = word[rows, cols], bit[rows, cols]
    cells = cells.broadcast(word.shape)
    ii, jj = np.meshgrid(np.arange(layer.n_rows)[rows], np.arange(2 * layer.n_out)[cols], indexing="ij")
    names = [f"{prefix}{i}_{j}" for i, j in zip(ii.ravel(), jj.ravel())]
    lines = cells.spice_lines([node(n) for n in word.ravel()], [node(n) for n in bit.ravel()], names)
    return [f"* {cells.kind} cells (circuitsim.tile.cells)",
            *(line for line in lines if not (line.startswith((".model", "Vgs")) and line in held))]


def nonlinear_layer_deck(layer: LayerCircuit, cells: CellModel, inputs=None,
                         options: tuple[str, ...] = SPICE_OPTIONS) -> str:
    """The ngspice deck of ``layer`` with ``cells`` (inputs 0 V by default), with ``options``
    (:data:`~circuitsim.tile.nonlinear_run.SPICE_OPTIONS` by default) and ``.op``."""
    deck = write_netlist(build_layer_circuit(wires_only(layer), inputs), options=tuple(options) + (".op",))
    head, tail = deck.rsplit("\n.options", 1)
    return head + "\n" + "\n".join(layer_cell_lines(layer, cells)) + "\n\n.options" + tail


def ngspice_layer(layer: LayerCircuit, cells: CellModel, inputs, backend: str = "shared",
                  options: tuple[str, ...] = SPICE_OPTIONS) -> LayerResult:
    """The layer's outputs for input-line voltage vectors ``(vectors, n_rows)`` by ngspice: one
    operating point per vector (``alter`` of the input sources), the deck's ``options`` as
    :func:`nonlinear_layer_deck`."""
    from ..spice import get_backend

    v = np.atleast_2d(np.asarray(inputs, dtype=float))
    if v.ndim != 2 or v.shape[1] != layer.n_rows or not len(v) or not np.all(np.isfinite(v)):
        raise ConfigError(f"inputs must be vectors x {layer.n_rows} finite volts, got shape {np.shape(inputs)}")
    start = time.perf_counter()
    kind, names = _readings(layer)
    read = [f"{kind}({n.lower()})" for n in names]
    sources = [s.lower() for s in layer.input_sources()]
    driven = [f"i({s})" for s in sources]
    steps = [[f"alter {s} dc = {float(x)!r}" for s, x in zip(sources, row)] + ["op"] for row in v]
    deck = nonlinear_layer_deck(layer, cells, options=options).replace("\n.op\n", "\n")
    results = get_backend(backend).run(deck, steps, save=read + driven)
    raw = np.array([[r[name][0] for name in read] for r in results])
    delivered = -np.array([[r[name][0] for name in driven] for r in results])  # ngspice: current into the + node
    return LayerResult(combine_readings(raw, layer), delivered, np.zeros(len(v), np.int64), "ngspice",
                       time.perf_counter() - start)
