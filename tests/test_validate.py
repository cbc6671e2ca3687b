"""Whole-circuit ngspice runs against the evaluator with extracted neuron curves.

The small network: scikit-learn digits at 8 × 8, binary 64-16-10, SOT-MRAM cells, 2 Ω wire
segments, three partitionings, 30 test images. Measured: 30 of 30 images agree (100 %) at
every point, last-layer outputs within 0.1 mV; the test asks for >= 95 %.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from circuitsim.cli import main as cli_main
from circuitsim.errors import ConfigError, ConvergenceError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLP, MLPConfig
from circuitsim.study.points import PointContext
from circuitsim.study.spec import build_circuit_config, parse_spec
from circuitsim.study.validation import NeuronMLP, design_network, run_validation
from circuitsim.study.whole_circuit import (
    FullCircuitConfig,
    network_deck,
    simulate_network,
)

SPEC = """
title = "small whole-circuit validation"
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
layers = [64, 16, 10]
epochs = 40
[device]
preset = "sot-mram-amin2022"
[wires]
r_row = 2.0
r_col = 2.0
[sweep]
partitions = [{h = [1, 1], v = [1, 1]}, {h = [4, 2], v = [2, 2]}, {auto = 16}]
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def setup(cache):
    """Network, data, circuit and neuron designs of the 4-2 / 2-2 point."""
    context = PointContext(cache)
    point = parse_spec(SPEC).points()[1]
    circuit = build_circuit_config(point.config)
    net, _ = context.network(point.config)
    data = context.dataset(point.config)
    mapped = map_network(net, point.partitions, circuit, context.tiles)
    designs = design_network(mapped, "transistor", data.x_train[:512])
    return net, point, circuit, data, mapped, designs


def test_deck_holds_every_tile_amplifier_and_neuron(setup):
    net, point, circuit, data, mapped, designs = setup
    deck = network_deck(mapped, designs, data.x_test[:3] * circuit.v_read)
    text = deck.text
    assert text.rstrip().endswith(".end")
    cells = re.findall(r"^R(\d+)_\d+_\d+_cell", text, re.M)
    assert cells.count("0") == 65 * 32 and cells.count("1") == 17 * 20  # every G+ and G- cell, bias rows
    assert text.count("\nBd0_") == 16 and text.count("\nBd1_") == 10  # difference amplifiers
    assert text.count("\nMnp") == 26 and text.count("\nMnn") == 26  # one inverter per neuron
    assert text.count("\nEx1_") == 16  # layer-1 input drivers from layer-0 neurons
    assert "pwl(v(idx)" in text and ".model nch nmos level=54" in text
    assert set(deck.outputs) == {0, 1} and len(deck.outputs[1]) == 10


@pytest.mark.ngspice
def test_small_network_agrees_with_the_evaluator(cache, tmp_path):
    frame = run_validation(parse_spec(SPEC), tmp_path / "out", n_images=30, cache_dir=cache, log=lambda s: None)
    csv = pd.read_csv(tmp_path / "out" / "validation.csv", dtype={"h_partitions": str, "v_partitions": str})
    assert list(csv["h_partitions"]) == ["1-1", "4-2", "5-2"]
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    for column in ("agreement", "accuracy_circuit", "accuracy_evaluator", "max_output_error", "mean_output_error",
                   "circuit_seconds", "evaluator_seconds", "energy_per_inference", "energy_crossbar"):
        assert column in csv
    assert (csv["agreement"] >= 0.95).all()
    assert (csv["max_output_error"] < 1e-3).all()  # volts
    assert (csv["n_images"] == 30).all()
    assert (csv["energy_per_inference"] > 0).all()
    np.testing.assert_allclose(csv["energy_crossbar"], csv["energy_crossbar_evaluator"], rtol=1e-3)
    assert len(frame) == 3
    assert (tmp_path / "out" / "provenance.json").is_file() and (tmp_path / "out" / "spec.toml").is_file()


@pytest.mark.ngspice
def test_dc_sweep_op_steps_and_layer_decks_agree(setup):
    net, point, circuit, data, mapped, designs = setup
    x = data.x_test[:4]
    ref = simulate_network(mapped, designs, x)
    for config in (FullCircuitConfig(analysis="op"), FullCircuitConfig(scope="layer")):
        other = simulate_network(mapped, designs, x, config)
        for k in ref.outputs:
            np.testing.assert_allclose(other.outputs[k], ref.outputs[k], atol=5e-4)
        np.testing.assert_allclose(other.power["total"], ref.power["total"], rtol=1e-3)
    volts = NeuronMLP(mapped.mlp, designs).output_voltages(x)
    np.testing.assert_allclose(ref.outputs[1], volts, atol=1e-3)


@pytest.mark.ngspice
def test_behavioural_neurons_also_agree(setup):
    net, point, circuit, data, mapped, _ = setup
    designs = design_network(mapped, "behavioural", data.x_train[:512])
    x = data.x_test[:10]
    result = simulate_network(mapped, designs, x)
    volts = NeuronMLP(mapped.mlp, designs).output_voltages(x)
    np.testing.assert_allclose(result.outputs[1], volts, atol=1e-3)
    assert np.all(result.power["neurons"] == 0)  # B-sources draw no supply


def _tiny(activation: str = "sigmoid", model: str = "transistor"):
    """A random binary 4-3-2 network, its designs and four images."""
    rng = np.random.default_rng(0)
    net = MLP([np.sign(rng.normal(size=(4, 3))), np.sign(rng.normal(size=(3, 2)))],
              [np.ones(3), -np.ones(2)], MLPConfig(layers=(4, 3, 2), activation=activation))
    parts = [Partition(1, 1), Partition(1, 1)]
    mapped = map_network(net, parts, CircuitConfig())
    designs = design_network(mapped, model, output_gain=1.0)
    return net, parts, mapped, designs, rng.integers(0, 2, size=(4, 4)).astype(float)


@pytest.mark.ngspice
def test_relu_network_agrees(tmp_path):
    net, parts, mapped, designs, x = _tiny("relu")
    assert designs[0].target == "relu" and designs[1].target == "sigmoid"
    result = simulate_network(mapped, designs, x)
    evaluator = NeuronMLP(mapped.mlp, designs)
    np.testing.assert_allclose(result.outputs[1], evaluator.output_voltages(x), atol=1e-3)
    acts, sums = evaluator.forward(x, return_preactivations=True)
    np.testing.assert_allclose(result.outputs[0], designs[0].output_voltage(sums[0]), atol=1e-3)


@pytest.mark.ngspice
def test_nonconvergent_deck_is_a_convergence_error_with_the_deck_kept(tmp_path):
    # a tiny network: ngspice tries gmin and source stepping and a transient op before
    # giving up, seconds on a small deck but much longer on a large one
    net, parts, mapped, designs, x = _tiny()
    assert simulate_network(mapped, designs, x).outputs[1].shape == (4, 2)
    # a node whose only current source flips sign with its voltage: no DC solution
    bad = FullCircuitConfig(extra_lines=("Bbad nb 0 I = 1e-3*(v(nb) > 0 ? 1 : -1)", "Rbad nb 0 1k"))
    with pytest.raises(ConvergenceError, match="deck kept in") as info:
        simulate_network(mapped, designs, x, bad, keep_dir=tmp_path)
    path = Path(str(info.value).rsplit("deck kept in ", 1)[1])
    assert path.is_file() and path.parent == tmp_path
    assert "Bbad nb 0" in path.read_text()
    assert info.value.output  # ngspice's own messages travel with the error


def test_bad_inputs_are_config_errors(setup, tmp_path):
    net, point, circuit, data, mapped, designs = setup
    with pytest.raises(ConfigError, match="images must have shape"):
        simulate_network(mapped, designs, data.x_test[:2, :10])
    with pytest.raises(ConfigError, match="scope"):
        FullCircuitConfig(scope="tile")
    with pytest.raises(ConfigError, match="images"):
        run_validation(parse_spec(SPEC), tmp_path, n_images=0)


@pytest.mark.ngspice
def test_cli_validate(cache, tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    status = cli_main(["validate", str(spec), "--images", "5", "--out", str(out), "--cache", str(cache),
                       "--points", "2", "--neuron", "behavioural"])
    assert status == 0
    frame = pd.read_csv(out / "validation.csv")
    assert list(frame["point"]) == [2] and frame["neuron"][0] == "sigmoid-behavioural"
    assert "agreement" in capsys.readouterr().out
    assert cli_main(["validate", str(spec), "--out", str(out), "--points", "7", "--cache", str(cache)]) == 2
    assert "no point 7" in capsys.readouterr().err


def test_neuron_mlp_uses_the_designs(setup):
    _, _, _, data, mapped, designs = setup
    net = NeuronMLP(mapped.mlp, designs)
    acts, sums = net.forward(data.x_test[:5], return_preactivations=True)
    np.testing.assert_allclose(acts[1], designs[0].activation(sums[0]))
    assert dataclasses.replace(mapped, network=net).network is net
