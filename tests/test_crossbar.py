"""The canonical tile against closed forms, on both engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitsim.tile import extract as ch
from circuitsim.errors import ConfigError
from circuitsim.tile.crossbar import TIA, Tile, build_circuit
from circuitsim.tile.netlist import write_netlist

GOLDEN = Path(__file__).parent / "golden"
ENGINES = [
    "native",
    pytest.param("ngspice", marks=pytest.mark.ngspice),
]


def parallel(*r):
    return 1.0 / sum(1.0 / x for x in r)


def single_row_currents(v, g, r_row, r_col):
    """Closed-form ladder: one input, cells g[j] each to ground through r_col."""
    branch = 1.0 / g + r_col
    # impedance seen looking into the word line at segment j (towards the far end)
    z = np.zeros(len(g))
    z[-1] = r_row + branch[-1]
    for j in range(len(g) - 2, -1, -1):
        z[j] = r_row + parallel(branch[j], z[j + 1])
    currents, current = np.zeros(len(g)), v / z[0]
    for j in range(len(g)):
        node = current * (branch[j] if j == len(g) - 1 else parallel(branch[j], z[j + 1]))
        currents[j] = node / branch[j]
        current -= currents[j]
    return currents


def single_column_transfer(g, r_row, r_col, r_driver):
    """Closed-form ladder: one bit line, input i through r_driver + r_row + 1/g[i]."""
    n = len(g)
    shunt = r_driver + r_row + 1.0 / g
    up, down = np.full(n, np.inf), np.zeros(n)
    for i in range(1, n):
        up[i] = r_col + (shunt[i - 1] if np.isinf(up[i - 1]) else parallel(shunt[i - 1], up[i - 1]))
    down[-1] = r_col
    for i in range(n - 2, -1, -1):
        down[i] = r_col + parallel(shunt[i + 1], down[i + 1])
    t = np.zeros(n)
    for i in range(n):
        load = down[i] if np.isinf(up[i]) else parallel(up[i], down[i])
        current = (load / (shunt[i] + load)) / down[i]
        for k in range(i + 1, n):
            current = current * parallel(shunt[k], down[k]) / down[k]
        t[i] = current
    return t


@pytest.mark.parametrize("engine", ENGINES)
def test_zero_wire_resistance_gives_transpose(engine, rng):
    g = rng.uniform(1e-6, 1e-4, (6, 4))
    g[2, 1] = 0.0  # an open cell
    result = ch.characterize(Tile(g, c_row=1e-15, c_col=1e-15), engine=engine)
    np.testing.assert_allclose(result.T, g.T, rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("engine", ENGINES)
def test_single_row_matches_ladder(engine, rng):
    g = rng.uniform(1e-6, 1e-4, (1, 9))
    tile = Tile(g, r_row=50.0, r_col=20.0)
    currents = ch.simulate(tile, [0.7], engine=engine).output_currents
    np.testing.assert_allclose(currents, single_row_currents(0.7, g[0], 50.0, 20.0), rtol=1e-9)
    # the IR drop is large enough here that the test can fail
    assert np.abs(currents / (0.7 * g[0]) - 1).max() > 1e-3


@pytest.mark.parametrize("engine", ENGINES)
def test_single_column_matches_ladder(engine, rng):
    g = rng.uniform(1e-6, 1e-4, (8, 1))
    tile = Tile(g, r_row=30.0, r_col=40.0, r_driver=100.0)
    T = ch.characterize(tile, engine=engine).T
    np.testing.assert_allclose(T[0], single_column_transfer(g[:, 0], 30.0, 40.0, 100.0), rtol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_tia_gain(engine):
    g, v, gain, rf = 50e-6, 0.3, 1e3, 20e3
    tile = Tile([[g]], tia=TIA(gain=gain, r_feedback=rf))
    result = ch.simulate(tile, [v], engine=engine)
    v_minus = g * v / (g + (1 + gain) / rf)
    np.testing.assert_allclose(result.output_voltages, [-gain * v_minus], rtol=1e-9)
    np.testing.assert_allclose(result.output_currents, [g * (v - v_minus)], rtol=1e-9)
    # close to the ideal transimpedance -rf * g * v, but measurably not equal
    assert result.output_voltages[0] == pytest.approx(-rf * g * v, rel=2e-3)
    assert result.output_voltages[0] != pytest.approx(-rf * g * v, rel=1e-4)


def test_golden_deck_2x2():
    g = np.array([[10e-6, 20e-6], [0.0, 40e-6]])
    tile = Tile(g, r_row=2.5, r_col=3.5, c_row=1e-16, c_col=2e-16, r_driver=100.0,
                tia=TIA(gain=1e4, r_feedback=5e3))
    deck = write_netlist(build_circuit(tile, [0.2, 0.4]), options=(".op",))
    assert deck == (GOLDEN / "tile_2x2.cir").read_text()


def test_content_hash_tracks_every_parameter():
    g = np.full((2, 2), 1e-5)
    hashes = {
        Tile(g).content_hash(),
        Tile(g, r_row=1).content_hash(),
        Tile(g, r_col=1).content_hash(),
        Tile(g * 2).content_hash(),
        Tile(g, tia=TIA()).content_hash(),
    }
    assert len(hashes) == 5
    assert Tile(g.copy()).content_hash() == Tile(g).content_hash()


@pytest.mark.parametrize(
    "g, kwargs, message",
    [
        ([[1e-5, -1e-6]], {}, "negative"),
        ([[1e-5, np.nan]], {}, "finite"),
        ([1e-5, 1e-5], {}, "2-D"),
        (np.zeros((0, 3)), {}, "empty"),
        ([[1e-5]], {"r_row": -1.0}, "r_row"),
        ([[1e-5]], {"c_col": np.inf}, "c_col"),
        ([["a"]], {}, "numeric"),
    ],
)
def test_bad_tiles_are_config_errors(g, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Tile(g, **kwargs)


def test_bad_inputs_and_engine():
    tile = Tile(np.full((3, 2), 1e-5))
    with pytest.raises(ConfigError, match=r"shape \(3,\)"):
        ch.simulate(tile, [1.0, 2.0])
    with pytest.raises(ConfigError, match="unknown engine"):
        ch.characterize(tile, engine="hspice")
    with pytest.raises(ConfigError, match="TIA gain"):
        TIA(gain=0)
