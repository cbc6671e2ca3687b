"""Tests of circuitsim.network.mlp: configuration, quantization, training, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from circuitsim.network import mlp as mlp_module
from circuitsim.errors import ConfigError
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mlp import MLP, MLPConfig, load_or_train, train_mlp

SMALL = dict(layers=(64, 64, 10), epochs=40)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=8)


@pytest.fixture(scope="module")
def binary_net(digits):
    return train_mlp(digits, MLPConfig(**SMALL))


def test_default_config():
    cfg = MLPConfig()
    assert cfg.layers == (400, 120, 84, 10) and cfg.weights == "binary"
    assert cfg.activation == "sigmoid" and cfg.bias
    assert cfg.gains == pytest.approx((4 / 20, 4 / math.sqrt(120), 4 / math.sqrt(84)))
    assert MLPConfig(activation="relu").gains[0] == pytest.approx(2 / 20)
    assert MLPConfig(weights="float").gains[0] == pytest.approx(4 * math.sqrt(3) / 20)


def test_config_round_trips_through_json():
    cfg = MLPConfig(layers=[8, 4, 3], weights="ternary", gains=[0.5, 0.25], epochs=3)
    assert cfg.layers == (8, 4, 3) and cfg.gains == (0.5, 0.25)
    again = MLPConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("kwargs", [
    dict(layers=(400,)), dict(layers=(400, 0, 10)), dict(layers=(400, 2.5, 10)),
    dict(activation="tanh"), dict(weights="quaternary"), dict(epochs=0),
    dict(batch_size=-1), dict(learning_rate=0.0), dict(learning_rate=float("nan")),
    dict(gains=(1.0, 1.0)), dict(gains=(1.0, -1.0, 1.0)), dict(bias="yes"), dict(seed=1.5),
])
def test_bad_config_is_config_error(kwargs):
    with pytest.raises(ConfigError):
        MLPConfig(**kwargs)


def test_unknown_config_key_is_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        MLPConfig.from_dict({"layers": [4, 2], "dropout": 0.5})


def test_binary_network_learns_digits(binary_net, digits):
    for w, b in zip(binary_net.weights, binary_net.biases):
        assert set(np.unique(w)) == {-1.0, 1.0}
        assert set(np.unique(b)) <= {-1.0, 1.0}
    assert binary_net.accuracy(digits.x_test, digits.y_test) > 0.85


@pytest.mark.parametrize("kind, values", [("ternary", {-1.0, 0.0, 1.0}), ("float", None)])
def test_other_weight_sets(digits, kind, values):
    net = train_mlp(digits, MLPConfig(**SMALL, weights=kind, activation="relu"))
    for w in net.weights + net.biases:
        if values is None:
            assert np.abs(w).max() <= 1.0 and len(np.unique(w)) > 3
        else:
            assert set(np.unique(w)) <= values
    assert net.accuracy(digits.x_test, digits.y_test) > 0.85


def test_no_bias_gives_zero_biases(digits):
    net = train_mlp(digits, MLPConfig(layers=(64, 16, 10), epochs=2, bias=False))
    assert all(not b.any() for b in net.biases)


def test_forward_reproduced_by_hand(binary_net, digits):
    x = digits.x_test[:25]
    g = binary_net.config.gains
    h = x
    for k, (w, b) in enumerate(zip(binary_net.weights, binary_net.biases)):
        z = g[k] * (h @ w + b)
        if k < len(binary_net.weights) - 1:
            h = 1.0 / (1.0 + np.exp(-z))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
    assert np.allclose(binary_net.forward(x), h, rtol=1e-12, atol=1e-14)
    acts, sums = binary_net.forward(x, return_preactivations=True)
    assert np.array_equal(acts[0], x) and len(sums) == 2
    for k, s in enumerate(sums):
        assert np.array_equal(acts[k + 1], binary_net.activate(k, s))
    assert np.array_equal(binary_net.predict(x), h.argmax(axis=1))


def test_save_load_round_trip(binary_net, digits, tmp_path):
    path = tmp_path / "net.npz"
    binary_net.save(path)
    again = MLP.load(path)
    assert again.config == binary_net.config
    assert np.array_equal(again.forward(digits.x_test), binary_net.forward(digits.x_test))
    assert np.array_equal(again.predict(digits.x_test), binary_net.predict(digits.x_test))
    assert again.content_hash() == binary_net.content_hash()


def test_content_hash_changes_with_weights(binary_net):
    weights = [w.copy() for w in binary_net.weights]
    weights[0][0, 0] *= -1
    other = MLP(weights, binary_net.biases, binary_net.config)
    assert other.content_hash() != binary_net.content_hash()


def test_bad_inputs_are_config_errors(binary_net, digits, tmp_path):
    with pytest.raises(ConfigError, match="inputs"):
        binary_net.forward(np.zeros((3, 63)))
    with pytest.raises(ConfigError, match="layers"):
        train_mlp(digits, MLPConfig(epochs=1))  # 400 inputs but digits at side 8 has 64
    with pytest.raises(ConfigError, match="layer 0"):
        MLP([np.zeros((3, 64)), np.zeros((64, 10))], [np.zeros(64), np.zeros(10)],
            MLPConfig(**SMALL))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="cannot read"):
        MLP.load(bad)


def test_training_is_deterministic(digits):
    cfg = MLPConfig(layers=(64, 16, 10), epochs=3, seed=7)
    assert train_mlp(digits, cfg).content_hash() == train_mlp(digits, cfg).content_hash()


def test_load_or_train_caches(digits, tmp_path, monkeypatch):
    cfg = MLPConfig(layers=(64, 16, 10), epochs=3)
    first = load_or_train(digits, cfg, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("load_or_train retrained a cached network")

    monkeypatch.setattr(mlp_module, "train_mlp", fail)
    second = load_or_train(digits, cfg, tmp_path / "cache")
    assert second.content_hash() == first.content_hash()
    with pytest.raises(AssertionError):  # another configuration is not in the cache
        load_or_train(digits, MLPConfig(layers=(64, 16, 10), epochs=4), tmp_path / "cache")
