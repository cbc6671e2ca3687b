"""Swing-limited TIAs and passive sense resistors (readout.py)."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.tile import native
from circuitsim.errors import ConfigError
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.extract import characterize
from circuitsim.tile.readout import (
    SwingLimitedTIA,
    characterize_sense_resistor,
    readout_deck,
    sense_resistor_circuit,
    simulate_readout,
)


@pytest.fixture
def tile(rng):
    return Tile(rng.uniform(10e-6, 100e-6, (4, 3)), r_row=5.0, r_col=5.0, c_col=1e-15)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(v_out_min=1.0, v_out_max=1.0), "v_out_min < v_out_max"),
        (dict(v_out_min=0.5, v_out_max=-0.5), "v_out_min < v_out_max"),
        (dict(gain=0), "gain must be a finite value > 0"),
        (dict(r_feedback=-1e3), "r_feedback must be a finite value > 0"),
        (dict(v_out_max=float("nan")), "v_out_min < v_out_max"),
        (dict(v_out_min="low"), "v_out_min < v_out_max"),
    ],
)
def test_swing_limited_tia_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SwingLimitedTIA(**kwargs)


def test_numpy_tia_model_clips():
    tia = SwingLimitedTIA(gain=1e9, r_feedback=1e4, v_out_min=-0.3, v_out_max=0.2)
    T = np.array([[1e-5, 2e-5], [-3e-5, 0.0]])
    out = tia.output_voltages(T, [[1.0, 1.0], [0.5, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(out, [[-0.3, 0.2], [-0.05, 0.15], [0.1, -0.3]], rtol=1e-8)
    assert tia.tia.gain == 1e9


@pytest.mark.ngspice
def test_swing_limited_tia_ngspice_matches_numpy_clipping(tile, rng):
    tia = SwingLimitedTIA(v_out_min=-0.5, v_out_max=0.4)
    deck, outputs = readout_deck(tile, tia)
    assert "Bamp0 tia0 0 V = max(-0.5, min(0.4, -100000*V(out0)))" in deck
    assert "Eamp" not in deck and outputs[0] == "v(tia0)"
    T = characterize(tile.with_wires(tia=tia.tia)).T
    V = rng.uniform(-0.6, 0.6, (12, 4))
    spice, model = simulate_readout(tile, tia, V), tia.output_voltages(T, V)
    saturated = (model <= -0.5) | (model >= 0.4)
    assert saturated.any() and (~saturated).any()
    # saturated outputs sit at the rail; the others differ only through the lost
    # virtual ground of a saturated neighbour (word-line resistance)
    np.testing.assert_allclose(spice[saturated], model[saturated], atol=1e-9)
    assert np.abs(spice - model).max() <= 1e-3 * 0.5
    assert spice.min() >= -0.5 - 1e-12 and spice.max() <= 0.4 + 1e-12
    np.testing.assert_allclose(simulate_readout(tile, tia, V[0]), spice[0], rtol=1e-12)


@pytest.mark.ngspice
def test_sense_resistor_linear_cells_fit_exactly(tile):
    r_sense = 1e3
    fit = characterize_sense_resistor(tile, r_sense, samples=32, seed=3)
    assert fit.max_rel_error < 1e-9 and fit.rms_rel_error < 1e-9
    assert not fit.T3.any()
    # exact linear T (V/V) from the native engine on the same circuit
    exact = np.array([
        native.operating_point(sense_resistor_circuit(tile, r_sense, e)).voltage([f"sns{j}" for j in range(3)])
        for e in np.eye(4)
    ]).T
    np.testing.assert_allclose(fit.T, exact, rtol=1e-9)
    np.testing.assert_allclose(fit.poly[:, 0], 1.0, rtol=1e-9)
    # the rising bit line reduces every cell's drop: smaller than the virtual-ground T
    virtual_ground = characterize(tile).T * r_sense
    assert np.all(fit.T < virtual_ground)
    assert np.abs(fit.T - virtual_ground).max() / virtual_ground.max() > 0.05
    V = np.random.default_rng(0).uniform(0, 0.5, (5, 4))
    assert fit.predict(V).shape == (5, 3) and fit.predict(V[0]).shape == (3,)
    np.testing.assert_allclose(fit.predict_current(V), V @ exact.T / r_sense, rtol=1e-9)
    assert fit.metadata["engine"] == "ngspice" and fit.metadata["held_out"] == 8


@pytest.mark.ngspice
def test_sense_resistor_sinh_cells_are_input_dependent(tile):
    deck, _ = readout_deck(tile, 1e3, cell_v0=0.25)
    assert "Bcell0_0 wl0_0 bl0_0 I = " in deck and "Rcell" not in deck
    linear = characterize_sense_resistor(tile, 1e3, samples=48, seed=1, v_max=0.3)
    sinh = characterize_sense_resistor(tile, 1e3, samples=48, seed=1, v_max=0.3, cell_v0=0.25)
    assert 1e-4 < sinh.max_rel_error < 0.05 and 1e-4 < sinh.rms_rel_error < 0.03
    assert sinh.max_rel_error > 1e4 * linear.max_rel_error
    assert sinh.metadata["cell_v0"] == 0.25 and sinh.metadata["train_max_rel_error"] > 0
    # expansive cells: large inputs give more than the linear model
    V = np.full(4, 0.3)
    assert np.all(sinh.predict(V) > linear.predict(V))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(r_sense=0.0), "r_sense must be a finite value > 0"),
        (dict(r_sense=-5.0), "r_sense must be a finite value > 0"),
        (dict(r_sense=1e3, samples=5), "samples must be an integer >= 2 \\* rows \\+ degree = 11"),
        (dict(r_sense=1e3, degree=0), "degree must be an integer >= 1"),
        (dict(r_sense=1e3, v_max=-1), "v_max must be a finite value > 0"),
        (dict(r_sense=1e3, cell_v0=-0.2), "cell_v0 must be a finite value > 0"),
    ],
)
def test_sense_resistor_rejects_bad_values(tile, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        characterize_sense_resistor(tile, **kwargs)


def test_simulate_readout_rejects_bad_inputs(tile):
    with pytest.raises(ConfigError, match=r"inputs must have shape \(4,\) or \(n, 4\)"):
        simulate_readout(tile, 1e3, np.zeros(3))
    with pytest.raises(ConfigError, match="finite"):
        simulate_readout(tile, 1e3, [0, 0, np.inf, 0])
