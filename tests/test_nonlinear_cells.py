"""Nonlinear cells (issue 25): the cell models, the native Newton solve against ngspice on the
same deck, conductance mapping, bad parameters, and ``circuitsim simulate``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from circuitsim.cli import main
from circuitsim.errors import ConfigError, ConvergenceError
from circuitsim.tile.cells import (
    LinearCell,
    MTJCell,
    SelectorCell,
    SinhCell,
    TransistorCell,
    cell_model,
)
from circuitsim.tile.cell_laws import mos_level1
from circuitsim.tile.cell_mapping import map_conductance
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.native_tile import TileSolver
from circuitsim.tile import cell_space
from circuitsim.tile.nonlinear import NonlinearSolver
from circuitsim.tile.nonlinear_tile import NewtonOptions, NonlinearTile
from circuitsim.tile.nonlinear_run import load_cells, ngspice_currents, nonlinear_deck, simulate_cells

SHAPE = (5, 4)
V_READ = 0.3


def _models(rng) -> dict:
    g = rng.uniform(1e-5, 1e-4, SHAPE)
    r_mixed = np.where(rng.random(SHAPE) < 0.5, 0.0, 2e3)
    return {
        "linear": LinearCell(g=g),
        "sinh": map_conductance(SinhCell(i0=1.0, v0=0.1, r_series=2e3), g, V_READ),
        "sinh-strong": map_conductance(SinhCell(i0=1.0, v0=0.03, r_series=r_mixed), g, V_READ),
        "1s1r": map_conductance(SelectorCell(g=1.0, i_s=1e-6, n=2.0), g, V_READ),
        "1t1r": map_conductance(TransistorCell(g=1.0, v_gate=1.2, vto=0.5, lam=0.05), g, V_READ),
        "mtj": MTJCell(g_p=g, antiparallel=(rng.random(SHAPE) < 0.5).astype(float), tmr0=1.5, v_h=0.4),
    }


@pytest.fixture(scope="module")
def models():
    return _models(np.random.default_rng(25))


@pytest.fixture(scope="module")
def inputs():
    x = np.random.default_rng(7).uniform(-V_READ, V_READ, (3, SHAPE[0]))
    x[0] = V_READ  # every row at the read voltage: the strongest drop along the wires
    return x


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", ["linear", "sinh", "sinh-strong", "1s1r", "1t1r", "mtj"])
def test_native_newton_agrees_with_ngspice(kind, models, inputs):
    tile = NonlinearTile(models[kind], r_row=10.0, r_col=10.0)
    native = NonlinearSolver(tile).solve(inputs)
    spice = ngspice_currents(tile, inputs)
    scale = np.abs(spice.output_currents).max(axis=1, keepdims=True)
    assert np.abs(native.output_currents - spice.output_currents).max() <= 1e-6 * scale.min()
    assert native.iterations.min() >= 1 and native.engine == "native"
    # what each input source delivers (the supply energy of nonlinear tiles in networks)
    delivered = np.abs(spice.input_currents).max(axis=1, keepdims=True)
    assert np.abs(native.input_currents - spice.input_currents).max() <= 1e-6 * delivered.min()
    if kind != "linear":  # the nonlinearity shows: the linear-at-read-voltage tile is off by more
        linear = TileSolver(Tile(models[kind].chord_conductance(V_READ), r_row=10.0, r_col=10.0))
        off = np.abs(linear.output_currents(inputs) - spice.output_currents).max() / scale.min()
        assert off > 1e-4


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", ["linear", "sinh", "sinh-strong", "1t1r"])
@pytest.mark.parametrize("r_col", [10.0, 0.0])
def test_sense_resistor_readout_agrees_with_ngspice(kind, r_col, models, inputs):
    """Bit lines ending in a sense resistor to ground (no virtual ground): the bit lines rise with
    the currents, the cells see less, and the solve still agrees with ngspice's deck (Rsense)."""
    tile = NonlinearTile(models[kind], r_row=10.0, r_col=r_col, r_sense=2e3)
    solver, factored = NonlinearSolver(tile), []
    factor = solver._factor
    solver._factor = lambda *a: factored.append(1) or factor(*a)
    native = solver.solve(inputs)
    assert bool(factored) == (kind == "1t1r")  # the sense resistors are in the cell space's Z too
    spice = ngspice_currents(tile, inputs)
    assert "Rsense0" in nonlinear_deck(tile)
    scale = np.abs(spice.output_currents).max(axis=1, keepdims=True)
    assert np.abs(native.output_currents - spice.output_currents).max() <= 1e-6 * scale.min()
    delivered = np.abs(spice.input_currents).max(axis=1, keepdims=True)
    assert np.abs(native.input_currents - spice.input_currents).max() <= 1e-6 * delivered.min()
    grounded = NonlinearSolver(NonlinearTile(models[kind], r_row=10.0, r_col=r_col)).solve(inputs)
    assert np.abs(native.output_currents[0]).sum() < 0.95 * np.abs(grounded.output_currents[0]).sum()
    if kind == "linear":  # the linear engine's sense-resistor circuit (readout.sense_resistor_circuit)
        from circuitsim.tile.readout import simulate_readout

        volts = simulate_readout(Tile(models[kind].g, r_row=10.0, r_col=r_col), 2e3, inputs)
        assert np.allclose(native.output_currents * 2e3, volts, rtol=1e-9, atol=0)


def test_linear_cells_reproduce_the_linear_engine(models, inputs):
    cells = models["linear"]
    result = simulate_cells(cells, inputs, r_row=3.0, r_col=4.0)
    expected = TileSolver(Tile(np.asarray(cells.g), r_row=3.0, r_col=4.0)).output_currents(inputs)
    assert np.allclose(result.output_currents, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["sinh", "sinh-strong", "1s1r", "1t1r", "mtj"])
def test_branch_derivatives_match_finite_differences(kind, models):
    cells = models[kind]
    rng = np.random.default_rng(1)
    n = int(np.prod(SHAPE))
    va, vb = rng.uniform(-0.4, 0.4, n), rng.uniform(-0.1, 0.1, n)
    i, da, db, _ = cells.branch(va, vb)
    h = 1e-7
    fd_a = (cells.branch(va + h, vb)[0] - cells.branch(va - h, vb)[0]) / (2 * h)
    fd_b = (cells.branch(va, vb + h)[0] - cells.branch(va, vb - h)[0]) / (2 * h)
    tol = 1e-5 * np.abs(da).max()
    assert np.abs(fd_a - da).max() <= tol and np.abs(fd_b - db).max() <= tol
    assert np.all(i * (va - vb) >= 0)  # passive: current flows down the voltage


def test_mos_level1_regions_by_hand():
    beta, vto, lam = 2e-4, 0.5, 0.1
    # saturation: vgst = 0.7 <= vds = 1
    i, dd, ds = mos_level1(1.2, 1.0, 0.0, vto, beta, lam)
    assert i == pytest.approx(beta * 1.1 * 0.7**2 / 2, rel=1e-14)
    assert dd == pytest.approx(lam * beta * 0.7**2 / 2, rel=1e-14)
    assert ds == pytest.approx(-(beta * 1.1 * 0.7 + lam * beta * 0.7**2 / 2), rel=1e-14)
    # linear: vgst = 0.7 > vds = 0.2
    i, _, _ = mos_level1(1.2, 0.2, 0.0, vto, beta, lam)
    assert i == pytest.approx(beta * 1.02 * 0.2 * (0.7 - 0.1), rel=1e-14)
    # inverse mode: drain below source, the roles swap (gate measured from the drain)
    i_rev, _, _ = mos_level1(1.2, 0.0, 0.2, vto, beta, lam)
    assert i_rev == pytest.approx(-beta * 1.02 * 0.2 * (0.7 - 0.1), rel=1e-14)
    assert mos_level1(0.4, 1.0, 0.0, vto, beta, lam)[0] == 0.0  # cutoff


@pytest.mark.parametrize("kind", ["linear", "sinh", "1s1r", "1t1r", "mtj"])
def test_mapping_sets_the_current_at_the_read_voltage(kind, models):
    target = np.random.default_rng(3).uniform(2e-5, 8e-5, SHAPE)
    mapped = map_conductance(models[kind], target, V_READ)
    assert np.allclose(mapped.current(V_READ) / V_READ, target, rtol=1e-12)


def test_unreachable_targets_and_bad_parameters_are_one_line():
    with pytest.raises(ConfigError, match=r"sinh cell \(0, 1\).*not reachable.*r_series"):
        map_conductance(SinhCell(i0=1.0, v0=0.1, r_series=1e4), np.array([[1e-5, 2e-4]]), V_READ)
    with pytest.raises(ConfigError, match=r"1t1r cell \(0, 0\).*transistor"):
        map_conductance(TransistorCell(g=1.0, v_gate=0.6), np.array([[1e-3]]), V_READ)
    bad = [(dict(i0=1e-6, v0=np.array([[0.1, -0.1]])), r"v0 of cell \(0, 1\) = -0.1 V.*v0 > 0"),
           (dict(i0=0.0, v0=0.1), r"i0 = 0 A.*i0 > 0"),
           (dict(i0=np.nan, v0=0.1), r"i0 = nan A.*finite")]
    for params, message in bad:
        with pytest.raises(ConfigError, match=message) as info:
            SinhCell(**params)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="antiparallel"):
        MTJCell(g_p=1e-5, antiparallel=0.5)
    with pytest.raises(ConfigError, match="unknown cell model 'pcm'"):
        cell_model("pcm", g=1.0)
    with pytest.raises(ConfigError, match="sinh cells need the parameter 'v0'"):
        cell_model("sinh", i0=1e-6)


@pytest.mark.parametrize("kind", ["linear", "sinh-strong", "1s1r", "mtj"])
def test_exact_newton_takes_over_where_cell_space_stalls(kind, models, inputs, monkeypatch):
    tile = NonlinearTile(models[kind], r_row=10.0, r_col=10.0)
    fast = NonlinearSolver(tile)
    factored = []
    monkeypatch.setattr(fast, "_factor", lambda *a: factored.append(1))
    reference = fast.solve(inputs)  # cell space only: no factorization
    assert not factored
    monkeypatch.setattr(cell_space, "CG_ITERATIONS", 0)  # CG stalls: every vector goes to the grid's Newton
    exact = NonlinearSolver(tile)
    calls = []
    factor = exact._factor
    monkeypatch.setattr(exact, "_factor", lambda *a: calls.append(1) or factor(*a))
    result = exact.solve(inputs)
    assert calls
    scale = np.abs(reference.output_currents).max(axis=1, keepdims=True)
    assert np.all(np.abs(result.output_currents - reference.output_currents) <= 1e-9 * scale)


def test_wire_drops_by_cumulative_sums_match_the_line_matrices(models, monkeypatch):
    solver = NonlinearSolver(NonlinearTile(models["sinh"], r_row=3.0, r_col=7.0))
    currents = np.random.default_rng(2).standard_normal((2, int(np.prod(SHAPE))))
    rows, cols = SHAPE  # Z by its definition: the segments two cells share on a line
    r, c = np.divmod(np.arange(rows * cols), cols)
    z = (3.0 * np.where(r[:, None] == r, np.minimum.outer(c, c) + 1, 0)
         + 7.0 * np.where(c[:, None] == c, rows - np.maximum.outer(r, r), 0))
    dense = sum(solver.cell_space.wire_drops(currents))
    monkeypatch.setattr(cell_space, "DENSE_LINES", 0)
    summed = sum(solver.cell_space.wire_drops(currents))
    assert np.allclose(dense, currents @ z, rtol=1e-13, atol=1e-13)
    assert np.allclose(summed, currents @ z, rtol=1e-13, atol=1e-13)


def test_unconverged_solve_raises_naming_tile_and_iterations(models, inputs):
    tile = NonlinearTile(models["sinh-strong"], r_row=10.0, r_col=10.0, name="tile (0, 1)")
    with pytest.raises(ConvergenceError, match=r"tile \(0, 1\).*sinh cells.*after 1 Newton iterations"):
        NonlinearSolver(tile, NewtonOptions(max_iterations=1)).solve(inputs)


def test_deck_renders_each_model(models):
    decks = {k: nonlinear_deck(NonlinearTile(models[k], r_row=1.0, r_col=1.0)) for k in ("sinh", "1t1r", "mtj")}
    assert "Bcell0_0 wl0_0 cm0_0 I=" in decks["sinh"] and "sinh(V(wl0_0,cm0_0)/0.1)" in decks["sinh"]
    assert ".model nmos1t0 nmos level=1 vto=0.5" in decks["1t1r"] and "Mcell4_3 wl4_3 gate0 cm4_3" in decks["1t1r"]
    assert "Bmtj" in decks["mtj"] and "Rmtj" in decks["mtj"]
    assert all(d.rstrip().endswith(".end") and ".op" in d for d in decks.values())


# -- circuitsim simulate ----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, inputs):
    cells = tmp_path / "cells.npz"
    np.savez(cells, model="sinh", i0=np.full(SHAPE, 1e-6), v0=0.1, r_series=1e3)
    x = tmp_path / "x.npy"
    np.save(x, inputs)
    return cells, x


@pytest.mark.parametrize("engine", ["native", pytest.param("ngspice", marks=pytest.mark.ngspice)])
def test_simulate_command_writes_output_currents(engine, files, tmp_path, inputs, capsys):
    cells, x = files
    out = tmp_path / "y.npz"
    assert main(["simulate", "--cells", str(cells), "--inputs", str(x), "--r-row", "2", "--r-col", "3",
                 "--engine", engine, "--out", str(out)]) == 0
    with np.load(out) as y:
        currents = y["output_currents"]
        assert str(y["engine"]) == engine and str(y["model"]) == "sinh"
    assert currents.shape == (len(inputs), SHAPE[1])
    expected = simulate_cells(load_cells(cells), inputs, r_row=2.0, r_col=3.0).output_currents
    assert np.allclose(currents, expected, rtol=1e-6, atol=0)
    assert "tile 5x4 sinh cells" in capsys.readouterr().out
    assert main(["simulate", "--cells", str(cells), "--inputs", str(x), "--r-row", "2", "--r-col", "3",
                 "--r-sense", "1000", "--engine", engine, "--out", str(out)]) == 0
    with np.load(out) as y:
        sensed = simulate_cells(load_cells(cells), inputs, r_row=2.0, r_col=3.0, r_sense=1e3).output_currents
        assert np.allclose(y["output_currents"], sensed, rtol=1e-6, atol=0)
    assert not np.allclose(sensed, expected, rtol=1e-3, atol=0)


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("no-model", "no 'model' entry"),
    ("unknown", "unknown cell model 'rram'"),
    ("negative-v0", "v0 = -0.1 V is not physical"),
    ("extra", "have no parameter 'g'"),
    ("shape", "inputs must be vectors x 5 volts"),
    ("nan-input", "inputs must be finite"),
    ("r-row", "r_row (ohm) must be a finite value >= 0, got -1.0"),
    ("r-sense", "r_sense (ohm) must be a finite value >= 0, got -5.0"),
])
def test_simulate_bad_input_is_one_line_and_writes_nothing(case, message, files, tmp_path, capsys):
    cells, x = files
    if case == "missing":
        cells = tmp_path / "nothing.npz"
    elif case == "no-model":
        np.savez(cells, i0=1e-6, v0=0.1)
    elif case == "unknown":
        np.savez(cells, model="rram", g=np.ones(SHAPE))
    elif case == "negative-v0":
        np.savez(cells, model="sinh", i0=np.full(SHAPE, 1e-6), v0=-0.1)
    elif case == "extra":
        np.savez(cells, model="sinh", i0=np.full(SHAPE, 1e-6), v0=0.1, g=1.0)
    elif case == "shape":
        np.save(x, np.zeros((2, 3)))
    elif case == "nan-input":
        np.save(x, np.full((2, SHAPE[0]), np.nan))
    out = tmp_path / "y.npz"
    argv = ["simulate", "--cells", str(cells), "--inputs", str(x), "--out", str(out)]
    if case in ("r-row", "r-sense"):
        argv += [f"--{case}", "-1" if case == "r-row" else "-5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.ngspice
def test_docs_example_runs(capsys):
    page = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "nonlinear-cells.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) == 2  # a tile, and an imac-sim layer circuit
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "__example__"})
        iterations, difference = capsys.readouterr().out.rsplit("]", 1)
        assert float(difference) < 1e-10 and min(int(k) for k in iterations.strip("[ ").split()) >= 1


@pytest.mark.parametrize("cell_iterations", [0, 2])
def test_vectors_stopped_early_in_cell_space_finish_on_the_grid(cell_iterations, monkeypatch):
    """Strongly nonlinear cells (v0 = 0.05 V at 0.8 V inputs) stopped in cell space before they
    converge continue with exact steps from the nearer of where they stopped and the linear
    solution, and reach the answer the cell space gives alone."""
    rng = np.random.default_rng(3)
    cells = map_conductance(SinhCell(i0=1.0, v0=0.05, r_series=1e3), rng.uniform(1e-5, 2e-5, (60, 40)), 0.8)
    tile = NonlinearTile(cells, r_row=10.0, r_col=10.0)
    x = 0.8 * (rng.random((3, 60)) < 0.6)
    reference = NonlinearSolver(tile).solve(x)
    monkeypatch.setattr(cell_space, "CELL_ITERATIONS", cell_iterations)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from a state far off
        result = NonlinearSolver(tile).solve(x)
    scale = np.abs(reference.output_currents).max()
    assert np.abs(result.output_currents - reference.output_currents).max() <= 1e-9 * scale
    assert np.all(result.iterations > cell_iterations)


def test_strongly_nonlinear_inputs_above_v_read_converge_in_cell_space():
    """ReLU activations above 1 drive sinh cells (v0 = 0.05 V) far beyond the read voltage, as
    on LeNet-5's convolution tiles: from the linear solution every vector converges in cell space
    (none is left to the grid's steps), to the answer of the grid's steps alone."""
    rng = np.random.default_rng(5)
    cells = map_conductance(SinhCell(i0=1.0, v0=0.05, r_series=1e3), rng.uniform(1e-6, 1e-5, (76, 32)), 0.8)
    tile = NonlinearTile(cells, r_row=4.9, r_col=4.9)
    x = 0.8 * rng.uniform(0.0, 2.5, (24, 76)) * (rng.random((24, 76)) < 0.5)
    solver = NonlinearSolver(tile)
    _, _, converged = solver.cell_space.newton(x)
    assert converged.all()
    grid = NonlinearSolver(tile)
    grid.cell_space = None  # the exact grid steps alone
    expected = grid.solve(x).output_currents
    got = solver.solve(x).output_currents
    assert np.abs(got - expected).max() <= 1e-9 * np.abs(expected).max()
