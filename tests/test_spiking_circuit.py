"""A whole spiking network's transient in one ngspice deck against the evaluator (issue 28, item 4).

A 64-16-10 network on the digits (8 × 8), RRAM cells of 16 levels with 2 % programming noise
(two horizontal partitions in the first layer), analog LIF neurons (membrane capacitor,
switched leak, comparator, latch, reset switch) after every output, the tiles as their
resistive netlists: the spikes ngspice's transient latches equal the evaluator's (the same
tiles, no ADC, no read noise, no early stop). Measured: every spike of 6 images × 8 steps
agrees (100 %: 312 spikes) with τ = 4 steps and reset to zero, and (479 spikes) with leak 0.8,
threshold 0.5 and reset by subtraction.

The programming noise matters: on cells of exactly 16 levels and binary inputs the sums are
multiples of 1/16 and an integrate-and-fire membrane often lands exactly on its threshold,
where the evaluator does not fire (``v > θ``) and the circuit's 10⁻⁴ relative error decides
(88 % of the spikes of 8 images × 16 steps agree then, integrate-and-fire with subtraction).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import device_preset
from circuitsim.errors import ConfigError, SimulationError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.network.spiking import SpikingConfig, SpikingNetwork
from circuitsim.periphery.lif import LIFCircuit
from circuitsim.study.spiking_circuit import simulate_spiking, spike_agreement, spiking_deck
from circuitsim.study.whole_circuit import FullCircuitConfig

IMAGES, STEPS = 6, 8
DEVICE = dataclasses.replace(device_preset("rram-zhang2020"), levels=16,
                             statistics=DeviceStatistics(programming_noise=0.02, seed=3))


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits", side=8, test_fraction=0.3)
    mlp = train_mlp(data, MLPConfig(layers=(64, 16, 10), activation="relu", epochs=15, seed=0))
    return data, mlp


def _mapped(setup, topology="canonical"):
    _, mlp = setup
    return map_network(mlp, [Partition(h=2, v=1), Partition()], CircuitConfig(device=DEVICE, topology=topology))


def _evaluator(mapped, config, x):
    return SpikingNetwork(mapped.network, config).run(x, lambda k, rows: mapped.layer_mac(k, rows, False),
                                                      record=True, early_stop=False)


@pytest.mark.ngspice
@pytest.mark.parametrize("neurons", [dict(tau=4.0, reset="zero"), dict(leak=0.8, threshold=0.5, reset="subtract")])
def test_network_transient_spikes_as_the_evaluator(setup, neurons, tmp_path):
    data, _ = setup
    config = SpikingConfig(time_steps=STEPS, **neurons)
    mapped = _mapped(setup)
    x = data.x_test[:IMAGES]
    result = simulate_spiking(mapped, config, x, keep_dir=tmp_path)
    run = _evaluator(mapped, config, x)
    agree = spike_agreement(result.spikes, run.spikes)
    assert agree["spikes_evaluator"] > 150 and all(s.any() for s in run.spikes)  # the layers do fire
    assert agree["agreement"] >= 0.99, agree
    assert np.array_equal(result.counts.argmax(axis=1), run.predictions)
    assert result.metadata["ngspice_version"].startswith("ngspice")


@pytest.mark.ngspice
def test_the_imac_sim_topology_spikes_as_the_evaluator(setup):
    data, _ = setup
    config = SpikingConfig(time_steps=4, tau=4.0)
    mapped = _mapped(setup, "imac-sim")
    result = simulate_spiking(mapped, config, data.x_test[:3])
    agree = spike_agreement(result.spikes, _evaluator(mapped, config, data.x_test[:3]).spikes)
    assert agree["spikes_evaluator"] > 30 and agree["agreement"] >= 0.99, agree


@pytest.mark.ngspice
def test_a_mismatched_threshold_is_seen(setup):
    """The comparison can fail: the circuit's neurons sized for threshold 1, the evaluator's at 1.5."""
    data, _ = setup
    config = SpikingConfig(time_steps=4, tau=4.0)
    mapped = _mapped(setup)
    x = data.x_test[:3]
    result = simulate_spiking(mapped, config, x)
    run = _evaluator(mapped, config.replace(threshold=1.5), x)
    assert spike_agreement(result.spikes, run.spikes)["agreement"] < 0.9


def test_deck_names_its_parameters_from_the_neuron_fields(setup):
    data, _ = setup
    config = SpikingConfig(time_steps=3, leak=0.5, threshold=2.0, reset="subtract")
    mapped = _mapped(setup)
    lif = LIFCircuit()
    deck = spiking_deck(mapped, config, data.x_test[:2], lif)
    p = deck.parameters
    area = deck.schedule.area("leak")
    assert np.isclose(np.exp(-area / (p["rleak"] * p["cmem"])), 0.5)  # β per step from the switched leak
    assert np.isclose(p["isub"] * deck.schedule.area("reset0"), lif.c_mem * lif.v_threshold)  # subtracts θ
    assert p["volts_per_unit"] == lif.v_threshold / 2.0
    assert ".param rleak = " in deck.text and ".param gin1 = " in deck.text and "Vph_read1 ph_read1 0 PULSE(" in deck.text
    assert deck.text.count("\nCm") == 26 and deck.text.count("\nBc") == 26  # a membrane and a comparator per neuron
    assert "rleak" not in spiking_deck(mapped, config.replace(leak=1.0), data.x_test[:2], lif).parameters


@pytest.mark.parametrize("change, message", [
    (dict(refractory=2), "no refractory period"),
    (dict(score="potential"), "reads spikes"),
])
def test_what_the_circuit_does_not_model_is_refused(setup, change, message):
    data, _ = setup
    config = SpikingConfig(time_steps=2, **change)
    with pytest.raises(ConfigError, match=message):
        spiking_deck(_mapped(setup), config, data.x_test[:1])


def test_bad_sizes_and_images_are_refused(setup):
    data, _ = setup
    with pytest.raises(ConfigError, match="c_mem must be a finite number > 0"):
        LIFCircuit(c_mem=0.0)
    mapped = _mapped(setup)
    with pytest.raises(ConfigError, match=r"intensities in \[0, 1\]"):
        spiking_deck(mapped, SpikingConfig(time_steps=2, encoding="current"), 2.0 * data.x_test[:1])


@pytest.mark.ngspice
def test_ngspice_errors_carry_the_deck_and_its_message(setup, tmp_path):
    data, _ = setup
    config = SpikingConfig(time_steps=2)
    bad = FullCircuitConfig(extra_lines=("Xbroken x0_0 0 nosuchcircuit",))
    with pytest.raises(SimulationError) as info:
        simulate_spiking(_mapped(setup), config, data.x_test[:1], full=bad, keep_dir=tmp_path)
    assert "nosuchcircuit" in str(info.value) and "failed-spiking.cir" in str(info.value)
    assert "Xbroken" in info.value.deck and (tmp_path / "failed-spiking.cir").read_text() == info.value.deck


@pytest.mark.ngspice
def test_the_docs_page_example_runs(capsys):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "spiking.md").read_text()
    python = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    exec(compile(python[1], "<docs/tutorials/spiking.md>", "exec"), {"__name__": "__example__"})
    found = re.findall(r"(\d+) spikes in ngspice, (\d+) in the evaluator, agreement (\S+)%", capsys.readouterr().out)
    assert len(found) == 1 and int(found[0][0]) > 50 and float(found[0][2]) >= 99.0
