"""numpy CNN training: gradients against finite differences, quantized weights, the cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.network.cnn_training import CNNConfig, _gradients, build_cnn, load_or_train_cnn, train_cnn
from circuitsim.network.datasets import load_dataset

TINY = CNNConfig(channels=(6, 12), kernel=3, padding=1, dense=(32,), epochs=3, batch_size=32, learning_rate=0.01)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=12)


@pytest.mark.parametrize("activation,pool", [("relu", "max"), ("tanh", "avg"), ("sigmoid", "max")])
def test_gradients_equal_finite_differences(rng, activation, pool):
    config = dataclasses.replace(TINY, activation=activation, pool=pool)
    config = dataclasses.replace(config, channels=(3, 4), dense=(12,))
    shapes = [(3, 1, 3, 3), (3,), (4, 3, 3, 3), (4,), (4, 12), (12,), (12, 5), (5,)]
    params = [rng.uniform(-1, 1, s) for s in shapes]
    x, y = rng.uniform(size=(4, 1, 9, 9)), np.array([0, 3, 4, 1])

    def loss(p):
        probs = build_cnn(config, (1, 9, 9), 5, p).forward(x)
        return -np.log(probs[np.arange(4), y]).sum() / 4

    grads, _, _ = _gradients(build_cnn(config, (1, 9, 9), 5, params), x, y)
    for j in (0, 1, 2, 4, 7):
        for index in [tuple(rng.integers(0, n) for n in shapes[j]) for _ in range(3)]:
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[j][index] += 1e-6
            minus[j][index] -= 1e-6
            numeric = (loss(plus) - loss(minus)) / 2e-6
            assert grads[j][index] == pytest.approx(numeric, rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("weights,values,better", [("binary", {-1.0, 1.0}, 0.15), ("ternary", {-1.0, 0.0, 1.0}, 0.4)])
def test_quantized_training_learns_and_keeps_its_levels(digits, weights, values, better):
    net = train_cnn(digits, dataclasses.replace(TINY, weights=weights))
    for k in net.crossbar_layers:
        w, b = net.layers[k].matrix()
        assert set(np.unique(w)) <= values and set(np.unique(b)) <= values
    assert net.accuracy(digits.x_test, digits.y_test) > better  # chance is 0.1


def test_float_training_and_cache(tmp_path, digits):
    first = load_or_train_cnn(digits, TINY, tmp_path)
    assert first.accuracy(digits.x_test, digits.y_test) > 0.8
    files = list(tmp_path.glob("cnn-digits-*.npz"))
    assert len(files) == 1
    again = load_or_train_cnn(digits, TINY, tmp_path)
    np.testing.assert_array_equal(again.forward(digits.x_test[:5]), first.forward(digits.x_test[:5]))
    files[0].write_bytes(b"damaged")
    repaired = load_or_train_cnn(digits, TINY, tmp_path)  # retrained, same seed, same network
    np.testing.assert_array_equal(repaired.forward(digits.x_test[:5]), first.forward(digits.x_test[:5]))


def test_bad_configurations(digits):
    with pytest.raises(ConfigError, match="network.pool must be one of max, avg"):
        CNNConfig(pool="median")
    with pytest.raises(ConfigError, match="too small"):
        build_cnn(CNNConfig(), (1, 8, 8), 10)
