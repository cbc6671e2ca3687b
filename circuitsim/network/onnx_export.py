"""Write a circuitsim network as an ONNX model, so other tools can run the same network.

Every layer becomes standard ONNX operators (opset 17, float32 tensors): Dense → Gemm
(the gain as ``alpha`` and ``beta``), Conv2d → Conv (the gain multiplied into kernels and
bias), MaxPool/AvgPool/GlobalAvgPool/Flatten/Reshape → the ops of the same name, BatchNorm →
BatchNormalization, Activation → Relu, Sigmoid, Tanh, Clip (hard-tanh) or Softmax, Add → Add.
The input is ``x`` of shape ``(N,) + input_shape`` and the output ``y``; an
:class:`~circuitsim.network.mlp.MLP` is written through :meth:`Network.from_mlp`.

Public API
----------
to_onnx, save_onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .layers import Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool, Reshape
from .network import Network

OPSET = 17


def _node(layer, k: int, inputs: list[str], out: str, const) -> list:
    from onnx import helper

    n = helper.make_node
    name = f"{type(layer).__name__.lower()}{k}"
    if isinstance(layer, Dense):
        names = inputs + [const(f"W{k}", layer.weight)]
        if layer.bias is not None:
            names.append(const(f"b{k}", layer.bias))
        return [n("Gemm", names, [out], alpha=float(layer.gain), beta=float(layer.gain), name=name)]
    if isinstance(layer, Conv2d):
        names = inputs + [const(f"W{k}", layer.weight * layer.gain)]
        if layer.bias is not None:
            names.append(const(f"b{k}", layer.bias * layer.gain))
        return [n("Conv", names, [out], strides=list(layer.stride), pads=_pads(layer.padding),
                  kernel_shape=list(layer.kernel), name=name)]
    if isinstance(layer, MaxPool):
        return [n("MaxPool", inputs, [out], kernel_shape=list(layer.kernel), strides=list(layer.stride),
                  pads=_pads(layer.padding), name=name)]
    if isinstance(layer, AvgPool):
        return [n("AveragePool", inputs, [out], kernel_shape=list(layer.kernel), strides=list(layer.stride),
                  pads=_pads(layer.padding), count_include_pad=int(layer.count_include_pad), name=name)]
    if isinstance(layer, GlobalAvgPool):
        return [n("GlobalAveragePool", inputs, [out], name=name)]
    if isinstance(layer, Flatten):
        return [n("Flatten", inputs, [out], axis=layer.axis, name=name)]
    if isinstance(layer, Reshape):
        return [n("Reshape", inputs + [const(f"shape{k}", np.array(layer.shape, dtype=np.int64))], [out], name=name)]
    if isinstance(layer, BatchNorm):
        names = [const(f"bn{k}_{f}", getattr(layer, f)) for f in ("scale", "bias", "mean", "var")]
        return [n("BatchNormalization", inputs + names, [out], epsilon=float(layer.eps), name=name)]
    if isinstance(layer, Add):
        extra = [] if layer.constant is None else [const(f"c{k}", layer.constant)]
        return [n("Add", inputs + extra, [out], name=name)]
    if isinstance(layer, Activation):
        if layer.kind == "hardtanh":
            limits = [const(f"lo{k}", np.array(-1.0)), const(f"hi{k}", np.array(1.0))]
            return [n("Clip", inputs + limits, [out], name=name)]
        if layer.kind == "softmax":
            return [n("Softmax", inputs, [out], axis=layer.axis, name=name)]
        if layer.kind == "step":
            raise ConfigError(f"layer {k} (step activation) has no ONNX export; export the network before "
                              "binarizing its activations")
        op = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}.get(layer.kind)
        if op is not None:
            return [n(op, inputs, [out], name=name)]
    raise ConfigError(f"layer {k} ({type(layer).__name__}) has no ONNX equivalent")


def _pads(padding) -> list[int]:
    top, left, bottom, right = padding
    return [top, left, bottom, right]


def to_onnx(net) -> "onnx.ModelProto":  # noqa: F821
    """The ONNX model of a :class:`Network` (or an MLP)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ConfigError("writing ONNX models needs the onnx package: pip install onnx") from None
    if not isinstance(net, Network):
        net = Network.from_mlp(net)
    inits = []

    def const(name, value):
        a = np.asarray(value)
        inits.append(numpy_helper.from_array(a.astype(np.float32) if a.dtype.kind == "f" else a, name))
        return name

    names = ["x"] + [f"v{k + 1}" for k in range(len(net.layers))]
    names[-1] = "y"
    nodes = []
    for k, (layer, src) in enumerate(zip(net.layers, net.sources)):
        nodes += _node(layer, k, [names[i] for i in src], names[k + 1], const)
    out_shape = net.forward(np.zeros((1,) + net.input_shape)).shape[1:]
    graph = helper.make_graph(
        nodes, net.name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *net.input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="circuitsim")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save_onnx(net, path: str | Path) -> Path:
    """Write :func:`to_onnx` of ``net`` to ``path`` (``.onnx``) and return the path."""
    model = to_onnx(net)
    from ..files import write_atomic

    path = Path(path)
    write_atomic(path, model.SerializeToString())  # a regular file, never a device or a link's target
    return path
