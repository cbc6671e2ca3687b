"""Spiking networks on the crossbars: LIF neurons, encodings, early stop (issue 28).

Small problems only: scikit-learn digits at 8 × 8, a 64-32-10 ReLU MLP, a few time steps.
The dynamics against Brian2 are in test_spiking_brian2.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import device_preset, wire_preset
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.network.network import Network
from circuitsim.network.spiking import SpikingConfig, SpikingNetwork, encode, evaluate_mapped
from circuitsim.tile.tile_cache import TileCache

DEVICE = dataclasses.replace(device_preset("rram-zhang2020"), levels=16)
IF = SpikingConfig.preset("if")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=8, test_fraction=0.3)


@pytest.fixture(scope="module")
def mlp(digits):
    return train_mlp(digits, MLPConfig(layers=(64, 32, 10), activation="relu", epochs=15, seed=0))


def _one_neuron(current, **neuron):
    """Spikes and scores of one Dense(1 → 1) neuron (weight 1) fed ``current`` (steps,) by direct current."""
    net = Network([Dense(np.ones((1, 1)), scale=1.0)], (1,))
    config = SpikingConfig(time_steps=len(current), encoding="current", **neuron)
    steps = iter(current)
    mac = lambda k, rows: np.full((len(rows), 1), next(steps))  # noqa: E731 - the input of each step
    run = SpikingNetwork(net, config).run(np.ones((1, 1)), mac, record=True)
    return run.spikes[0][:, 0, 0].astype(int).tolist(), run


def test_lif_neuron_follows_hand_worked_steps():
    # leak 0.5, threshold 1, input 0.6: v = 0.6, 0.9, 1.05 (fires, to 0), 0.6, 0.9, 1.05 ...
    assert _one_neuron([0.6] * 6, leak=0.5)[0] == [0, 0, 1, 0, 0, 1]
    # by subtraction: 1.05 - 1 = 0.05 stays: 0.625, 0.9125, 1.05625 (fires) -> 0.05625, ...
    assert _one_neuron([0.6] * 6, leak=0.5, reset="subtract")[0] == [0, 0, 1, 0, 0, 1]
    # no leak, subtraction: v = 0.6, 1.2 (fires, 0.2), 0.8, 1.4 (0.4), 1.0 (not > 1), 1.6 (fires)
    assert _one_neuron([0.6] * 6, reset="subtract")[0] == [0, 1, 0, 1, 0, 1]
    # two refractory steps: the neuron holds v = 0 and ignores 2.0 twice after every spike
    assert _one_neuron([2.0] * 7, refractory=2)[0] == [1, 0, 0, 1, 0, 0, 1]
    # a time constant of tau steps keeps exp(-1/tau) of v per step: input 1 then nothing
    spikes, run = _one_neuron([0.9, 0.0, 0.0], tau=2.0, threshold=5.0, score="potential")
    assert run.scores[0, 0] == pytest.approx(0.9 * np.exp(-1 / 2) ** 2, rel=1e-12)


def test_encodings():
    x = np.array([[0.0, 0.25, 0.5, 1.0]] * 4000)
    rate = encode(SpikingConfig(encoding_seed=3), x)
    draws = np.stack([rate(t) for t in range(4)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert np.allclose(draws.mean(axis=(0, 1)), x[0], atol=0.01)
    again = encode(SpikingConfig(encoding_seed=3), x)
    assert np.array_equal(again(0), draws[0]) and not np.array_equal(encode(SpikingConfig(encoding_seed=4), x)(0),
                                                                      draws[0])
    latency = encode(SpikingConfig(encoding="latency", time_steps=5), x[:1])
    trains = np.stack([latency(t)[0] for t in range(5)])  # steps × pixels
    assert trains.sum(axis=0).tolist() == [0, 1, 1, 1]  # the dark pixel never fires, the others once
    assert np.argmax(trains[:, 1:], axis=0).tolist() == [3, 2, 0]  # round((1 - p) · 4): brighter fires first
    current = encode(SpikingConfig(encoding="current"), x)
    assert np.array_equal(current(7), x)


def test_the_snn_of_a_trained_relu_mlp_classifies(digits, mlp):
    ann = mlp.accuracy(digits.x_test, digits.y_test)
    for config in (IF.replace(time_steps=24), IF.replace(encoding="current"), IF.replace(score="potential")):
        assert ann - 0.12 < SpikingNetwork(mlp, config).accuracy(digits.x_test, digits.y_test) <= 1.0


def test_early_stop_stops_at_the_first_step_with_the_margin(digits, mlp):
    config = IF.replace(time_steps=20, early_stop_margin=2.0)
    snn = SpikingNetwork(mlp, config)
    full = snn.run(digits.x_test, record=True, early_stop=False)
    early = snn.run(digits.x_test)
    assert np.array_equal(SpikingNetwork(mlp, config.replace(early_stop_margin=0.0)).run(digits.x_test).scores,
                          full.scores)  # margin 0: off
    counts = np.cumsum(full.spikes[-1], axis=0)  # steps × images × classes, the run without stop
    top = np.sort(counts, axis=2)
    clear = top[:, :, -1] - top[:, :, -2] > 2.0
    first = np.where(clear.any(axis=0), np.argmax(clear, axis=0) + 1, 20)
    assert np.array_equal(early.steps, first)
    stopped = early.steps < 20
    assert 0.3 < stopped.mean() and early.computation_saved == pytest.approx(1 - first.mean() / 20)
    assert np.array_equal(early.scores, counts[first - 1, np.arange(len(first))])
    assert abs(early.accuracy(digits.y_test) - full.accuracy(digits.y_test)) < 0.05


def test_on_ideal_tiles_the_spikes_are_the_float_networks(digits, mlp):
    mapped = map_network(mlp, [Partition(2, 1), Partition(1, 1)], CircuitConfig(device=DEVICE), TileCache())
    snn = SpikingNetwork(mapped.network, IF.replace(time_steps=8))
    x = digits.x_test[:100]
    on_tiles = snn.run(x, mapped.layer_mac, record=True)
    floating = SpikingNetwork(mlp, IF.replace(time_steps=8)).run(x, record=True)
    agree = [np.mean(a == b) for a, b in zip(on_tiles.spikes, floating.spikes)]
    assert min(agree) > 0.999, agree
    result = evaluate_mapped(mapped, IF.replace(time_steps=8), x, digits.y_test[:100])
    assert result["accuracy"] == on_tiles.accuracy(digits.y_test[:100]) and result["steps_mean"] == 8


def test_read_noise_is_drawn_anew_every_step(digits):
    net = Network([Dense(np.random.default_rng(0).uniform(-1, 1, (64, 10)), scale=1.0)], (64,))
    stats = DeviceStatistics(read_noise=0.05)
    mapped = map_network(net, [Partition()], CircuitConfig(device=dataclasses.replace(DEVICE, statistics=stats)),
                         TileCache())
    quiet = map_network(net, [Partition()], CircuitConfig(device=DEVICE), TileCache())
    x = digits.x_test[:50]
    sums = []
    config = SpikingConfig(time_steps=6, encoding="current", score="potential", threshold=1e9)
    SpikingNetwork(net, config).run(x, lambda k, rows: sums.append(mapped.layer_mac(k, rows)) or sums[-1])
    exact = quiet.layer_mac(0, x)
    noise = np.stack(sums) - exact  # steps × images × outputs: the same inputs every step
    assert np.all(np.abs(noise[1:] - noise[:1]).max(axis=(1, 2)) > 0)  # a new draw every step
    sigma = np.sqrt(mapped.crossbars[0].read_noise.variance(x))
    z = noise / sigma
    assert 0.8 < z.std() < 1.2 and abs(z.mean()) < 0.1


def test_energy_counts_the_steps_each_image_used(digits):
    net = Network([Dense(np.random.default_rng(1).uniform(-1, 1, (64, 10)), np.zeros(10), scale=1.0)], (64,))
    mapped = map_network(net, [Partition()], CircuitConfig(device=DEVICE, wires=wire_preset("imac-14nm")),
                         TileCache())
    x, y = digits.x_test[:40], digits.y_test[:40]
    one = mapped.energy_per_inference(x)["crossbar_energy"]  # one read of every image at x · v_read
    config = SpikingConfig(time_steps=5, encoding="current", score="potential")
    assert evaluate_mapped(mapped, config, x, y)["crossbar_energy"] == pytest.approx(5 * one, rel=1e-12)
    early = evaluate_mapped(mapped, config.replace(early_stop_margin=0.5), x, y)
    assert early["steps_mean"] < 5
    assert early["crossbar_energy"] < 5 * one and early["computation_saved"] == pytest.approx(
        1 - early["steps_mean"] / 5)


def test_adc_ranges_are_calibrated_on_the_spikes(digits, mlp):
    from circuitsim.periphery.adc import ADCConfig

    adc = ADCConfig.preset("sar", bits=6, v_min=-1.0, v_max=1.0)
    circuit = CircuitConfig(device=DEVICE, wires=wire_preset("imac-14nm"), adc=adc)
    config = IF.replace(time_steps=12)
    mapped = map_network(mlp, [Partition(1, 1), Partition(1, 1)], circuit, TileCache(),
                         x_calibration=digits.x_train[:128], spiking=config)
    analog = map_network(mlp, [Partition(1, 1), Partition(1, 1)], dataclasses.replace(circuit, adc=None), TileCache())
    without = evaluate_mapped(analog, config, digits.x_test, digits.y_test)
    result = evaluate_mapped(mapped, config, digits.x_test, digits.y_test)
    assert abs(result["accuracy"] - without["accuracy"]) < 0.04 and result["adc_energy"] > 0 == without["adc_energy"]
    # the hidden layer reads spikes: its ADC's range fits sums of 0/1 inputs, not ReLU activations
    ann = map_network(mlp, [Partition(1, 1), Partition(1, 1)], circuit, TileCache(),
                      x_calibration=digits.x_train[:128])
    assert mapped.crossbars[1].blocks[0].adc.config.v_max != ann.crossbars[1].blocks[0].adc.config.v_max


@pytest.mark.parametrize("change, message", [
    ({"threshold": 0.0}, r"network.threshold must be a number in \(0, inf\]"),
    ({"threshold": -1}, "network.threshold"),
    ({"leak": 0.0}, r"network.leak must be a number in \(0, 1\]"),
    ({"leak": 1.5}, "network.leak"),
    ({"time_steps": 0}, "network.time_steps must be an integer >= 1"),
    ({"refractory": -1}, "network.refractory"),
    ({"encoding": "phase"}, "network.encoding must be one of rate, current, latency"),
    ({"reset": "half"}, "network.reset"),
    ({"score": "rate"}, "network.score"),
    ({"early_stop_margin": -1.0}, "network.early_stop_margin"),
    ({"tau": 0.0}, "network.tau"),
    ({"tau": 3.0, "leak": 0.5}, "not both"),
])
def test_bad_neuron_fields_are_one_line(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        SpikingConfig(**change)
    assert "\n" not in str(info.value)


def test_a_spiking_network_has_dense_layers_on_flat_inputs():
    conv = Network([Conv2d(np.ones((2, 1, 3, 3))), Flatten(), Dense(np.ones((8, 2)))], (1, 4, 4))
    with pytest.raises(ConfigError, match="Dense layers only"):
        SpikingNetwork(conv, IF)
    net = Network([Dense(np.ones((4, 2))), Activation("relu")], (4,))
    with pytest.raises(ConfigError, match=r"intensities in \[0, 1\]"):
        SpikingNetwork(net, IF).run(np.full((1, 4), 2.0))


# -- [network] kind = "snn" in specs ---------------------------------------------------------------

SPEC = """
title = "spiking, small"
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
kind = "snn"
layers = [64, 32, 10]
weights = "float"
epochs = 15
time_steps = 12
leak = 1.0
reset = "subtract"
threshold = 1.0
[device]
preset = "rram-zhang2020"
levels = 16
read_noise = 0.02
[wires]
preset = "imac-14nm"
[sweep]
"network.early_stop_margin" = [0.0, 2.0]
partitions = [{h = [2, 1], v = [1, 1]}]
"""


def test_snn_points_report_steps_computation_saved_and_energy(tmp_path):
    from circuitsim.study.spec import parse_spec
    from circuitsim.study.sweep import run_sweep

    text = SPEC.replace('weights = "float"', 'weights = "random"\ntraining = "none"\nkeep = 0.5')
    spec = parse_spec(SPEC + '"network.weights" = ["float"]\n')
    random = parse_spec(text)
    run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda s: None)
    run_sweep(random, tmp_path / "random", cache_dir=tmp_path / "cache", log=lambda s: None)
    import pandas as pd

    csv = pd.read_csv(tmp_path / "out" / "results.csv").set_index("early_stop_margin")
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    full, early = csv.loc[0.0], csv.loc[2.0]
    assert full["steps_mean"] == 12 and full["computation_saved"] == 0 and full["time_steps"] == 12
    assert early["steps_mean"] < 12 and early["computation_saved"] == pytest.approx(1 - early["steps_mean"] / 12)
    assert early["energy_per_inference"] < full["energy_per_inference"]
    assert full["accuracy"] > 0.6 and abs(early["accuracy"] - full["accuracy"]) < 0.08
    assert full["digital_accuracy"] > 0.6
    rand = pd.read_csv(tmp_path / "random" / "results.csv")
    assert (rand["status"] == "ok").all() and set(rand["connected"]) == {0.5}


@pytest.mark.parametrize("change, message", [
    ("threshold = 0.0", r"network.threshold must be a number in \(0, inf\]"),
    ("leak = 1.5", r"network.leak must be a number in \(0, 1\]"),
    ("leak = 0.0", r"network.leak must be a number in \(0, 1\]"),
    ("time_steps = 0", "network.time_steps must be an integer >= 1"),
    ('encoding = "latency"\n[dataset]\nbinarize = true', "cannot encode a binarized dataset"),
    ('encoding = "phase"', "network.encoding must be one of rate, current, latency"),
    ("time_steps = 2.5", "network.time_steps must be an integer"),
    ("keep = 0.5", "applies only to a random network"),
    ("kernel = 3", r"does not apply to a \[network\] of kind 'snn'"),
])
def test_bad_snn_fields_are_refused_in_one_line(change, message):
    from circuitsim.study.spec import parse_spec

    key = change.split(" ")[0]
    lines = [line for line in SPEC.splitlines() if not line.startswith(f"{key} =")]
    text = "\n".join(lines).replace("[device]", change + "\n[device]" if "[dataset]" not in change else "[device]")
    if "[dataset]" in change:
        first, _, dataset = change.partition("\n[dataset]\n")
        text = text.replace("[device]", first + "\n[device]").replace("test_fraction = 0.3", f"test_fraction = 0.3\n{dataset}")
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert re.search(message, str(info.value)) and "\n" not in str(info.value)


def test_validation_refuses_a_spiking_network_before_anything_runs(tmp_path):
    from circuitsim.study.spec import parse_spec
    from circuitsim.study.validation import run_validation

    with pytest.raises(ConfigError, match="transient runs from Python"):
        run_validation(parse_spec(SPEC), tmp_path / "out", n_images=2, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_docs_page_example_runs_and_quotes_the_shipped_spec(tmp_path, capsys, monkeypatch):
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "tutorials" / "spiking.md").read_text()
    python = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    toml = re.findall(r"```toml\n(.*?)```", page, flags=re.S)
    assert len(python) == 2 and len(toml) == 1  # the second: test_spiking_circuit.py
    quoted, shipped = tomllib.loads(toml[0]), tomllib.loads((root / "examples" / "snn.toml").read_text())
    for section, table in quoted.items():  # every quoted key is the example's
        assert {k: shipped[section][k] for k in table} == table, section
    monkeypatch.chdir(tmp_path)
    exec(compile(python[0], "<docs/tutorials/spiking.md>", "exec"), {"__name__": "__example__"})
    out = capsys.readouterr().out
    found = re.findall(r"margin (\S+): accuracy (\S+), steps (\S+), saved", out)
    assert len(found) == 2 and float(found[0][2]) == 16 and float(found[1][2]) < 16
    assert float(found[0][1]) > 0.6


# -- surrogate-gradient training through time ------------------------------------------------------


def test_surrogate_training_through_time_beats_the_converted_weights(digits, tmp_path):
    from circuitsim.network.spiking_training import load_or_train_surrogate, train_surrogate

    float_mlp = train_mlp(digits, MLPConfig(layers=(64, 32, 10), activation="relu", weights="float", epochs=15))
    for config in (IF.replace(time_steps=6), SpikingConfig.preset("lif").replace(time_steps=6, score="potential")):
        before = SpikingNetwork(float_mlp, config).accuracy(digits.x_test, digits.y_test)
        tuned = train_surrogate(digits, float_mlp, config, epochs=5)
        assert max(np.abs(w).max() for w in tuned.weights) <= 1.0  # the device's range
        assert SpikingNetwork(tuned, config).accuracy(digits.x_test, digits.y_test) > before + 0.02, config.score
    cached = load_or_train_surrogate(digits, float_mlp, IF.replace(time_steps=6), 5, tmp_path)
    again = load_or_train_surrogate(digits, float_mlp, IF.replace(time_steps=6, early_stop_margin=1.0), 5, tmp_path)
    assert len(list(tmp_path.glob("snn-*.npz"))) == 1  # early stop does not change what is trained
    assert all(np.array_equal(a, b) for a, b in zip(cached.weights, again.weights))
    with pytest.raises(ConfigError, match="fine-tunes float weights"):
        train_surrogate(digits, train_mlp(digits, MLPConfig(layers=(64, 32, 10), epochs=1)), IF, epochs=1)


def test_surrogate_epochs_in_a_spec(tmp_path):
    import pandas as pd

    from circuitsim.study.spec import parse_spec
    from circuitsim.study.sweep import run_sweep

    text = SPEC.replace("time_steps = 12", "time_steps = 6").replace(
        '"network.early_stop_margin" = [0.0, 2.0]', '"network.surrogate_epochs" = [0, 5]')
    run_sweep(parse_spec(text), tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda s: None)
    csv = pd.read_csv(tmp_path / "out" / "results.csv").set_index("surrogate_epochs")
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    assert csv.loc[5, "digital_accuracy"] > csv.loc[0, "digital_accuracy"]
    random = text.replace('weights = "float"', 'weights = "random"\ntraining = "mask"\nkeep = 0.5').replace(
        '"network.surrogate_epochs" = [0, 5]', '"network.surrogate_epochs" = [3]')
    run_sweep(parse_spec(random), tmp_path / "random", cache_dir=tmp_path / "cache", log=lambda s: None)
    assert (pd.read_csv(tmp_path / "random" / "results.csv")["status"] == "ok").all()
    assert len(list((tmp_path / "cache" / "networks").glob("snn-random-*.npz"))) == 1
    for change, message in (('weights = "binary"', "fine-tunes float weights"),
                            ('weights = "random"', "drawn, not programmed"),
                            ('weights = "random"\ntraining = "none"', "drawn, not programmed")):
        with pytest.raises(ConfigError, match=message):
            parse_spec(text.replace('weights = "float"', change))


def test_the_mask_of_a_random_network_trained_through_time(digits, tmp_path):
    from circuitsim.network.random_weights import RandomNetworkConfig, build, draw_conductances
    from circuitsim.network.spiking_training import load_or_train_mask_surrogate

    net = build(digits, RandomNetworkConfig(layers=(64, 32, 10), activation="relu", training="mask", keep=0.5,
                                            epochs=10), DEVICE)
    config = IF.replace(time_steps=6)
    tuned = load_or_train_mask_surrogate(digits, net, config, 20, tmp_path)
    assert SpikingNetwork(tuned, config).accuracy(digits.x_test, digits.y_test) > \
        SpikingNetwork(net, config).accuracy(digits.x_test, digits.y_test) + 0.03
    drawn = draw_conductances(net.random, DEVICE)
    for g, cells, mask in zip(drawn, tuned.conductances, tuned.masks):
        assert abs(mask.mean() - 0.5) < 0.01
        kept = np.repeat(mask, 2, axis=1)
        assert np.array_equal(cells[kept], g[kept]) and np.all(cells[~kept] == 0)  # cells never change
    assert any(not np.array_equal(a, b) for a, b in zip(tuned.masks, net.masks))
    assert len(list(tmp_path.glob("snn-random-*.npz"))) == 1
