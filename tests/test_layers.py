"""Layers and layer networks: im2col against scipy, the MLP as a network, weights files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.conv import avg_pool, col2im, im2col, max_pool
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import auto_partition_layers, map_layers, map_network
from circuitsim.network.layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten,
                                       GlobalAvgPool, MaxPool, Reshape, fold_batchnorm)
from circuitsim.network.mapping import auto_partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.network.network import Network
from circuitsim.tile.tile_cache import TileCache
from circuitsim.periphery.adc import ADCConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=8)


@pytest.fixture(scope="module")
def mlp(digits):
    return train_mlp(digits, MLPConfig(layers=(64, 24, 10), epochs=4))


def _scipy_conv(x, w, b, stride, pad):
    """Reference: scipy's correlate per (image, output channel), then striding."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.stack([np.stack([correlate(xp[n], w[o], mode="valid")[0] + b[o] for o in range(len(w))])
                    for n in range(len(x))])
    return out[:, :, ::stride, ::stride]


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), (1, 2)])
def test_conv2d_equals_scipy_correlation(rng, stride, pad):
    x, w, b = rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    conv = Conv2d(w, b, stride=stride, padding=pad)
    np.testing.assert_allclose(conv(x), _scipy_conv(x, w, b, stride, pad), rtol=1e-12, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col(rng):
    x = rng.normal(size=(2, 2, 7, 6))
    cols = rng.normal(size=im2col(x, (3, 2), (2, 1), (1, 0, 1, 1)).shape)
    lhs = np.sum(im2col(x, (3, 2), (2, 1), (1, 0, 1, 1)) * cols)
    rhs = np.sum(x * col2im(cols, x.shape, (3, 2), (2, 1), (1, 0, 1, 1)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_pooling_by_hand(rng):
    x = rng.normal(size=(1, 2, 4, 4))
    by_hand = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(max_pool(x, (2, 2), (2, 2)), by_hand)
    np.testing.assert_allclose(avg_pool(x, (2, 2), (2, 2)), x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5)))
    # padded corner window of a 3x3 average with one pixel of padding: 4 real pixels
    padded = avg_pool(x, (3, 3), (1, 1), (1, 1, 1, 1))
    assert padded[0, 0, 0, 0] == pytest.approx(x[0, 0, :2, :2].mean())
    assert GlobalAvgPool()(x).shape == (1, 2, 1, 1)


def test_mlp_is_a_network_bit_for_bit(digits, mlp):
    net = Network.from_mlp(mlp)
    assert net.crossbar_layers == (0, 2)
    np.testing.assert_array_equal(net.forward(digits.x_test), mlp.forward(digits.x_test))


@pytest.mark.parametrize("adc", [None, ADCConfig.preset("sar", bits=4, v_min=-1, v_max=1)])
def test_an_mlp_and_its_network_map_alike(digits, mlp, adc):
    """An MLP and the Network it is (from_mlp) give the same figures: accuracy, energy, tiles,
    conversions, and share their tiles."""
    parts = auto_partition(mlp.config.layers, 16)
    assert parts == auto_partition_layers(Network.from_mlp(mlp), 16)
    circuit = CircuitConfig(wires=Wires(r_row=5.0, r_col=5.0), adc=adc)
    cache = TileCache()
    old = map_network(mlp, parts, circuit, cache, x_calibration=digits.x_train[:100])
    new = map_layers(Network.from_mlp(mlp), parts, circuit, cache, x_calibration=digits.x_train[:100])
    assert cache.hits == cache.misses == new.n_tiles == old.n_tiles
    np.testing.assert_allclose(new.forward(digits.x_test)[0], old.forward(digits.x_test)[0], rtol=1e-12, atol=1e-15)
    assert new.accuracy(digits.x_test, digits.y_test) == old.accuracy(digits.x_test, digits.y_test)
    assert new.conversions_per_inference == old.conversions_per_inference
    e_new, e_old = new.energy_per_inference(digits.x_test), old.energy_per_inference(digits.x_test)
    assert e_new == pytest.approx(e_old, rel=1e-12)


def test_weights_file_round_trip(tmp_path, rng):
    layers = [Conv2d(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2), padding=1),
              BatchNorm(rng.uniform(0.5, 2, 2), rng.normal(size=2), rng.normal(size=2), rng.uniform(0.5, 2, 2)),
              Activation("hardtanh"), Add(), MaxPool((2, 2)), AvgPool((1, 1)), Flatten(),
              Dense(rng.normal(size=(18, 3)), None, 0.5), Reshape((0, 3)), Activation("softmax")]
    sources = [(0,), (1,), (2,), (3, 1), (4,), (5,), (6,), (7,), (8,), (9,)]
    net = Network(layers, (1, 6, 6), sources, name="round-trip")
    net.save(tmp_path / "net.npz")
    back = Network.load(tmp_path / "net.npz")
    x = rng.uniform(size=(3, 36))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back.content_hash() == net.content_hash() and back.name == "round-trip"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read network file"):
        Network.load(tmp_path / "bad.npz")


def test_batchnorm_folds_into_the_layer(rng):
    conv = Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), gain=2.0)
    norm = BatchNorm(rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3))
    x = rng.normal(size=(2, 2, 5, 5))
    np.testing.assert_allclose(fold_batchnorm(conv, norm)(x), norm(conv(x)), rtol=1e-12, atol=1e-12)
    dense = Dense(rng.normal(size=(4, 3)), None, 3.0)
    x = rng.normal(size=(5, 4))
    np.testing.assert_allclose(fold_batchnorm(dense, norm)(x), norm(dense(x)), rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_one_line(rng):
    net = Network([Dense(rng.normal(size=(16, 2)))], (16,), name="tiny")
    with pytest.raises(ConfigError, match=r"expects inputs of shape \(16,\); load the dataset with side = 4"):
        net.forward(np.zeros((2, 25)))
    with pytest.raises(ConfigError, match="activation must be one of"):
        Activation("swish")
    with pytest.raises(ConfigError, match="each must be an earlier value"):
        Network([Add(), Add()], (2,), [(0, 2), (1,)])
    with pytest.raises(ConfigError, match="does not fit"):
        Conv2d(np.ones((1, 1, 5, 5)))(np.ones((1, 1, 3, 3)))


def test_conv_layer_zero_wires_is_the_digital_network(rng, digits):
    """Conv2d + Dense on tiles with ideal wires and a many-level device = the float network."""
    device = Device(1e3, 1e5, levels=2 ** 30 + 1)
    net = Network([Conv2d(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4), padding=1), Activation("relu"),
                   MaxPool((2, 2)), Flatten(), Dense(rng.normal(size=(64, 10)), rng.normal(size=10)),
                   Activation("softmax")], (1, 8, 8), name="small-cnn")
    parts = auto_partition_layers(net, 8)
    mapped = map_layers(net, parts, CircuitConfig(device=device, wires=Wires(r_row=0.0, r_col=0.0)))
    x = digits.x_test[:50]
    out, energy = mapped.forward(x)
    np.testing.assert_allclose(out, net.forward(x), rtol=1e-5, atol=1e-6)
    assert mapped.predict(x).tolist() == net.predict(x).tolist()
    assert mapped.crossbars[0].positions == 64 and mapped.crossbars[1].positions == 1
    assert mapped.n_tiles == 2 * 1 + 9 * 2 and energy > 0
    np.testing.assert_allclose(mapped.effective_network().forward(x), net.forward(x), rtol=1e-5, atol=1e-6)
