"""ONNX import against onnxruntime, on models built here with onnx.helper."""

from __future__ import annotations

import numpy as np
import pytest

import circuitsim
from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import auto_partition_layers, map_layers
from circuitsim.network.layers import BatchNorm, Conv2d, Dense

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _const(name, a):
    a = np.asarray(a)
    return numpy_helper.from_array(a.astype(np.float32) if a.dtype.kind == "f" else a, name)


def _model(nodes, inits, in_shape, out_shape, path, opset=17):
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _bn(prefix, c, rng):
    return [_const(f"{prefix}s", rng.uniform(0.5, 1.5, c)), _const(f"{prefix}b", rng.normal(size=c)),
            _const(f"{prefix}m", rng.normal(size=c) * 0.1), _const(f"{prefix}v", rng.uniform(0.5, 1.5, c))]


def _lenet_like(path, rng):
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1], name="conv1"),
        n("BatchNormalization", ["c1", "bn1s", "bn1b", "bn1m", "bn1v"], ["n1"], epsilon=1e-3, name="bn1"),
        n("Relu", ["n1"], ["r1"], name="relu1"),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        n("Conv", ["p1", "w2"], ["c2"], strides=[2, 2], name="conv2"),
        n("Add", ["c2", "b2"], ["a2"], name="conv2_bias"),
        n("Tanh", ["a2"], ["t2"], name="tanh2"),
        n("AveragePool", ["t2"], ["p2"], kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 0, 0], name="pool2"),
        n("Flatten", ["p2"], ["f"], axis=1, name="flatten"),
        n("Gemm", ["f", "w3", "b3"], ["g3"], transB=1, alpha=0.7, beta=1.3, name="fc1"),
        n("Sigmoid", ["g3"], ["s3"], name="sig"),
        n("MatMul", ["s3", "w4"], ["m4"], name="fc2"),
        n("Add", ["m4", "b4"], ["a4"], name="fc2_bias"),
        n("Softmax", ["a4"], ["y"], axis=-1, name="softmax"),
    ]
    inits = [_const("w1", rng.normal(size=(4, 1, 3, 3))), _const("b1", rng.normal(size=4)),
             *_bn("bn1", 4, rng), _const("w2", rng.normal(size=(6, 4, 3, 3)) * 0.3),
             _const("b2", rng.normal(size=(6, 1, 1))), _const("w3", rng.normal(size=(12, 24)) * 0.3),
             _const("b3", rng.normal(size=12)), _const("w4", rng.normal(size=(12, 10))),
             _const("b4", rng.normal(size=10))]
    return _model(nodes, inits, [1, 12, 12], [10], path)


def _residual(path, rng):
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        n("Add", ["c2", "r1"], ["res"], name="residual"),
        n("BatchNormalization", ["res", "bns", "bnb", "bnm", "bnv"], ["bn"], name="bn_after_add"),
        n("GlobalAveragePool", ["bn"], ["gap"], name="gap"),
        n("Reshape", ["gap", "shape"], ["flat"], name="reshape"),
        n("Identity", ["flat"], ["id"], name="identity"),
        n("Gemm", ["id", "w3", "b3"], ["y"], name="fc"),
    ]
    inits = [_const("w1", rng.normal(size=(3, 2, 3, 3))), _const("w2", rng.normal(size=(3, 3, 3, 3))),
             _const("b2", rng.normal(size=3)), *_bn("bn", 3, rng),
             _const("shape", np.array([0, -1], dtype=np.int64)),
             _const("w3", rng.normal(size=(3, 5))), _const("b3", rng.normal(size=5))]
    return _model(nodes, inits, [2, 7, 7], [5], path)


def _reference(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64)


def _close(ours, ref):
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("build,shape", [(_lenet_like, (1, 12, 12)), (_residual, (2, 7, 7))])
def test_import_equals_onnxruntime(tmp_path, rng, build, shape):
    path = build(tmp_path / "model.onnx", rng)
    net = circuitsim.load_network(path)
    x = rng.uniform(size=(16, *shape)).astype(np.float32).astype(np.float64)
    _close(net.forward(x), _reference(path, x))
    _close(net.forward(x.reshape(16, -1)), _reference(path, x))  # flattened images are fed in its shape


def test_batchnorm_after_a_layer_is_folded_elsewhere_digital(tmp_path, rng):
    lenet = circuitsim.load_network(_lenet_like(tmp_path / "a.onnx", rng))
    assert not any(isinstance(layer, BatchNorm) for layer in lenet.layers)
    assert [type(lenet.layers[k]) for k in lenet.crossbar_layers] == [Conv2d, Conv2d, Dense, Dense]
    assert all(lenet.layers[k].bias is not None for k in lenet.crossbar_layers)  # Add fused as bias rows
    residual = circuitsim.load_network(_residual(tmp_path / "b.onnx", rng))
    assert sum(isinstance(layer, BatchNorm) for layer in residual.layers) == 1
    assert residual.sources[3] == (3, 2)  # the residual Add takes conv2 and relu1


def test_imported_network_on_ideal_tiles_equals_onnxruntime(tmp_path, rng):
    """Weights scaled into the device range and the scale restored by the gain: zero wires = the model."""
    path = _lenet_like(tmp_path / "model.onnx", rng)
    net = circuitsim.load_network(path)
    x = rng.uniform(size=(8, 1, 12, 12)).astype(np.float32).astype(np.float64)
    circuit = CircuitConfig(device=Device(1e3, 1e5, levels=2 ** 30 + 1), wires=Wires(r_row=0.0, r_col=0.0))
    mapped = map_layers(net, auto_partition_layers(net, 16), circuit)
    assert max(c.scale for c in mapped.crossbars) > 1  # real weights, not in [-1, 1]
    _close(mapped.forward(x)[0], _reference(path, x))


def test_unsupported_op_names_op_and_node(tmp_path):
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky7")
    path = _model([node], [], [4], [4], tmp_path / "m.onnx")
    with pytest.raises(ConfigError) as info:
        circuitsim.load_network(path)
    message = str(info.value)
    assert "'LeakyRelu'" in message and "'leaky7'" in message and "\n" not in message


def test_unsupported_attribute_and_malformed_file(tmp_path, rng):
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=2, name="grouped")
    path = _model([node], [_const("w", rng.normal(size=(2, 1, 3, 3)))], [2, 5, 5], [2, 3, 3], tmp_path / "g.onnx")
    with pytest.raises(ConfigError, match="Conv node 'grouped': group = 2 is not supported"):
        circuitsim.load_network(path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf")
    with pytest.raises(ConfigError, match="is not a valid ONNX model") as info:
        circuitsim.load_network(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        circuitsim.load_network(tmp_path / "missing.onnx")


def test_shape_mismatch_with_the_dataset(tmp_path, rng):
    net = circuitsim.load_network(_lenet_like(tmp_path / "model.onnx", rng))
    with pytest.raises(ConfigError, match=r"expects inputs of shape \(1, 12, 12\); load the dataset with side = 12"):
        net.forward(np.zeros((3, 400)))


def test_export_round_trip_equals_onnxruntime(tmp_path, rng):
    """Every layer type written as ONNX runs in onnxruntime like in circuitsim, and imports back."""
    from circuitsim.network.layers import Activation, Add, AvgPool, Flatten, GlobalAvgPool, MaxPool, Reshape
    from circuitsim.network.network import Network
    from circuitsim.network.onnx_export import save_onnx

    layers = [Conv2d(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3), stride=1, padding=1, gain=0.5),
              BatchNorm(rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)),
              Activation("hardtanh"), Add(), MaxPool((2, 2)), AvgPool((3, 3), (1, 1), (1, 1, 1, 1)),
              Activation("sigmoid"), Add(rng.normal(size=(3, 1, 1))), GlobalAvgPool(), Flatten(),
              Dense(rng.normal(size=(3, 6)), rng.normal(size=6), gain=1.7), Activation("tanh"),
              Reshape((0, 2, 3)), Flatten(), Dense(rng.normal(size=(6, 4)), None), Activation("relu"),
              Activation("softmax")]
    sources = [(k,) for k in range(len(layers))]
    sources[3] = (3, 1)
    net = Network(layers, (1, 8, 8), sources, name="all-layers")
    path = save_onnx(net, tmp_path / "net.onnx")
    x = rng.uniform(size=(5, 1, 8, 8))
    _close(net.forward(x), _reference(path, x))
    back = circuitsim.load_network(path)
    _close(back.forward(x), net.forward(x))


def test_export_onnx_command(tmp_path, rng):
    from circuitsim.cli import main
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mlp import MLPConfig, train_mlp

    data = load_dataset("digits", side=8)
    mlp = train_mlp(data, MLPConfig(layers=(64, 16, 10), epochs=2))
    mlp.save(tmp_path / "mlp.npz")
    assert main([ "export-onnx", str(tmp_path / "mlp.npz"), "--out", str(tmp_path / "mlp.onnx")]) == 0
    _close(_reference(tmp_path / "mlp.onnx", data.x_test), mlp.forward(data.x_test))
    assert main(["export-onnx", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert not (tmp_path / "x.onnx").exists()
