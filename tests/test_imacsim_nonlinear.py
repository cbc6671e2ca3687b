"""Nonlinear cells in the imac-sim topology (issue 25, item 4): no virtual ground.

IMAC-Sim's difference amplifiers hold the bit lines at voltages that depend on every cell, so
the layer circuit is solved whole (:class:`~circuitsim.tile.nonlinear_layer.LayerSolver`) and
checked against the same deck in ngspice (:mod:`circuitsim.tile.nonlinear_layer_run`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import Device, Wires
from circuitsim.errors import ConvergenceError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLP, MLPConfig
from circuitsim.network.nonlinear_layers import ExactLayer
from circuitsim.tile.cell_mapping import map_conductance
from circuitsim.tile.cells import LinearCell, MTJCell, SelectorCell, SinhCell, TransistorCell
from circuitsim.tile.layer_circuit import LayerCircuit, solve_layer
from circuitsim.tile.nonlinear_layer import LayerSolver
from circuitsim.tile.nonlinear_layer_run import ngspice_layer, nonlinear_layer_deck
from circuitsim.tile.nonlinear_run import SPICE_OPTIONS
from circuitsim.tile.nonlinear_tile import NewtonOptions
from circuitsim.tile.topology import TopologyConfig, partition_slices
from test_validate import SPEC as VALIDATE_SPEC

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
                                      MTJCell(1e-4), SelectorCell(1e-4)],
                         ids=["sinh-0.2", "sinh-0.05", "1t1r", "mtj", "1s1r"])
def test_native_layer_agrees_with_ngspice(template):
    """16 x 8 in 2 x 2 pieces, 5 ohm segments: the outputs (amplifier volts) and the input currents
    agree to 1e-6 of the largest (measured: 6e-12 to 8e-11 on the outputs, 3 to 8 Newton
    iterations), where the cells linear at the read voltage are 16 % to 2.5 times off. ngspice
    finds no operating point of the 1S1R layer at reltol 1e-10 ("timestep too small"): it runs at
    1e-9 (abstol 1e-16 A, vntol 1e-12 V)."""
    layer, g, x = _layer(v=2)
    cells = map_conductance(template, g, V_READ)
    native = LayerSolver(layer, cells, name="16x8 layer").solve(x)
    options = (".options reltol=1e-9 abstol=1e-16 vntol=1e-12 itl1=1000",) if cells.kind == "1s1r" else SPICE_OPTIONS
    spice = ngspice_layer(layer, cells, x, options=options)
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
    # in a network the piece's deck at the failing vector comes with the error (a sweep keeps it)
    piece = ExactLayer(LayerSolver(layer, cells, NewtonOptions(max_iterations=1), name="piece"), V_READ, 1.0, 1e-8)
    with pytest.raises(ConvergenceError) as info:
        piece.sums(x / V_READ)
    assert "Bcell0_0 wl0_0 cm0_0 I=" in info.value.deck and ".op" in info.value.deck


def _network(v0: float, r_series: float = 0.0, statistics: DeviceStatistics | None = None) -> tuple:
    """A binary 6-5-3 MLP in the imac-sim topology (2 x 2 pieces, then one), sinh cells, 2 ohm wires."""
    rng = np.random.default_rng(3)
    net = MLP([rng.choice([-1.0, 1.0], (6, 5)), rng.choice([-1.0, 1.0], (5, 3))],
              [rng.choice([-1.0, 1.0], 5), rng.choice([-1.0, 1.0], 3)], MLPConfig(layers=(6, 5, 3), weights="binary"))
    device = Device(8.49e3, 25.46e3, 2, "sot-mram-amin2022")
    device = device if statistics is None else dataclasses.replace(device, statistics=statistics)
    circuit = CircuitConfig(device=device, wires=Wires(2.0, 2.0), topology="imac-sim", cells=SinhCell(1.0, v0, r_series))
    return map_network(net, [Partition(2, 2), Partition()], circuit), rng.integers(0, 2, (20, 6)).astype(float)


@pytest.mark.parametrize("statistics", [None, DeviceStatistics(programming_noise=0.05, drift_nu=0.05,
                                                                t_inference=3600.0, drift_compensation="global")],
                         ids=["nominal", "drift-compensated"])
def test_imac_sim_network_solves_its_pieces_exactly(statistics):
    """Nearly linear cells (v0 = 100 V: sinh bends by (v/v0)^2 / 6 ~ 1e-5) give the linear pieces'
    sums and energy, so the pieces' share, drift factor and amplifier scale are the linear path's;
    strongly nonlinear ones (v0 = 0.05 V) do not (measured: 1.3e-5 and 1.8 of sums up to 1.9)."""
    mapped, h = _network(100.0, statistics=statistics)
    assert statistics is None or {b.drift_scale for b in mapped.crossbars[0].blocks} != {1.0}
    assert mapped.exact and all(isinstance(b.exact, ExactLayer) for b in mapped.crossbars[0].blocks)
    assert len(mapped.crossbars[0].blocks) == 4
    exact, linear = mapped.layer_sums(0, h), mapped.linear_at_read().layer_sums(0, h)
    assert np.abs(exact - linear).max() < 1e-4 * np.abs(linear).max()
    energy, energy_linear = mapped.layer_energy(0, h, len(h)), mapped.linear_at_read().layer_energy(0, h, len(h))
    assert abs(energy - energy_linear) < 1e-4 * energy_linear
    assert (mapped.newton_iterations() >= 1).all()
    bent, _ = _network(0.05, 500.0)
    exact, linear = bent.layer_sums(0, h), bent.linear_at_read().layer_sums(0, h)
    assert np.abs(exact - linear).max() > 0.1 * np.abs(linear).max()
    assert 0 < bent.layer_energy(0, h, len(h)) < bent.linear_at_read().layer_energy(0, h, len(h))


def test_whole_circuit_deck_writes_the_pieces_cells():
    from circuitsim.study.layer_decks import imac_layer_lines

    mapped, _ = _network(0.2, 1000.0)
    lines: list[str] = []
    imac_layer_lines(mapped, 0, 1.0, 0.8, lines)
    deck = "\n".join(lines)
    assert deck.count("\nBcell") == 7 * 10 and deck.count("\nRcs") == 7 * 10  # 6 inputs + bias, 5 pairs
    assert "Rcp" not in deck and "Rcn" not in deck and "Bcell0_6_9 0_wl6_4 cm0_6_9 I=" in deck
    assert "Bcell0_0_0 x0_0 " not in deck and "E0_amp1_4 " in deck  # word lines have segments; two pieces a column


SPEC = (VALIDATE_SPEC.split("[sweep]")[0].replace("test_fraction = 0.3", "test_fraction = 0.3\nlimit = 30")
        .replace("epochs = 40", "epochs = 10") + """[circuit]
topology = "imac-sim"
[cells]
model = "sinh"
v0 = 0.2
r_series = 1000.0
[sweep]
partitions = [{h = [2, 1], v = [2, 1]}]
""")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.ngspice
@pytest.mark.parametrize("scope", ["network", pytest.param("layer", marks=pytest.mark.slow)])
def test_whole_circuit_agrees_with_the_exact_pieces(scope, cache):
    """The digits MLP (64-16-10, 2-1 / 2-1) in one ngspice deck (or one per layer), each layer its
    whole imac-sim layer circuit with the sinh cells between its nodes, against the evaluator's
    exact pieces behind the same neurons. Measured: 30 of 30 predictions agree, crossbar energies
    within 1e-6."""
    from circuitsim.study.points import PointContext
    from circuitsim.study.spec import parse_spec
    from circuitsim.study.validation import validate_point
    from circuitsim.study.whole_circuit import FullCircuitConfig

    (point,) = parse_spec(SPEC).points()
    row = validate_point(point, PointContext(cache), 30, FullCircuitConfig(scope=scope), "behavioural")
    assert row["status"] == "ok", row["error"]
    assert row["agreement"] >= 0.99 and row["n_images"] == 30 and row["scope"] == scope
    assert abs(row["energy_crossbar"] - row["energy_crossbar_evaluator"]) < 1e-4 * row["energy_crossbar_evaluator"]
