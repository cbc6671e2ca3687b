"""The generic reverse pass (network/backprop.py) against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.network.backprop import backward, forward_trace, softmax_cross_entropy, weight_gradient
from circuitsim.network.layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool,
                                       MaxPool, Reshape)
from circuitsim.network.mlp import MLP, MLPConfig
from circuitsim.network.network import Network

STEP = 1e-6
TOLERANCE = 1e-6


def _u(rng, *shape):
    return rng.uniform(-1.0, 1.0, shape)


def mlp_net(rng):
    config = MLPConfig(layers=(6, 5, 4), activation="sigmoid", weights="float")
    return Network.from_mlp(MLP([_u(rng, 6, 5), _u(rng, 5, 4)], [_u(rng, 5), _u(rng, 4)], config)), (6,)


def cnn_net(rng):
    layers = [Conv2d(_u(rng, 2, 1, 3, 3), _u(rng, 2), padding=(1, 0, 1, 1), gain=0.8), Activation("tanh"),
              MaxPool((2, 2)), Conv2d(_u(rng, 3, 2, 2, 2), None, stride=(1, 1), gain=1.3),
              Activation("sigmoid"), AvgPool((2, 2)), Flatten(), Dense(_u(rng, 3, 4), _u(rng, 4), 1.5),
              Activation("relu"), Dense(_u(rng, 4, 3), _u(rng, 3)), Activation("softmax")]
    return Network(layers, (1, 9, 8), name="cnn"), (1, 9, 8)


def residual_net(rng):
    layers = [Conv2d(_u(rng, 3, 2, 3, 3), _u(rng, 3), padding=(1, 1, 1, 1)), Activation("relu"),
              Conv2d(_u(rng, 2, 3, 3, 3), _u(rng, 2), padding=(1, 1, 1, 1), gain=0.7), Add(),
              Activation("tanh"), Flatten(), Dense(_u(rng, 50, 4), _u(rng, 4), 0.5), Activation("softmax")]
    sources = [(0,), (1,), (2,), (3, 0), (4,), (5,), (6,), (7,)]
    return Network(layers, (2, 5, 5), sources, name="residual"), (2, 5, 5)


def norm_net(rng):
    norm = BatchNorm(rng.uniform(0.5, 2, 4), _u(rng, 4), _u(rng, 4), rng.uniform(0.5, 2, 4))
    layers = [Conv2d(_u(rng, 4, 2, 3, 3), _u(rng, 4), stride=(2, 1), padding=(1, 0, 0, 1)), norm,
              Activation("hardtanh"), MaxPool((3, 3), (1, 1), (1, 1, 1, 1)),
              AvgPool((2, 2), (1, 2), (0, 0, 1, 1)), AvgPool((2, 2), (1, 1), (1, 1, 0, 0), count_include_pad=True),
              Activation("softmax", axis=1), GlobalAvgPool(), Reshape((0, -1)),
              Dense(_u(rng, 4, 3), None, 2.0), Add(constant=_u(rng, 3)), Activation("sigmoid")]
    return Network(layers, (2, 7, 6), name="norm"), (2, 7, 6)


NETWORKS = {"mlp": mlp_net, "cnn": cnn_net, "residual": residual_net, "norm": norm_net}


def _relative(numeric, analytic) -> float:
    numeric, analytic = np.ravel(numeric), np.ravel(analytic)
    return float(np.linalg.norm(numeric - analytic) / max(np.linalg.norm(numeric), 1e-300))


def _central(f, array, index):
    """Central difference of ``f()`` at ``array[index]`` (changed in place, then restored)."""
    saved = array[index]
    array[index] = saved + STEP
    up = f()
    array[index] = saved - STEP
    down = f()
    array[index] = saved
    return (up - down) / (2 * STEP)


def _indices(rng, shape, most=12):
    size = int(np.prod(shape))
    picks = range(size) if size <= most else rng.choice(size, most, replace=False)
    return [np.unravel_index(i, shape) for i in picks]


def _with_matrix(net, k, w, b):
    layer = net.layers[k]
    return net.replace_layers({k: layer.replace(weight=weight_gradient(layer, w), bias=b)})


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_finite_differences(rng, name):
    net, shape = NETWORKS[name](rng)
    x = rng.uniform(size=(3,) + shape)
    probe = rng.normal(size=net.forward(x).shape)
    grads = backward(net, forward_trace(net, x), probe)
    x_fd = x.copy()
    picks = _indices(rng, x.shape)
    numeric = [_central(lambda: np.sum(probe * net.forward(x_fd)), x_fd, i) for i in picks]
    assert _relative(numeric, [grads.d_input[i] for i in picks]) < TOLERANCE
    for k in net.crossbar_layers:
        w, b = (None if a is None else a.copy() for a in net.layers[k].matrix())
        loss = lambda: np.sum(probe * _with_matrix(net, k, w, b).forward(x))  # noqa: E731
        picks = _indices(rng, w.shape)
        assert _relative([_central(loss, w, i) for i in picks], [grads.d_weight[k][i] for i in picks]) < TOLERANCE
        if b is None:
            assert grads.d_bias[k] is None
        else:
            numeric = [_central(loss, b, (j,)) for j in range(len(b))]
            assert _relative(numeric, grads.d_bias[k]) < TOLERANCE


def _affine_mac(net, w_hw, offsets):
    """A mac with other weights than the nominal ones and an offset added to the sums."""
    def mac(k, rows):
        b = net.layers[k].matrix()[1]
        sums = rows @ w_hw[k] + offsets[k]
        return sums + b if b is not None else sums
    return mac


@pytest.mark.parametrize("name", NETWORKS)
def test_trace_equals_forward_exactly(rng, name):
    net, shape = NETWORKS[name](rng)
    x = rng.uniform(size=(4,) + shape)
    trace = forward_trace(net, x)
    assert np.array_equal(trace.output, net.forward(x))
    assert np.array_equal(trace.values[0], net.fit_input(x))
    w_hw = {k: net.layers[k].matrix()[0] + 0.1 * rng.normal(size=net.layers[k].matrix()[0].shape)
            for k in net.crossbar_layers}
    mac = _affine_mac(net, w_hw, {k: 0.2 for k in net.crossbar_layers})
    trace = forward_trace(net, x.reshape(len(x), -1), mac)
    assert np.array_equal(trace.output, net.forward(x, mac))
    for k in net.crossbar_layers:
        assert trace.rows[k].ndim == 2 and trace.rows[k].shape[1] == w_hw[k].shape[0]
        assert np.array_equal(trace.sums[k], mac(k, trace.rows[k]))


def test_mac_offsets_and_hardware_matrices(rng):
    """Gradients of a forward whose sums come from other weights plus an offset per sum."""
    net, shape = residual_net(rng)
    x = rng.uniform(size=(2,) + shape)
    w_hw = {k: net.layers[k].matrix()[0] * rng.uniform(0.8, 1.2, net.layers[k].matrix()[0].shape)
            for k in net.crossbar_layers}
    sizes = {k: (len(forward_trace(net, x).rows[k]), w_hw[k].shape[1]) for k in net.crossbar_layers}
    offsets = {k: rng.normal(scale=0.1, size=sizes[k]) for k in net.crossbar_layers}
    mac = _affine_mac(net, w_hw, offsets)
    probe = rng.normal(size=net.forward(x).shape)
    grads = backward(net, forward_trace(net, x, mac), probe, matrices=w_hw)
    nominal = backward(net, forward_trace(net, x, mac), probe)
    assert not np.allclose(grads.d_input, nominal.d_input)  # the matrices matter

    x_fd = x.copy()
    loss = lambda: np.sum(probe * net.forward(x_fd, mac))  # noqa: E731
    picks = _indices(rng, x.shape)
    assert _relative([_central(loss, x_fd, i) for i in picks], [grads.d_input[i] for i in picks]) < TOLERANCE
    for k in net.crossbar_layers:
        for array, analytic in ((w_hw[k], grads.d_weight[k]), (offsets[k], grads.d_sums[k])):
            picks = _indices(rng, array.shape)
            numeric = [_central(loss, array, i) for i in picks]
            assert _relative(numeric, [analytic[i] for i in picks]) < TOLERANCE
        assert np.allclose(grads.d_bias[k], grads.d_sums[k].sum(axis=0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["mlp", "cnn", "residual"])
def test_softmax_cross_entropy_folded(rng, name):
    net, shape = NETWORKS[name](rng)
    x = rng.uniform(size=(5,) + shape)
    trace = forward_trace(net, x)
    y = rng.integers(0, trace.output.shape[1], 5)
    loss_sum, grad, correct = softmax_cross_entropy(trace.output, y)
    assert loss_sum == pytest.approx(-np.log(trace.output[np.arange(5), y]).sum(), rel=1e-9)
    assert correct == int((trace.output.argmax(axis=1) == y).sum())
    folded = backward(net, trace, grad, output_is_softmax_grad=True)
    plain = np.zeros_like(trace.output)  # d(mean loss)/d(probabilities)
    plain[np.arange(5), y] = -1.0 / (5 * trace.output[np.arange(5), y])
    full = backward(net, trace, plain)
    assert _relative(full.d_input, folded.d_input) < 1e-9
    for k in net.crossbar_layers:
        assert _relative(full.d_weight[k], folded.d_weight[k]) < 1e-9

    x_fd = x.copy()
    loss = lambda: softmax_cross_entropy(net.forward(x_fd), y)[0] / 5  # noqa: E731
    picks = _indices(rng, x.shape)
    assert _relative([_central(loss, x_fd, i) for i in picks], [folded.d_input[i] for i in picks]) < TOLERANCE


def test_input_gradient_can_be_skipped(rng):
    net, shape = cnn_net(rng)
    x = rng.uniform(size=(2,) + shape)
    trace = forward_trace(net, x)
    probe = rng.normal(size=trace.output.shape)
    full, lean = backward(net, trace, probe), backward(net, trace, probe, input_grad=False)
    assert lean.d_input is None
    for k in net.crossbar_layers:
        assert np.array_equal(full.d_weight[k], lean.d_weight[k])


def test_bad_inputs_raise_config_error(rng):
    net, shape = cnn_net(rng)
    x = rng.uniform(size=(2,) + shape)
    trace = forward_trace(net, x)
    good = np.zeros_like(trace.output)
    with pytest.raises(ConfigError, match="grad_output has shape"):
        backward(net, trace, good[:, :2])
    with pytest.raises(ConfigError, match=r"matrices\[0\]"):
        backward(net, trace, good, matrices={0: np.zeros((3, 3))})
    with pytest.raises(ConfigError, match="layer outputs"):
        backward(mlp_net(rng)[0], trace, good)
    no_softmax = Network(net.layers[:-1], shape)
    with pytest.raises(ConfigError, match="needs a softmax last"):
        backward(no_softmax, forward_trace(no_softmax, x), good, output_is_softmax_grad=True)
    batch_softmax = Network(net.layers[:-1] + (Activation("softmax", axis=0),), shape)
    with pytest.raises(ConfigError, match="over axis 1"):
        backward(batch_softmax, forward_trace(batch_softmax, x), good, output_is_softmax_grad=True)
    with pytest.raises(ConfigError, match="integer labels"):
        softmax_cross_entropy(trace.output, np.array([0, 7]))
    with pytest.raises(ConfigError, match="returned shape"):
        forward_trace(net, x, lambda k, rows: rows)
    odd = Network(net.layers, shape)
    odd.layers = odd.layers[:1] + (type("Odd", (), {"crossbar": False, "__call__": lambda self, v: v})(),) + \
        odd.layers[2:]
    with pytest.raises(ConfigError, match=r"layer 1 \(Odd\)"):
        backward(odd, forward_trace(odd, x), good)
