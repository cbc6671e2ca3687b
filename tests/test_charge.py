"""Charge-mode readout by ngspice transient (charge.py)."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.tile.charge import (
    ChargeReadout,
    characterize_charge,
    charge_characterize_from_args,
    charge_deck,
    simulate_charge,
    wire_time_constant,
)
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.extract import Characterization, characterize

T_INT, C_INT = 10e-9, 10e-12


@pytest.fixture
def tile(rng):
    return Tile(rng.uniform(10e-6, 100e-6, (4, 3)), r_row=5.0, r_col=5.0, c_row=1e-15, c_col=1e-15)


def rc_response(corners, tau):
    """Exact RC low-pass response at the last corner of a PWL input (from 0 V)."""
    y = 0.0
    for (t0, u0), (t1, u1) in zip(corners[:-1], corners[1:]):
        slope = (u1 - u0) / (t1 - t0)
        y = u1 - slope * tau + (y - u0 + slope * tau) * np.exp(-(t1 - t0) / tau)
    return y


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(t_int=-1e-9), "t_int must be a finite value > 0"),
        (dict(t_int=0.0), "t_int must be a finite value > 0"),
        (dict(c_int=-1e-12), "c_int must be a finite value > 0"),
        (dict(gain=0.0), "gain must be a finite value > 0"),
        (dict(mode="active"), "unknown charge readout mode 'active'"),
        (dict(encoding="pwm"), "unknown input encoding 'pwm'"),
        (dict(t_int=1e-9, max_step=2e-9), "shorter than one simulation step"),
        (dict(t_int=1e-9, t_edge=1e-9), "t_edge = 1e-09 s must be shorter"),
        (dict(t_edge=-1e-12), "t_edge must be a finite value > 0"),
        (dict(v_pulse="one"), "v_pulse must be a number"),
    ],
)
def test_charge_readout_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ChargeReadout(**kwargs)


def test_defaults_and_deck(tile):
    readout = ChargeReadout(t_int=T_INT, c_int=C_INT)
    assert readout.max_step is None and readout.t_edge == pytest.approx(T_INT / 1000)
    # the step is limited to t_int for the integrator on a fast tile, else to t_int / 200
    assert wire_time_constant(tile) == pytest.approx(4 * 1e-15 * 5.0 * 6 + 3 * 1e-15 * 5.0 * 10)
    assert readout.step_for(tile) == T_INT and ChargeReadout(max_step=1e-10).step_for(tile) == 1e-10
    slow = Tile(tile.conductances, r_row=5e3, r_col=5e3, c_row=1e-13, c_col=1e-13)
    assert readout.step_for(slow) == ChargeReadout(mode="passive").step_for(tile) == pytest.approx(T_INT / 200)
    assert readout.waveform(0.5) == pytest.approx([0, 0, 1e-11, 0.5, 1e-8, 0.5, 1.001e-8, 0])
    pulse = ChargeReadout(encoding="pulse", t_int=T_INT, v_pulse=0.8)
    assert pulse.waveform(-0.4) == pytest.approx([0, 0, 1e-11, -0.8, 5e-9, -0.8, 5.01e-9, 0])
    deck = charge_deck(tile, readout)
    for line in ("Vsense0 blend0 out0 DC 0", "Eamp2 int2 0 0 out2 100000", "Cint1 out1 int1 1e-11",
                 "Vin3 in3 0 DC 0 PWL(0 0 1e-11 0)", "Cbl3_2 bl3_2 0 1e-15"):
        assert line in deck
    assert "Csmp0 smp0 0 1e-11" in charge_deck(tile, ChargeReadout(mode="passive", t_int=T_INT, c_int=C_INT))


def test_bad_inputs_and_arguments(tile):
    pulse = ChargeReadout(encoding="pulse", v_pulse=0.5)
    with pytest.raises(ConfigError, match=r"\|u\| <= v_pulse = 0.5 V"):
        simulate_charge(tile, pulse, [0.6, 0, 0, 0])
    with pytest.raises(ConfigError, match=r"shape \(4,\) or \(n, 4\)"):
        simulate_charge(tile, pulse, np.zeros(5))
    with pytest.raises(ConfigError, match="unknown charge readout mode 'tia'"):
        charge_characterize_from_args(tile, "tia", T_INT, C_INT, "shared")
    with pytest.raises(ConfigError, match="c_int must be a finite value > 0"):
        charge_characterize_from_args(tile, "integrator", T_INT, -C_INT, "shared")


@pytest.mark.ngspice
def test_integrator_matches_current_mode_t(tile, tmp_path):
    result = charge_characterize_from_args(tile, "integrator", T_INT, C_INT, "shared")
    assert isinstance(result, Characterization) and result.T.shape == (3, 4)
    expected = characterize(tile).T * T_INT / C_INT
    assert np.abs(result.T - expected).max() / np.abs(expected).max() < 0.01
    md = result.metadata
    assert md["engine"] == "ngspice" and md["ngspice_version"].startswith("ngspice-")
    assert md["readout"] == "charge-integrator" and md["t_int"] == T_INT and md["c_int"] == C_INT
    assert 0 < md["settling_time_s"] < T_INT / 100 and md["superposition_max_rel_diff"] < 1e-6
    # full-scale energy ≈ sum(G) * (1 V)^2 * t_int, and the quadratic form agrees
    assert md["energy_J"] == pytest.approx(tile.conductances.sum() * T_INT, rel=0.01)
    assert np.sum(md["energy_matrix_J"]) == pytest.approx(md["energy_J"], rel=1e-6)
    assert md["energy_opamp_J"] > 0 and md["input_charge_C"] > 0
    result.save(tmp_path / "q.npz")
    assert Characterization.load(tmp_path / "q.npz").metadata["settling_time_s"] == md["settling_time_s"]


@pytest.mark.ngspice
@pytest.mark.parametrize("r_wire, c_wire", [(5.0, 1e-15), (140.0, 2.5e-15)])
def test_fast_tile_step_keeps_accuracy(tile, r_wire, c_wire):
    # the default step of a fast tile (t_int; the second one is near the limit t_int / 500)
    # gives what the step t_int / 200 gives
    tile = Tile(tile.conductances, r_row=r_wire, r_col=r_wire, c_row=c_wire, c_col=c_wire)
    fast = characterize_charge(tile, T_INT, C_INT)
    fine = characterize_charge(tile, T_INT, C_INT, max_step=T_INT / 200)
    assert fast.metadata["max_step"] == T_INT and wire_time_constant(tile) < T_INT / 500
    np.testing.assert_allclose(fast.T, fine.T, rtol=1e-6)
    for key in ("energy_J", "energy_opamp_J", "input_charge_C", "settling_time_s"):
        assert fast.metadata[key] == pytest.approx(fine.metadata[key], rel=1e-2 if "settling" in key else 1e-4)


@pytest.mark.ngspice
def test_pulse_width_encoding_is_linear(tile):
    readout = ChargeReadout(encoding="pulse", t_int=T_INT, c_int=C_INT, v_pulse=0.8)
    u = np.linspace(0.0, 0.8, 9)
    X = np.zeros((9, 4))
    X[:, 0], X[:, 3] = u, u[::-1] / 2
    out = simulate_charge(tile, readout, X).v_out
    expected = X @ (characterize(tile).T * T_INT / C_INT).T
    assert np.abs(out - expected).max() / np.abs(expected).max() < 1e-3
    # same T per equivalent volt as the amplitude encoding
    amplitude = characterize_charge(tile, T_INT, C_INT)
    pulse = characterize_charge(tile, T_INT, C_INT, encoding="pulse", v_pulse=0.8)
    np.testing.assert_allclose(pulse.T, amplitude.T, rtol=1e-3)
    assert "energy_matrix_J" not in pulse.metadata


@pytest.mark.ngspice
@pytest.mark.parametrize("backend", ["shared", "subprocess"])
def test_passive_integration_matches_rc_closed_form(backend):
    g, c_col, c_sample = 1e-4, 50e-15, 1e-12
    readout = ChargeReadout(mode="passive", t_int=20e-9, c_int=c_sample)
    result = simulate_charge(Tile([[g]], c_col=c_col, c_row=1e-15), readout, [[1.0], [0.3]], backend)
    tau = (c_col + c_sample) / g
    exact = rc_response(np.reshape(readout.waveform(1.0), (-1, 2)), tau)
    np.testing.assert_allclose(result.v_out[:, 0], [exact, 0.3 * exact], rtol=1e-4)
    # far from the ideal integrator: Q / c = G t_int / c would be 2 V
    assert exact == pytest.approx(1 - np.exp(-20e-9 / tau), rel=2e-3)


@pytest.mark.ngspice
def test_integrator_energy_closed_form():
    g = 1e-4
    readout = ChargeReadout(t_int=20e-9, c_int=1e-12)
    result = simulate_charge(Tile([[g]]), readout, [0.5])
    # ramps contribute t_edge / 3 each instead of t_edge / 2
    assert result.energy[0] == pytest.approx(g * 0.25 * (20e-9 - readout.t_edge / 3), rel=1e-4)
    assert result.input_charge[0] == pytest.approx(g * 0.5 * 20e-9, rel=1e-4)
    assert result.v_out[0, 0] == pytest.approx(g * 0.5 * 20e-9 / 1e-12, rel=1e-4)


@pytest.mark.ngspice
def test_passive_readout_compresses_and_reports_slow_settling(tile):
    result = characterize_charge(tile, T_INT, C_INT, mode="passive")
    ideal = characterize(tile).T * T_INT / C_INT
    assert np.all(result.T < ideal) and np.all(result.T > 0.5 * ideal)
    md = result.metadata
    # tau = C / sum(G) of a column is tens of ns: settling takes much longer than the window
    tau = C_INT / tile.conductances.sum(axis=0).min()
    assert 3 * tau < md["settling_time_s"] < 6 * tau
    assert md["energy_opamp_J"] == 0 and md["readout"] == "charge-passive"


@pytest.mark.ngspice
@pytest.mark.parametrize("mode, wires", [("integrator", (5.0, 1e-15)), ("integrator", (5e3, 1e-13)),
                                         ("passive", (5.0, 1e-15))])
def test_replay_matches_one_transient_per_input(tile, monkeypatch, mode, wires):
    # the unit inputs replayed natively on the full-scale run's time grid give what one ngspice
    # transient per input gives (forced by a negative tolerance), on fast and slow wires
    import circuitsim.tile.charge as charge

    tile = Tile(tile.conductances, r_row=wires[0], r_col=wires[0], c_row=wires[1], c_col=wires[1])
    replay = characterize_charge(tile, T_INT, C_INT, mode=mode)
    monkeypatch.setattr(charge, "REPLAY_TOL", -1.0)
    separate = characterize_charge(tile, T_INT, C_INT, mode=mode)
    assert replay.metadata["t_method"] == "replay" and separate.metadata["t_method"] == "transient per input"
    assert replay.metadata["replay_max_rel_diff"] < 1e-6
    np.testing.assert_allclose(replay.T, separate.T, rtol=1e-6, atol=1e-6 * np.abs(separate.T).max())
    m, m_ref = np.array(replay.metadata["energy_matrix_J"]), np.array(separate.metadata["energy_matrix_J"])
    assert np.abs(m - m_ref).max() < 1e-5 * np.abs(m_ref).max()
    for key in ("energy_J", "energy_opamp_J", "input_charge_C", "settling_time_s"):
        assert replay.metadata[key] == separate.metadata[key]
