"""Compensation methods: fixed point, affine correction, low-rank adapters, hardware-aware training.

The degraded point: scikit-learn digits at 8 × 8, binary 64-16-10, one tile per layer with
20 Ω wire segments (IR drop takes it from 76 % digital to 35 %). Measured there: affine
65 %, rank-2 adapters 66 %, hardware-aware fine-tuning (3 epochs) 58 %.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from circuitsim.devices import Wires
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.compensation import CompensationConfig, compensate, fit_affine, to_fixed, train_adapters
from circuitsim.network.compensation.adapters import adapter_overhead
from circuitsim.network.compensation.hardware import hardware_backward, hardware_forward
from circuitsim.network.compensation.hwa import load_or_finetune
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.tile.tile_cache import TileCache
from circuitsim.periphery.adc import ADCConfig
from circuitsim.study.spec import parse_spec
from circuitsim.study.sweep import run_sweep
from test_backprop import _central

PARTS = (Partition(1, 1), Partition(1, 1))


@pytest.fixture(scope="module")
def small():
    data = load_dataset("digits", side=8, test_fraction=0.3)
    net = train_mlp(data, MLPConfig(layers=(64, 16, 10), epochs=30))
    circuit = CircuitConfig(wires=Wires(r_row=20.0, r_col=20.0))
    cache = TileCache()
    mapped = map_network(net, PARTS, circuit, cache)
    return data, net, circuit, cache, mapped


def test_fixed_point_formats_round_and_saturate():
    # Ferro et al.: scale unsigned 1.7 (step 1/128, up to 2 - 1/128), offset signed 7.1 (step 0.5)
    np.testing.assert_array_equal(to_fixed([0.3, 1.0, 2.5, -0.2], (1, 7), signed=False),
                                  [38 / 128, 1.0, 2 - 1 / 128, 0.0])
    np.testing.assert_array_equal(to_fixed([0.26, -3.74, 500.0, -500.0], (7, 1), signed=True),
                                  [0.5, -3.5, 127.5, -128.0])
    np.testing.assert_array_equal(to_fixed([0.123], (), signed=True), [0.123])


def test_hardware_forward_is_the_evaluator_and_its_gradient_is_exact(small):
    data, net, circuit, _, mapped = small
    x, y = data.x_train[:20], data.y_train[:20]
    probs, _ = hardware_forward(mapped, x)
    np.testing.assert_allclose(probs, mapped.mlp.forward(x), rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(1)
    adapters = [(rng.normal(0, 0.3, (w.shape[0] + 1, 2)), rng.normal(0, 0.3, (2, w.shape[1])))
                for w in net.weights]
    _, trace = hardware_forward(mapped, x, adapters=adapters)
    d_m, d_ad, loss, _ = hardware_backward(mapped, trace, y, adapters=adapters)

    def mean_loss():
        p, _ = hardware_forward(mapped, x, adapters=adapters)
        return -np.log(p[np.arange(len(y)), y]).mean()

    for array, grad in ((adapters[0][0], d_ad[0][0]), (adapters[1][1], d_ad[1][1])):
        for index in [(0, 0), (1, 1)]:
            assert grad[index] == pytest.approx(_central(mean_loss, array, index), rel=1e-4, abs=1e-9)
    assert loss / len(y) == pytest.approx(mean_loss())
    assert d_m[0].shape == (65, 16)


def test_affine_is_never_worse_than_none_on_the_calibration_set(small):
    data, net, circuit, cache, mapped = small
    x_cal = data.x_train[:256]
    config = CompensationConfig("affine")
    pairs = fit_affine(mapped, net, x_cal, config)
    _, digital = net.forward(x_cal, return_preactivations=True)
    raw = mapped.layer_sums(0, x_cal)
    scale, offset = pairs[0]
    corrected_error = ((scale * raw + offset - digital[0]) ** 2).mean(axis=0)
    raw_error = ((raw - digital[0]) ** 2).mean(axis=0)
    assert (corrected_error <= raw_error).all()
    assert corrected_error.sum() < 0.5 * raw_error.sum()  # IR drop shrinks the sums: a real gain
    for s, o in pairs:  # on the fixed-point grids of the formats
        np.testing.assert_array_equal(s * 128, np.round(s * 128))
        np.testing.assert_array_equal(o * 2, np.round(o * 2))
        assert (s >= 0).all() and (s < 2).all()
    # ideal wires: the tiles are the digital network, the correction is the identity
    ideal = map_network(net, PARTS, CircuitConfig(), cache)
    for s, o in fit_affine(ideal, net, x_cal, config):
        np.testing.assert_array_equal(s, 1.0)
        np.testing.assert_array_equal(o, 0.0)


def test_every_method_improves_the_degraded_point(small):
    data, net, circuit, cache, mapped = small
    none = mapped.accuracy(data.x_test, data.y_test)
    methods = {"affine": CompensationConfig("affine"),
               "lora": CompensationConfig("lora", rank=2, epochs=3, learning_rate=0.003),
               "hwa": CompensationConfig("hwa", epochs=3, learning_rate=0.005, refresh_steps=10)}
    scores = {}
    for name, config in methods.items():
        result = compensate(net, mapped, config, circuit, cache, data.x_train, data.y_train)
        scores[name] = result.accuracy(data.x_test, data.y_test)
    assert none < 0.45
    assert all(score > none + 0.1 for score in scores.values()), (none, scores)


def test_adapters_have_exactly_the_counted_parameters(small):
    data, net, circuit, _, mapped = small
    for rank in (1, 3):
        config = CompensationConfig("lora", rank=rank, epochs=1, learning_rate=0.003, adapter_format=(2, 5))
        adapters = train_adapters(mapped, data.x_train, data.y_train, config)
        assert [(a.shape, b.shape) for a, b in adapters] == [((65, rank), (rank, 16)), ((17, rank), (rank, 10))]
        params, macs = adapter_overhead(mapped, rank)
        assert params == macs == sum(a.size + b.size for a, b in adapters) == rank * (65 + 16 + 17 + 10)
        for a, b in adapters:  # signed fixed point with 5 fractional bits
            for m in (a, b):
                np.testing.assert_array_equal(m * 32, np.round(m * 32))
                assert np.abs(m).max() <= 4
        assert any(np.abs(b).max() > 0 for _, b in adapters)  # trained away from B = 0


def test_hwa_trains_through_adcs_and_is_cached(small, tmp_path):
    data, net, circuit, cache, _ = small
    adc_circuit = dataclasses.replace(circuit, adc=ADCConfig.preset("sar", bits=3, v_min=-1.0, v_max=1.0))
    x_cal = data.x_train[:512]
    mapped = map_network(net, PARTS, adc_circuit, cache, x_calibration=x_cal)
    config = CompensationConfig("hwa", epochs=4, learning_rate=0.005, refresh_steps=10)
    tuned = load_or_finetune(net, PARTS, adc_circuit, cache, data.x_train, data.y_train, config, tmp_path)
    files = list(tmp_path.glob("hwa-*.npz"))
    assert len(files) == 1
    again = load_or_finetune(net, PARTS, adc_circuit, cache, data.x_train, data.y_train, config, tmp_path)
    assert again.content_hash() == tuned.content_hash() != net.content_hash()
    assert all(set(np.unique(w)) <= {-1.0, 1.0} for w in tuned.weights)  # still a binary network
    before = mapped.accuracy(data.x_test, data.y_test)
    after = map_network(tuned, PARTS, adc_circuit, cache, x_calibration=x_cal).accuracy(data.x_test, data.y_test)
    assert after > before + 0.05, (before, after)


SPEC = """
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
layers = [64, 16, 10]
epochs = 30
[wires]
r_row = 20.0
r_col = 20.0
[compensation]
epochs = 1
[sweep]
partitions = [{h = [1, 1], v = [1, 1]}]
compensation = [{method = "none"}, {method = "affine"}, {method = "lora", rank = 2}, {method = "hwa"}]
"""


def test_sweep_has_compensation_and_overhead_columns(tmp_path):
    spec = parse_spec(SPEC)
    assert spec.n_points == 4
    frame = run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda line: None)
    csv = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(csv["compensation"]) == ["none", "affine", "lora", "hwa"]
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    assert list(csv["extra_parameters"]) == [0, 2 * 26, 2 * (65 + 16 + 17 + 10), 0]
    assert list(csv["extra_macs"]) == [0, 26, 2 * (65 + 16 + 17 + 10), 0]
    none = csv["accuracy"][0]
    assert (csv["accuracy"] >= none).all()
    assert (csv["accuracy_uncompensated"][1:] == none).all()
    assert len(list((tmp_path / "cache" / "networks").glob("hwa-*.npz"))) == 1
    again = run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda line: None)
    pd.testing.assert_frame_equal(frame, again)


def test_compensation_fields_are_grid_axes_and_old_specs_keep_their_points():
    plain = SPEC.split("[compensation]")[0] + "[sweep]\npartitions = [{h = [1, 1], v = [1, 1]}]\n"
    assert "compensation" not in parse_spec(plain).points()[0].config  # same point keys as before
    grid = plain + '"compensation.method" = ["none", "lora"]\n"compensation.rank" = [1, 4]\n'
    points = parse_spec(grid).points()
    assert [(p.values["compensation.method"], p.config["compensation"]["rank"]) for p in points] == [
        ("none", 1), ("none", 4), ("lora", 1), ("lora", 4)]


@pytest.mark.parametrize("change, message", [
    (('{method = "none"}', '{method = "magic"}'), "compensation.method must be one of"),
    (("epochs = 1", "rank = 0"), "compensation.rank must be a positive integer"),
    (("epochs = 1", 'epochs = "3"'), "compensation.epochs must be an integer"),
    (("epochs = 1", "scale_format = [1, 2, 3]"), "scale_format must be [integer bits, fractional bits]"),
    (("epochs = 1", "colour = 1"), "unknown key 'colour' in [compensation]"),
    (('{method = "lora", rank = 2}, {method = "hwa"}', '{method = "affine", rank = 2}'),
     "compensation.rank is ignored unless method is lora"),
    (('{method = "none"}, ', '{method = "none", rank = "x"}, '), "compensation.rank must be an integer"),
    (("compensation = [", "compensation = [{bogus = 1}, "), "unknown key 'bogus' in a [sweep] compensation entry"),
    (("epochs = 30", 'epochs = 30\nweights = "random"'), "cells are drawn, not programmed"),
])
def test_bad_compensation_specs_are_refused(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_spec(SPEC.replace(*change))


@pytest.mark.ngspice
def test_whole_circuit_of_a_hardware_aware_network_agrees(tmp_path):
    from circuitsim.study.validation import run_validation

    text = SPEC.replace("epochs = 1", "epochs = 4\nlearning_rate = 0.005\nrefresh_steps = 10").replace(
        'compensation = [{method = "none"}, {method = "affine"}, {method = "lora", rank = 2}, {method = "hwa"}]',
        'compensation = [{method = "hwa"}]')
    spec, cache = parse_spec(text), tmp_path / "cache"
    run_sweep(spec, tmp_path / "sweep", cache_dir=cache, log=lambda line: None)
    frame = run_validation(spec, tmp_path / "validate", n_images=30, cache_dir=cache, model="behavioural",
                           log=lambda line: None)
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["compensation"] == "hwa"
    assert row["agreement"] >= 0.99
    assert len(list((cache / "networks").glob("hwa-*.npz"))) == 1  # the sweep's network, not a new one
    swept = pd.read_csv(tmp_path / "sweep" / "results.csv").iloc[0]
    assert swept["accuracy"] > swept["accuracy_uncompensated"]
    from circuitsim.study.points import PointContext
    from circuitsim.study.validation import validate_point

    affine = parse_spec(text.replace('{method = "hwa"}', '{method = "affine"}').replace(
        "epochs = 4\nlearning_rate = 0.005\nrefresh_steps = 10", ""))
    refused = validate_point(affine.points()[0], PointContext(cache), 5)
    assert refused["status"] == "error" and "is digital (no deck to validate)" in refused["error"]


def test_hwa_injects_device_noise_with_training_seeds(small):
    from circuitsim.device_statistics import DeviceStatistics
    from circuitsim.network.compensation import hwa_finetune
    from circuitsim.network.compensation.hwa import _training_circuit, training_seed

    data, net, circuit, _, _ = small
    assert _training_circuit(circuit, 3) is circuit  # exact cells: nothing to draw
    noisy_device = dataclasses.replace(circuit.device, statistics=DeviceStatistics(programming_noise=0.1, seed=7))
    noisy = dataclasses.replace(circuit, device=noisy_device)
    seeds = [_training_circuit(noisy, j).device.statistics.seed for j in range(3)]
    assert seeds == [training_seed(7, j) for j in range(3)] and len(set(seeds)) == 3
    assert not set(seeds) & set(range(1000))  # spawned: no evaluation seed of a Monte Carlo sweep
    cache = TileCache()
    evaluated = map_network(net, PARTS, noisy, cache)  # the evaluation draw, seed 7
    config = CompensationConfig("hwa", epochs=4, learning_rate=0.005, refresh_steps=10)
    tuned = hwa_finetune(net, PARTS, noisy, cache, data.x_train, data.y_train, config)
    after = map_network(tuned, PARTS, noisy, cache)
    assert after.accuracy(data.x_test, data.y_test) > evaluated.accuracy(data.x_test, data.y_test) + 0.05


def test_hardware_gradients_of_a_cnn_equal_finite_differences():
    """The compensation methods train through any network: the straight-through gradients of a
    small CNN's tiles (effective weights and low-rank adapters) equal central differences of the
    hardware forward's loss (analog sums, no ADC)."""
    from circuitsim.network.backprop import softmax_cross_entropy
    from circuitsim.network.compensation.hardware import hardware_backward, hardware_forward
    from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten, MaxPool
    from circuitsim.network.network import Network

    rng = np.random.default_rng(4)
    cnn = Network([Conv2d(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3) * 0.1, padding=1), Activation("tanh"),
                   MaxPool(), Flatten(), Dense(rng.normal(size=(12, 4)) * 0.5, rng.normal(size=4) * 0.1),
                   Activation("softmax")], (1, 4, 4))
    mapped = map_network(cnn, [Partition(2, 1), Partition(1, 2)], CircuitConfig(wires=Wires(r_row=50.0, r_col=50.0)))
    x, y = rng.random((5, 16)), rng.integers(0, 4, 5)
    matrices = [c.weights.copy() for c in mapped.crossbars]
    adapters = [(rng.normal(size=(c.weights.shape[0], 2)) * 0.1, rng.normal(size=(2, c.n_out)) * 0.1)
                for c in mapped.crossbars]

    def loss() -> float:
        probs, _ = hardware_forward(mapped, x, matrices=matrices, adapters=adapters, use_adc=False)
        return softmax_cross_entropy(probs, y)[0] / len(y)

    _, trace = hardware_forward(mapped, x, matrices=matrices, adapters=adapters, use_adc=False)
    d_matrices, d_adapters, _, _ = hardware_backward(mapped, trace, y, matrices=matrices, adapters=adapters)
    checks = [(matrices[n], d_matrices[n]) for n in range(2)]
    checks += [(adapters[n][i], d_adapters[n][i]) for n in range(2) for i in range(2)]
    for param, grad in checks:
        for index in list(np.ndindex(param.shape))[::3]:
            assert grad[index] == pytest.approx(_central(loss, param, index), rel=1e-5, abs=1e-9)
