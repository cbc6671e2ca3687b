"""Transformers through the ONNX import (issue 27), against onnxruntime and PyTorch.

Real exports of a small vision transformer (patch embedding, multi-head attention, LayerNorm,
GELU MLP, class token or pooling) by PyTorch's default (dynamo) exporter and its legacy one
(at its default opset with ``LayerNormalization`` and ``Gelu``, and at opset 16, where both are
decomposed into ``ReduceMean``/``Sub``/``Pow``/``Sqrt``/``Div`` and ``Erf``). Every imported
network is compared with onnxruntime on the same file (1e-5 relative to the output's magnitude)
and with the module on a batch of another size than the export's.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import circuitsim
from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network.backprop import backward, classification_gradient, forward_trace, weight_gradient
from circuitsim.device_statistics import statistics_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.compensation import CompensationConfig, compensate
from circuitsim.network.compensation.hardware import hardware_backward, hardware_forward
from circuitsim.network.datasets import load_dataset
from circuitsim.network.layers import Dense
from circuitsim.network.mapped import auto_partition_layers, map_network
from circuitsim.network.network import Network
from circuitsim.network.tensor_layers import Embedding, LayerNorm, MatMul
from circuitsim.tile.tile_cache import TileCache

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # the default exporter's dependency
from test_backprop import _central  # noqa: E402
from transformer_models import TorchAttention, ViT  # noqa: E402

TOLERANCE = 1e-5

EXPORTS = {  # name: (model, exporter options)
    "dynamo-cls": (dict(cls_token=True), dict(dynamo=True)),
    "legacy-cls": (dict(cls_token=True), dict(dynamo=False)),
    "legacy-opset16-pool": (dict(cls_token=False), dict(dynamo=False, opset_version=16)),
    "dynamo-dynamic-batch-pool": (dict(cls_token=False), dict(dynamo=True, dynamic=True)),
}


def _export(module, example, path, dynamo, opset_version=None, dynamic=False):
    options = {}
    if dynamic and dynamo:
        options["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    elif dynamic:
        options.update(input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    if opset_version:
        options["opset_version"] = opset_version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, (example,), str(path), dynamo=dynamo, **options)
    return path


def _onnxruntime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, np.float32)})[0].astype(np.float64)


def _difference(got, want):
    """Largest absolute difference and that relative to the reference's largest magnitude."""
    assert got.shape == want.shape
    worst = float(np.abs(got - want).max())
    return worst, worst / max(float(np.abs(want).max()), 1e-30)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each export's module, ONNX file and imported network (exported once for the module)."""
    folder = tmp_path_factory.mktemp("transformers")
    models = {}
    for name, (config, options) in EXPORTS.items():
        torch.manual_seed(0)
        module = ViT(**config).eval()
        example = torch.randn(2 if options.get("dynamic") else 1, 1, 8, 8)
        path = _export(module, example, folder / f"{name}.onnx", **options)
        models[name] = module, path, circuitsim.load_network(path)
    return models


@pytest.mark.parametrize("name", list(EXPORTS))
def test_exported_transformer_equals_onnxruntime_and_the_module(exported, name):
    module, path, net = exported[name]
    x = np.random.default_rng(1).uniform(-1, 1, size=(2 if "dynamic" in name else 1, 1, 8, 8)).astype(np.float32)
    worst, relative = _difference(net.forward(x.astype(np.float64)), _onnxruntime(path, x))
    assert relative <= TOLERANCE, (worst, relative)
    batch = np.random.default_rng(2).uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():  # any batch size, whatever the export's
        want = module(torch.from_numpy(batch)).double().numpy()
    assert _difference(net.forward(batch.astype(np.float64)), want)[1] <= TOLERANCE
    if "dynamic" in name:
        assert _difference(net.forward(batch.astype(np.float64)), _onnxruntime(path, batch))[1] <= TOLERANCE


@pytest.mark.parametrize("name", list(EXPORTS))
def test_backprop_through_the_transformer_equals_torch_autograd(exported, name):
    """The hardware backward's digital part (LayerNorm fused or decomposed, attention, GELU/erf, class
    token, token-wise Dense) against PyTorch's autograd of the same cross-entropy, per weight and input."""
    module, _, net = exported[name]
    reference = copy.deepcopy(module).double()
    x, y = np.random.default_rng(5).uniform(-1, 1, size=(4, 1, 8, 8)), np.array([0, 3, 1, 4])
    trace = forward_trace(net, x)
    loss, grad, _, folded = classification_gradient(net, trace.output, y)
    assert not folded  # the exported ViT ends in logits
    grads = backward(net, trace, grad, output_is_softmax_grad=folded)
    images = torch.tensor(x, requires_grad=True)
    want = torch.nn.functional.cross_entropy(reference(images), torch.tensor(y))
    want.backward()
    assert loss / len(y) == pytest.approx(want.item(), rel=1e-9)
    assert _difference(grads.d_input, images.grad.numpy())[1] <= 1e-7
    matched = 0
    for k in net.crossbar_layers:  # each crossbar layer's torch parameter, found by its values
        layer = net.layers[k]
        for parameter in reference.parameters():
            value = parameter.detach().numpy()
            value = value.T if value.ndim == 2 else value
            if value.shape == layer.weight.shape and np.allclose(value, layer.weight, atol=1e-6):
                expected = parameter.grad.numpy().T if value.ndim == 2 else parameter.grad.numpy()
                assert _difference(weight_gradient(layer, grads.d_weight[k]), expected)[1] <= 1e-7, k
                matched += 1
    assert matched == len(net.crossbar_layers) == 10


def test_adapter_gradients_through_a_mapped_transformer_equal_finite_differences(exported):
    """Low-rank adapters on every crossbar layer of the ViT on wired tiles: the hardware backward's
    gradients (through attention, LayerNorm, GELU and the class token) against central differences."""
    _, _, net = exported["legacy-cls"]
    circuit = CircuitConfig(device=Device(1e3, 1e5, levels=256), wires=Wires(r_row=2.0, r_col=2.0))
    mapped = map_network(net, auto_partition_layers(net, 12), circuit)
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-1, 1, size=(3, 1, 8, 8)), np.array([1, 4, 2])
    adapters = [(rng.normal(0, 0.3, (c.weights.shape[0], 2)), rng.normal(0, 0.3, (2, c.n_out))) for c in mapped.crossbars]
    _, trace = hardware_forward(mapped, x, adapters=adapters)
    _, d_adapters, loss, _ = hardware_backward(mapped, trace, y, adapters=adapters)

    def mean_loss():
        logits, _ = hardware_forward(mapped, x, adapters=adapters)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return -np.log(shifted[np.arange(len(y)), y] / shifted.sum(axis=1)).mean()

    assert loss / len(y) == pytest.approx(mean_loss(), rel=1e-9)  # its log adds 1e-12
    for n in (0, 1, 4, 9):  # the patch embedding, QKV and fc2 of block 0, the head
        for array, grad in zip(adapters[n], d_adapters[n]):
            for index in ((0, 0), (1, 1)):
                assert grad[index] == pytest.approx(_central(mean_loss, array, index), rel=1e-4, abs=1e-9), n


def test_one_analog_model_learns_a_new_task_after_drift_with_adapters_only(exported):
    """Li et al.'s multi-task deployment in miniature: an (untrained) ViT programmed once on PCM tiles,
    read a month later without drift compensation; rank-2 digital adapters trained through that hardware
    on a new task (digits 0-4) lift held-out accuracy far above the programmed model's, and the analog
    weights (the tiles' effective matrices) are those of the one programming."""
    _, _, net = exported["legacy-cls"]
    data = load_dataset("digits", side=8, test_fraction=0.3)
    train, test = data.y_train < 5, data.y_test < 5
    x, y = data.x_train[train].reshape(-1, 1, 8, 8), data.y_train[train]
    x_test, y_test = data.x_test[test].reshape(-1, 1, 8, 8), data.y_test[test]
    stats = statistics_preset("pcm-aihwkit").replace(t_inference=30 * 86400.0, drift_compensation="none")
    circuit = CircuitConfig(device=Device(40e3, 40e6, levels=256, statistics=stats), wires=Wires(r_row=2.0, r_col=2.0))
    cache = TileCache()
    mapped = map_network(net, auto_partition_layers(net, 12), circuit, cache)
    programmed = [c.weights.copy() for c in mapped.crossbars]
    config = CompensationConfig("lora", rank=2, epochs=10, learning_rate=0.01)
    adapted = compensate(net, mapped, config, circuit, cache, x, y)
    before, after = mapped.accuracy(x_test, y_test), adapted.accuracy(x_test, y_test)
    assert adapted.mapped is mapped and after > before + 0.3, (before, after)
    for c, weights in zip(mapped.crossbars, programmed):
        np.testing.assert_array_equal(c.weights, weights)
    params, macs = adapted.overhead
    assert params == sum(2 * (c.weights.shape[0] + c.n_out) for c in mapped.crossbars)
    assert macs == sum(2 * (c.weights.shape[0] + c.n_out) * c.positions for c in mapped.crossbars)
    again = map_network(net, auto_partition_layers(net, 12), circuit, cache)  # the same realization
    np.testing.assert_array_equal(again.crossbars[1].weights, programmed[1])


def test_linear_layers_on_crossbars_attention_digital(exported):
    """Every Linear and the patch embedding is a crossbar layer; q·kᵀ and a·v are digital and counted."""
    _, _, net = exported["legacy-opset16-pool"]  # LayerNorm decomposed: no LayerNorm layer
    assert not any(isinstance(layer, LayerNorm) for layer in net.layers)
    _, _, net = exported["dynamo-cls"]
    kinds = [type(net.layers[k]).__name__ for k in net.crossbar_layers]
    assert kinds == ["Conv2d"] + ["Dense"] * 8 + ["Dense"]  # embedding, 2 × (qkv, proj, fc1, fc2), head
    assert sum(isinstance(layer, LayerNorm) for layer in net.layers) == 5
    assert all(net.layers[k].bias is not None for k in net.crossbar_layers)  # MatMul + Add fused
    tokens, d, heads, hidden = 5, 16, 2, 32
    digital = 2 * 2 * heads * tokens * tokens * (d // heads)  # per block: q kᵀ and a v
    crossbar = (4 * (16 + 1) * d + 2 * tokens * ((d + 1) * (3 * d + d + hidden) + (hidden + 1) * d)
                + (d + 1) * 5)
    assert sum(isinstance(layer, MatMul) for layer in net.layers) == 4
    assert net.macs() == {"crossbar": crossbar, "digital": digital}


def test_weights_file_round_trip(exported, tmp_path):
    _, _, net = exported["legacy-cls"]
    net.save(tmp_path / "vit.npz")
    back = circuitsim.load_network(tmp_path / "vit.npz")
    x = np.random.default_rng(3).uniform(size=(3, 1, 8, 8))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back.content_hash() == net.content_hash()


def test_mapped_transformer_with_ideal_wires_equals_the_float_forward(exported):
    """The crossbar layers (patch embedding, QKV, projection, MLP, head) partitioned on canonical tiles."""
    _, _, net = exported["dynamo-cls"]
    x = np.random.default_rng(4).uniform(-1, 1, size=(6, 1, 8, 8))
    ideal = CircuitConfig(device=Device(1e3, 1e5, levels=2 ** 30 + 1), wires=Wires(r_row=0.0, r_col=0.0))
    partitions = auto_partition_layers(net, 12)
    assert any(p.h > 1 for p in partitions) and any(p.v > 1 for p in partitions)
    mapped = map_network(net, partitions, ideal)
    assert [c.positions for c in mapped.crossbars] == [4] + [5] * 8 + [1]  # tokens per image
    out = mapped.forward(x)[0]
    assert _difference(out, net.forward(x))[1] <= 1e-9
    wired = map_network(net, partitions, CircuitConfig(device=Device(1e3, 1e5, levels=2 ** 30 + 1),
                                                       wires=Wires(r_row=2.0, r_col=2.0)))
    error = _difference(wired.forward(x)[0], net.forward(x))[1]
    assert 1e-6 < error < 0.2  # the wires' IR drop changes the sums, a little
    assert wired.forward(x[:1])[0].shape == (1, 5)


def test_torch_multihead_attention_needs_a_dynamic_batch(tmp_path):
    """``nn.MultiheadAttention`` puts the batch inside its reshapes: fine with a dynamic batch size,
    refused in one line with a fixed one (which size holds the batch is ambiguous)."""
    torch.manual_seed(5)
    module = TorchAttention().eval()
    path = _export(module, torch.randn(2, 4, 8), tmp_path / "mha.onnx", dynamo=False, dynamic=True)
    net = circuitsim.load_network(path)
    x = np.random.default_rng(6).uniform(-1, 1, size=(3, 4, 8)).astype(np.float32)
    assert _difference(net.forward(x.astype(np.float64)), _onnxruntime(path, x))[1] <= TOLERANCE
    fixed = _export(module, torch.randn(1, 4, 8), tmp_path / "fixed.onnx", dynamo=True)
    with pytest.raises(ConfigError, match="holds the batch.*export the model with a dynamic batch size") as info:
        circuitsim.load_network(fixed)
    assert "\n" not in str(info.value)


# -- hand-written graphs: the operators the exports above do not reach --------------------------

def _graph(path, nodes, inits, inputs, output_shape, opset=20):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "ops", [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_tensor_operators_equal_onnxruntime(tmp_path):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(7)
    n = helper.make_node
    f32 = np.float32
    nodes = [
        n("Shape", ["x"], ["s"]), n("Gather", ["s", "i2"], ["feat"], axis=0),            # folded shape arithmetic
        n("Add", ["feat", "one"], ["limit"]), n("Range", ["one", "limit", "one"], ["r"]),  # 1, ..., 6
        n("Cast", ["r"], ["rf"], to=1),
        n("ConstantOfShape", ["three"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        n("Mul", ["x", "rf"], ["a"]),                                                      # by a folded constant
        n("Split", ["a", "split"], ["p", "q"], axis=2),                                    # (N, 3, 2), (N, 3, 4)
        n("MatMul", ["p", "w"], ["pw"]),                                                   # token-wise crossbar
        n("Add", ["pw", "bias"], ["pb"]),
        n("Gelu", ["pb"], ["g"], approximate="tanh"),
        n("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),                                     # (N, 4, 3)
        n("MatMul", ["g", "qt"], ["gq"]),                                                  # (N, 3, 3) digital
        n("Softmax", ["gq"], ["sm"], axis=1),                                              # not the last axis
        n("Div", ["sm", "ones"], ["d"]),
        n("Unsqueeze", ["d", "ax1"], ["u"]),                                               # (N, 1, 3, 3)
        n("Expand", ["u", "exp"], ["e"]),                                                  # (N, 2, 3, 3)
        n("Slice", ["e", "st", "en", "ax3", "step"], ["sl"]),                              # (N, 2, 3, 2)
        n("Concat", ["sl", "e"], ["c"], axis=3),                                           # (N, 2, 3, 5)
        n("Sub", ["c", "sl2"], ["sb"]),
        n("Erf", ["sb"], ["er"]),
        n("Pow", ["er", "two"], ["pw2"]),
        n("Sqrt", ["pw2"], ["sq"]),
        n("Mul", ["sq", "c"], ["m"]),                                                      # two computed values
        n("ReduceMean", ["m", "ax3"], ["rm"], keepdims=0),                                 # (N, 2, 3)
        n("Reshape", ["rm", "flat"], ["y"], allowzero=1),                                   # (N, 6)
    ]
    inits = {"i2": np.array(2), "one": np.array(1, np.int64),
             "three": np.array([3], np.int64), "split": np.array([2, 4], np.int64),
             "w": rng.normal(size=(2, 4)).astype(f32), "bias": rng.normal(size=(1, 1, 4)).astype(f32),
             "ax1": np.array([1], np.int64), "exp": np.array([1, 2, 1, 1], np.int64),
             "st": np.array([1], np.int64), "en": np.array([4], np.int64), "ax3": np.array([3], np.int64),
             "step": np.array([2], np.int64), "sl2": np.array([0.5], f32), "two": np.array(2.0, f32),
             "flat": np.array([-1, 6], np.int64)}
    path = _graph(tmp_path / "ops.onnx", nodes, inits, [("x", TensorProto.FLOAT, ["N", 3, 6])], ["N", 6])
    net = circuitsim.load_network(path)
    assert [type(net.layers[k]) for k in net.crossbar_layers] == [Dense]
    x = rng.uniform(-1, 1, size=(4, 3, 6)).astype(f32)
    assert _difference(net.forward(x.astype(np.float64)), _onnxruntime(path, x))[1] <= TOLERANCE


def test_embedding_table_digital_equals_onnxruntime(tmp_path):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(8)
    n = helper.make_node
    nodes = [n("Gather", ["table", "ids"], ["emb"], axis=0),                           # (N, 5, 4)
             n("LayerNormalization", ["emb", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-5),
             n("ReduceMean", ["ln", "ax1"], ["pool"], keepdims=0),
             n("Gemm", ["pool", "w", "b"], ["y"], transB=1)]
    inits = {"table": rng.normal(size=(10, 4)).astype(np.float32), "gamma": rng.uniform(0.5, 2, 4).astype(np.float32),
             "beta": rng.normal(size=4).astype(np.float32), "ax1": np.array([1], np.int64),
             "w": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}
    path = _graph(tmp_path / "emb.onnx", nodes, inits, [("ids", TensorProto.INT64, ["N", 5])], ["N", 3])
    net = circuitsim.load_network(path)
    assert isinstance(net.layers[0], Embedding) and net.crossbar_layers == (3,)
    ids = rng.integers(0, 10, size=(6, 5))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"ids": ids})[0].astype(np.float64)
    assert _difference(net.forward(ids.astype(np.float64)), want)[1] <= TOLERANCE
    with pytest.raises(ConfigError, match=r"Embedding ids must be integers in \[0, 10\)"):
        net.forward(np.full((1, 5), 10.0))


def test_refusal_lists_every_unsupported_node_in_one_line(tmp_path):
    from onnx import TensorProto, helper

    n = helper.make_node
    nodes = [n("LayerNormalization", ["x", "g"], ["ln", "mean"], name="norm"),       # its Mean output used
             n("Gelu", ["ln"], ["ge"], approximate="cubic", name="gelu"),               # an unknown approximation
             n("Sin", ["ge"], ["s"], name="sin"),                                       # an unknown operator
             n("Cos", ["mean"], ["c"], name="cos"),
             n("Add", ["s", "c"], ["y"], name="add")]
    path = _graph(tmp_path / "bad.onnx", nodes, {"g": np.ones(4, np.float32)},
                  [("x", TensorProto.FLOAT, ["N", 3, 4])], ["N", 3, 4])
    with pytest.raises(ConfigError) as info:
        circuitsim.load_network(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("3 ONNX nodes cannot be imported")
    for part in ("LayerNormalization node 'norm': its Mean and InvStdDev outputs", "'Sin' in node 'sin'",
                 "'Cos' in node 'cos'", "supported: Gemm"):
        assert part in message, part


def test_layers_refuse_bad_values_in_one_line():
    from circuitsim.network.tensor_layers import Binary, Concat, Transpose

    with pytest.raises(ConfigError, match="Binary op must be one of sub, mul, div, pow"):
        Binary("mod")
    with pytest.raises(ConfigError, match="must be a permutation"):
        Transpose((0, 0, 1))
    with pytest.raises(ConfigError, match="Concat on axis 1 cannot join"):
        Concat(1)(np.zeros((2, 3, 4)), np.zeros((2, 1, 5)))
    with pytest.raises(ConfigError, match="its last axis must have 4 values"):
        Network([Dense(np.ones((4, 2)))], (3, 5)).forward(np.zeros((1, 3, 5)))


@pytest.mark.ngspice
def test_validate_scope_layer_on_a_transformer(tmp_path):
    """``circuitsim validate --scope layer``: the transformer's crossbar layers (patch embedding, QKV,
    projection, MLP, head) in ngspice, a sample of tokens per image, against the evaluator."""
    import pandas as pd

    from circuitsim.cli import main

    torch.manual_seed(9)
    path = _export(ViT(classes=10).eval(), torch.randn(1, 1, 8, 8), tmp_path / "vit.onnx", dynamo=False)
    spec = tmp_path / "vit.toml"
    spec.write_text(f'[dataset]\nname = "digits"\nside = 8\n[network]\nonnx = "{path}"\n'
                    "[wires]\nr_row = 5.0\nr_col = 5.0\n[sweep]\npartitions = [{auto = 32}]\n")
    out = tmp_path / "out"
    assert main(["validate", str(spec), "--scope", "layer", "--images", "2", "--out", str(out),
                 "--cache", str(tmp_path / "cache")]) == 0
    row = pd.read_csv(out / "validation.csv").iloc[0]
    assert row["agreement"] == 1.0 and row["max_output_error"] < 1e-6
    # tiles: embedding 1, qkv 2 (48 outputs), proj 1, fc1 1, fc2 2 (33 rows) per block, head 1;
    # 4 sampled positions (of 4 patches, of 5 tokens) per image, the head's 1
    assert row["n_tiles"] == 1 + 2 * (2 + 1 + 1 + 2) + 1
    assert row["n_operating_points"] == 2 * (4 * 1 + 2 * 4 * (2 + 1 + 1 + 2) + 1)


def _smoke_example(name: str, tmp_path):
    """Run ``examples/<name>.py --smoke --out tmp_path``: the example module and its rows."""
    import importlib.util
    from pathlib import Path

    try:
        load_dataset("fashion-mnist", side=28, crop=False, limit=1)
    except ConfigError:
        pytest.skip("Fashion-MNIST is not installed (scripts/install-datasets.sh)")
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example, example.main(["--smoke", "--out", str(tmp_path)])


def test_vit_fashion_mnist_example_smoke(tmp_path):
    """``examples/vit_fashion_mnist.py --smoke``: trains, imports through ONNX, maps one point."""
    _, rows = _smoke_example("vit_fashion_mnist", tmp_path)
    assert (tmp_path / "vit.onnx").exists() and (tmp_path / "vit_fashion_mnist.csv").exists()
    assert len(rows) == 1 and rows[0]["tiles"] >= 10 and 0 <= rows[0]["accuracy"] <= 1
    assert rows[0]["digital_accuracy"] > 0.15  # two epochs on 2,000 images: better than chance (0.1)


def test_many_tasks_one_analog_model_example_smoke(tmp_path):
    """``examples/many_tasks_one_analog_model.py --smoke``: one programming, five (task, age) rows."""
    import csv

    example, rows = _smoke_example("many_tasks_one_analog_model", tmp_path)
    with open(tmp_path / "many_tasks.csv") as fh:
        written = list(csv.DictReader(fh))
    assert [(r["task"], r["age"]) for r in written] == [(r["task"], r["age"]) for r in rows] == list(example.ROWS)
    net = circuitsim.load_network(tmp_path / "vit.onnx")
    mapped = map_network(net, auto_partition_layers(net, 64), CircuitConfig(device=Device(1e3, 1e5)))
    params = sum(2 * (c.weights.shape[0] + c.n_out) for c in mapped.crossbars)  # rank 2: A and B of each layer
    for row in rows:
        assert row["adapter_params"] == params and row["analog_weights"] == sum(c.weights.size for c in mapped.crossbars)
        assert row["adapter_macs"] < row["model_macs"] and row["test_images"] == 200
        assert all(0 <= row[k] <= 1 for k in ("digital", "analog", "lora", "lora_1h", "hwa_reprogrammed"))
