"""Analog neurons: the shipped BSIM4 card, transfer curves by ngspice, the amplifier mapping."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.periphery.neurons import (
    Neuron,
    design_neuron,
    extract_curve,
    model_card,
)

#: largest |behavioural - transistor| over u in [-1.2, 1.2] V (sigmoid swing is ~1.54 V)
SIGMOID_TOLERANCE = 0.030
RELU_TOLERANCE = 0.010


@pytest.fixture(scope="module")
def curves():
    return {(kind, model): extract_curve(Neuron(kind=kind, model=model))
            for kind in ("sigmoid", "relu") for model in ("transistor", "behavioural")}


def test_model_card_is_documented_generic_bsim4():
    card = model_card()
    assert "GENERIC ILLUSTRATIVE CARD - NOT A FOUNDRY MODEL" in card
    for text in (".model nch nmos level=54", ".model pch pmos level=54", "vth0=0.40", "vth0=-0.40",
                 "toxe=", "u0=", "vsat="):
        assert text in card


def test_bad_neuron_is_a_config_error():
    with pytest.raises(ConfigError, match="kind"):
        Neuron(kind="tanh")
    with pytest.raises(ConfigError, match="model"):
        Neuron(model="spice")
    with pytest.raises(ConfigError, match="r_in"):
        Neuron(r_in=0.0)
    with pytest.raises(ConfigError, match="v_ss"):
        Neuron(v_ss=0.5)


def test_neuron_lines_name_their_elements():
    sig = Neuron(offset=0.1).lines("1_2", "d", "o")
    assert sig[0] == "Voff1_2 nu1_2 d DC 0.1"
    assert any(ln.startswith("Mnp1_2 o nx1_2 nvdd nvdd pch") for ln in sig)
    assert any(ln.startswith("Mnn1_2 o nx1_2 nvss nvss nch") for ln in sig)
    assert Neuron(kind="relu").supplies == {"Vnvdd": 0.8}
    assert Neuron(model="behavioural").supplies == {}
    assert Neuron(model="behavioural").lines("0", "a", "b")[1].startswith("Bn0 b 0 V = ")


@pytest.mark.ngspice
def test_sigmoid_curve_is_monotonic_and_saturating(curves):
    c = curves["sigmoid", "transistor"]
    assert len(c.u) == 1201 and c.u[0] == pytest.approx(-1.2) and c.u[-1] == pytest.approx(1.2)
    inside = np.abs(c.u) <= 0.9  # the amplifier rails +-0.8 V plus the offset
    assert np.all(np.diff(c.v[inside]) < 0)  # an inverting stage
    slope = np.gradient(c.v, c.u)
    assert slope.min() < -2.0  # about -r_feedback / r_in near the centre
    assert np.abs(slope[np.abs(c.u + 0.9) < 0.01]).max() < 0.05 * abs(slope.min())
    assert np.abs(slope[np.abs(c.u - 0.9) < 0.01]).max() < 0.05 * abs(slope.min())
    assert c(-0.9) > 0.7 and c(0.9) < -0.7  # close to the +-0.8 V rails
    assert c.supply_power.max() < 1e-3  # shoot-through of one inverter, W


@pytest.mark.ngspice
def test_relu_curve_is_off_then_follows(curves):
    c = curves["relu", "transistor"]
    assert np.all(np.diff(c.v) >= 0)
    assert np.abs(c.v[c.u <= 0]).max() < 1e-3
    slope = np.gradient(c.v, c.u)
    assert 0.5 < slope[np.abs(c.u - 0.9) < 0.01].mean() < 1.0  # a source follower with body effect


@pytest.mark.ngspice
@pytest.mark.parametrize("kind,tolerance", [("sigmoid", SIGMOID_TOLERANCE), ("relu", RELU_TOLERANCE)])
def test_behavioural_neuron_matches_transistor_neuron(curves, kind, tolerance):
    t, b = curves[kind, "transistor"], curves[kind, "behavioural"]
    assert np.abs(b.v - t.v).max() < tolerance


@pytest.mark.ngspice
def test_sigmoid_design_approximates_the_trained_sigmoid(curves):
    gain = 0.2
    d = design_neuron(curves["sigmoid", "transistor"], "sigmoid", gain)
    assert d.rms_error < 0.01
    z = np.linspace(-5, 5, 101)
    h = d.activation(z / gain)
    assert np.abs(h - 1 / (1 + np.exp(-z))).max() < 0.03
    assert np.all(np.diff(h) > 0)
    assert d.activation(-1e3) == pytest.approx(0.0, abs=1e-12)  # amplifier at its rail
    assert d.activation(1e3) == pytest.approx(1.0, abs=1e-12)
    assert d.volts_per_unit < 0 and abs(d.offset) < 0.2  # inverting neuron, small offset
    assert d.neuron.offset == d.offset


@pytest.mark.ngspice
def test_relu_design_approximates_the_trained_relu(curves):
    d = design_neuron(curves["relu", "transistor"], "relu", 0.5)
    assert d.rms_error < 0.05
    assert d.activation(-2.0) == pytest.approx(0.0, abs=0.02)
    assert d.activation(2.0) == pytest.approx(1.0, abs=0.1)


@pytest.mark.ngspice
def test_design_refuses_a_curve_too_narrow(curves):
    narrow = extract_curve(Neuron(), u_min=-0.3, u_max=0.3, step=0.01)
    with pytest.raises(ConfigError, match="wider curve"):
        design_neuron(narrow, "sigmoid", 0.2)


@pytest.mark.ngspice
def test_subprocess_backend_gives_the_same_curve(curves):
    c = extract_curve(Neuron(), step=0.05, backend="subprocess")
    ref = curves["sigmoid", "transistor"]
    assert np.abs(c.v - ref(c.u)).max() < 1e-5
