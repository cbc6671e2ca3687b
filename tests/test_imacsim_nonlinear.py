"""Nonlinear cells in the imac-sim topology (issue 25, item 4): no virtual ground.

IMAC-Sim's difference amplifiers hold the bit lines at voltages that depend on every cell, so
the layer circuit is solved whole (:class:`~circuitsim.tile.nonlinear_layer.LayerSolver`) and
checked against the same deck in ngspice (:mod:`circuitsim.tile.nonlinear_layer_run`).
"""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.errors import ConvergenceError
from circuitsim.tile.cell_mapping import map_conductance
from circuitsim.tile.cells import LinearCell, MTJCell, SinhCell, TransistorCell
from circuitsim.tile.layer_circuit import LayerCircuit, solve_layer
from circuitsim.tile.nonlinear_layer import LayerSolver
from circuitsim.tile.nonlinear_layer_run import ngspice_layer, nonlinear_layer_deck
from circuitsim.tile.nonlinear_tile import NewtonOptions
from circuitsim.tile.topology import TopologyConfig, partition_slices

V_READ = 0.8


def _layer(rows: int = 16, outs: int = 8, h: int = 2, v: int = 1, wire: float = 5.0, seed: int = 0):
    """An imac-sim layer of SOT-MRAM conductances (8.49 .. 25.46 kohm), its inputs in [0, v_read]."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(1 / 25.46e3, 1 / 8.49e3, (rows, 2 * outs))
    layer = LayerCircuit(g[:, 0::2], g[:, 1::2], partition_slices(rows, h, "imac-sim"),
                         partition_slices(outs, v, "imac-sim"), TopologyConfig.imac_sim(30.0), wire, wire)
    x = rng.uniform(0.0, V_READ, (4, rows))
    x[0] = V_READ
    return layer, g, x


def test_linear_cells_are_the_linear_layer():
    layer, g, x = _layer()
    result = LayerSolver(layer, LinearCell(g)).solve(x)
    linear = solve_layer(layer, x)
    assert np.abs(result.outputs - linear).max() <= 1e-9 * np.abs(linear).max()
    assert (result.iterations == 1).all()


@pytest.mark.ngspice
@pytest.mark.parametrize("template", [SinhCell(1.0, 0.2, 1e3), SinhCell(1.0, 0.05, 1e3), TransistorCell(1e-4),
                                      MTJCell(1e-4)], ids=["sinh-0.2", "sinh-0.05", "1t1r", "mtj"])
def test_native_layer_agrees_with_ngspice(template):
    """16 x 8 in 2 x 2 pieces, 5 ohm segments: the outputs (amplifier volts) and the input currents
    agree to 1e-6 of the largest (measured: 6e-12 to 8e-11 on the outputs, 3 to 8 Newton
    iterations), where the cells linear at the read voltage are 16 % to 2.5 times off."""
    layer, g, x = _layer(v=2)
    cells = map_conductance(template, g, V_READ)
    native = LayerSolver(layer, cells, name="16x8 layer").solve(x)
    spice = ngspice_layer(layer, cells, x)
    scale = np.abs(spice.outputs).max()
    assert np.abs(native.outputs - spice.outputs).max() <= 1e-6 * scale
    assert np.abs(native.input_currents - spice.input_currents).max() <= 1e-6 * np.abs(spice.input_currents).max()
    assert (native.iterations >= 2).all() and (native.iterations <= 12).all()
    assert np.abs(solve_layer(layer, x) - spice.outputs).max() > 0.1 * scale  # the nonlinearity matters


def test_deck_has_the_cells_between_the_layer_nodes():
    layer, g, x = _layer(4, 2, 1)
    deck = nonlinear_layer_deck(layer, map_conductance(TransistorCell(1e-4), g, V_READ), x[0])
    assert "\nRcp" not in deck and "\nRcn" not in deck  # the linear cells are left out
    assert "Mcell0_0 wl0_0 gate0 cm0_0 cm0_0 nmos1t0" in deck and "Rmem0_1 cm0_1 bn0_0" in deck
    assert deck.count(".model nmos1t0") == 1 and "Eamp0_0" in deck and deck.rstrip().endswith(".end")


def test_unconverged_solve_is_refused_in_one_line():
    layer, g, x = _layer(4, 2, 1)
    cells = map_conductance(SinhCell(1.0, 0.03, 1e3), g, V_READ)
    with pytest.raises(ConvergenceError) as info:
        LayerSolver(layer, cells, NewtonOptions(max_iterations=1), name="layer 1").solve(x)
    message = str(info.value)
    assert "layer 1 did not converge for input vector" in message and "after 1 Newton iterations" in message
    assert "\n" not in message
