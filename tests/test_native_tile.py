"""The native engine on the grid: direct assembly against the netlist path, both
factorization backends, the SuperLU fallback, many vectors, and ngspice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.tile import extract, factor, native, native_tile
from circuitsim.tile.assembly import assemble_tile
from circuitsim.tile.checks import estimate_peak_bytes
from circuitsim.tile.crossbar import TIA, Tile, build_circuit, input_source_names, sense_source_names
from circuitsim.tile.native_tile import TileSolver
from circuitsim.tile.ordering import grid_nested_dissection

OPTIONS = list(itertools.product([0.0, 2.5], [0.0, 3.0], [0.0, 20.0], [False, True]))


def _tile(rng, r_row, r_col, r_driver, tia, shape=(7, 5)):
    g = rng.uniform(1e-6, 1e-4, shape)
    g[2, 3] = 0.0  # an open cell, a row and a column of open cells
    g[4, :] = 0.0
    g[:, 1] = 0.0
    return Tile(g, r_row=r_row, r_col=r_col, r_driver=r_driver, c_row=1e-15, c_col=2e-15,
                tia=TIA(gain=500, r_feedback=1e4) if tia else None)


def _netlist_path(tile, v):
    """T, Y and the operating point by the general MNA engine on the tile's deck circuit."""
    inputs = input_source_names(tile.rows)
    both = native.transfer_matrix(build_circuit(tile), inputs, sense_source_names(tile.cols) + inputs)
    return both[: tile.cols], -both[tile.cols:], native.operating_point(build_circuit(tile, v))


def _rel(a, b, scale=None):
    return np.abs(np.asarray(a) - b).max() / (np.abs(b).max() if scale is None else scale)


@pytest.mark.parametrize("backend", factor.available_backends())
@pytest.mark.parametrize("r_row, r_col, r_driver, tia", OPTIONS)
def test_direct_assembly_matches_netlist_path(r_row, r_col, r_driver, tia, backend, rng, monkeypatch):
    monkeypatch.setattr(native_tile, "CHUNK", 3)  # several chunks when the ports are too many
    tile = _tile(rng, r_row, r_col, r_driver, tia)
    v = rng.uniform(-0.8, 0.8, tile.rows)
    T_ref, Y_ref, op_ref = _netlist_path(tile, v)
    solver = TileSolver(tile, backend=backend)
    assert solver.backend == backend
    T, Y = solver.transfer()
    assert _rel(T, T_ref) <= 1e-12
    # Y = A_II - A_IP A^-1 A_PI cancels wire conductances down to cell conductances in
    # both paths: its rounding error scales with the largest conductance of the tile
    g_max = max([np.abs(Y_ref).max()] + [1.0 / r for r in (r_row, r_col, r_driver) if r > 0])
    assert _rel(Y, Y_ref, g_max) <= 1e-12
    op = solver.operating_point(v)
    assert {n.lower() for n in op.node_names} == {n.lower() for n in op_ref.node_names}
    assert {n.lower() for n in op.source_names} == {n.lower() for n in op_ref.source_names}
    assert _rel(op.voltage(op_ref.node_names), op_ref.voltages) <= 1e-12
    outputs = [n for n in op_ref.source_names if not n.lower().startswith("vin")]
    assert _rel(op.current(outputs), op_ref.current(outputs)) <= 1e-12
    inputs = input_source_names(tile.rows)
    assert _rel(op.current(inputs), op_ref.current(inputs), g_max * np.abs(v).max()) <= 1e-12
    np.testing.assert_allclose(op.output_currents, T @ v, rtol=1e-12, atol=1e-12 * np.abs(T @ v).max())


def test_ports_are_the_edges_or_nothing(rng):
    rows, cols = 6, 4
    s = assemble_tile(_tile(rng, 2.5, 3.0, 20.0, True, (rows, cols)))
    assert np.array_equal(s.ports, np.arange(s.n_free - rows - cols, s.n_free))
    # zero-ohm word lines without drivers: every bit-line node touches an input
    assert assemble_tile(_tile(rng, 0.0, 3.0, 0.0, False, (rows, cols))).ports is None


def test_nested_dissection_is_a_permutation_with_last_at_the_end(rng):
    s = assemble_tile(Tile(rng.uniform(1e-6, 1e-4, (40, 30)), r_row=1.0, r_col=1.0))
    kind = np.r_[np.zeros(1200, np.int8), np.ones(1200, np.int8)]
    ii, jj = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    position = np.tile(np.stack([ii.ravel(), jj.ravel()], 1), (2, 1))
    last = np.array([5, 17, 2000])
    order = grid_nested_dissection(kind, position, last)
    assert np.array_equal(np.sort(order), np.arange(2400))
    assert np.array_equal(order[-3:], last)
    assert s.a_ff.shape == (2400, 2400)


def test_many_vectors_on_one_factorization(rng):
    tile = _tile(rng, 2.5, 3.0, 20.0, True, (9, 6))
    solver = TileSolver(tile)
    T, _ = solver.transfer()
    V = rng.uniform(-0.5, 0.5, (4, 9))
    np.testing.assert_allclose(solver.output_currents(V), V @ T.T, rtol=1e-11, atol=1e-18)
    np.testing.assert_allclose(solver.output_currents(V[0]), T @ V[0], rtol=1e-11, atol=1e-18)
    with pytest.raises(ConfigError, match=r"inputs must be finite with shape \(9,\)"):
        solver.output_currents(np.zeros(8))


def test_superlu_fallback_without_cholmod(monkeypatch, rng):
    tile = _tile(rng, 2.5, 3.0, 20.0, False, (8, 6))
    reference = extract.characterize(tile)
    monkeypatch.setattr(factor, "_cholmod", None)
    assert factor.available_backends() == ("superlu",)
    fallback = extract.characterize(tile)
    assert fallback.metadata["native_solver"] == "superlu"
    np.testing.assert_allclose(fallback.T, reference.T, rtol=1e-12)
    with pytest.raises(ConfigError, match="not available"):
        TileSolver(tile, backend="cholmod")


def test_unknown_backend_is_a_config_error(rng):
    with pytest.raises(ConfigError, match="backend 'klu' is not available"):
        TileSolver(_tile(rng, 1.0, 1.0, 0.0, False), backend="klu")


def test_memory_estimate_grows_with_the_grid():
    small, large = estimate_peak_bytes(64, 64), estimate_peak_bytes(1024, 1024)
    assert 0 < small < large
    assert estimate_peak_bytes(400, 120, tia=True) > estimate_peak_bytes(400, 120)


@pytest.mark.ngspice
@pytest.mark.parametrize("r_row, r_col, r_driver, tia", [(0.0, 3.0, 20.0, True), (2.5, 0.0, 0.0, True),
                                                         (0.0, 3.0, 0.0, False)])
def test_grid_engine_matches_ngspice_with_merged_nodes(r_row, r_col, r_driver, tia, rng):
    tile = _tile(rng, r_row, r_col, r_driver, tia, (6, 5))
    v = rng.uniform(-0.5, 0.5, 6)
    fast, ref = extract.simulate(tile, v), extract.simulate(tile, v, engine="ngspice")
    assert _rel(fast.output_currents, ref.output_currents) <= 1e-9
    nodes = ref.operating_point.node_names
    assert _rel(fast.operating_point.voltage(nodes), ref.operating_point.voltage(nodes)) <= 1e-9
    if tia:
        assert _rel(fast.output_voltages, ref.output_voltages) <= 1e-9
    T = extract.characterize(tile).T
    assert _rel(T, extract.characterize(tile, engine="ngspice").T) <= 1e-9
