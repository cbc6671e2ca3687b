"""Import an ONNX model as a circuitsim :class:`~circuitsim.network.network.Network`.

Supported operators (:data:`SUPPORTED_OPS`): Gemm, MatMul (with a constant right operand),
Add, Conv (groups = 1, dilation 1, explicit pads or ``auto_pad`` NOTSET/VALID), Relu,
Sigmoid, Tanh, MaxPool, AveragePool (``ceil_mode`` 0), GlobalAveragePool, Flatten, Reshape
(constant shape), BatchNormalization (inference), Softmax, Identity (and Constant tensors
feeding them, and Clip to [-1, 1] as hard-tanh). Any other operator,
or an unsupported attribute, is one :class:`~circuitsim.errors.ConfigError` line naming
the operator and its node.

Mapping onto layers:

- Gemm and MatMul become :class:`~circuitsim.network.layers.Dense` (``alpha`` and
  ``beta`` folded into the weights and bias); an Add of a constant right after a MatMul
  or a bias-free Conv becomes that layer's bias row; Conv becomes
  :class:`~circuitsim.network.layers.Conv2d`.
- BatchNormalization directly after a Conv or Gemm/MatMul whose output nothing else uses
  is **folded** into that layer's weights and bias (so it costs no digital step); anywhere
  else it is **kept digital** as a :class:`~circuitsim.network.layers.BatchNorm` layer.
- An Add of two computed values is a residual :class:`~circuitsim.network.layers.Add`.

The network's ``input_shape`` is the model's first non-constant input without the batch
dimension; its output is the model's first output. Weights are kept as float64; the
evaluator scales each crossbar layer into the device's range (see
:mod:`circuitsim.network.mapped`).

Public API
----------
load_network, network_from_onnx, SUPPORTED_OPS
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool,
                     Reshape, fold_batchnorm)
from .network import Network

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Conv", "Relu", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Flatten", "Reshape", "BatchNormalization", "Softmax", "Identity")
"""ONNX operators :func:`load_network` imports."""


def load_network(path: str | Path) -> Network:
    """Load a network from an ONNX model (``.onnx``) or a circuitsim weights file (``.npz``,
    from :meth:`Network.save` or :meth:`MLP.save`).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    Network
        Its ``forward(x)`` takes inputs shaped like the model's (``(N, C, H, W)``, or
        flattened images) and returns the model's output in float64.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"network file {path} does not exist")
    if file.suffix == ".npz":
        return _load_weights(file)
    try:
        import onnx
    except ImportError:
        raise ConfigError("reading ONNX models needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(str(file))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ... on a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path} is not a valid ONNX model: {first}") from None
    return network_from_onnx(model, name=file.stem)


def _load_weights(file: Path) -> Network:
    """A circuitsim weights file: a :class:`Network` or an MLP (``MLP.save``)."""
    try:
        with np.load(file, allow_pickle=False) as f:
            is_mlp = "config" in f.files and "network" not in f.files
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read weights file {file}: {exc}") from None
    if is_mlp:
        from .mlp import MLP

        return Network.from_mlp(MLP.load(file))
    return Network.load(file)


def _float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Builder:
    """Walks the (topologically sorted) graph, turning nodes into layers."""

    def __init__(self, graph):
        from onnx import numpy_helper

        self.consts = {t.name: _float(numpy_helper.to_array(t)) for t in graph.initializer}
        self.layers, self.sources = [], []
        self.value = {}  # ONNX name -> value index (0 = input, k + 1 = layer k)
        self.uses = {}
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for out in graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1

    def where(self, node) -> str:
        return f"{node.op_type} node {node.name or node.output[0]!r}"

    def fail(self, node, what: str):
        raise ConfigError(f"{self.where(node)}: {what}")

    def computed(self, node, name: str) -> int:
        if name not in self.value:
            self.fail(node, f"input {name!r} is neither a computed value nor a constant the importer supports")
        return self.value[name]

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            self.fail(node, f"input {name!r} must be a constant (initializer)")
        if self.consts[name].dtype.kind not in "biuf":  # e.g. weights stored as strings
            self.fail(node, f"constant {name!r} holds {self.consts[name].dtype} values, not numbers; "
                            "export the model with numeric weights")
        return self.consts[name]

    def add(self, node, layer, sources) -> None:
        self.layers.append(layer)
        self.sources.append(tuple(sources))
        self.value[node.output[0]] = len(self.layers)

    def producer(self, index: int):
        """The layer computing value ``index`` when it may be changed in place (sole consumer)."""
        return self.layers[index - 1] if index > 0 else None


def network_from_onnx(model, name: str = "onnx") -> Network:
    """Build a :class:`Network` from an ``onnx.ModelProto``."""
    graph = model.graph
    b = _Builder(graph)
    inputs = [i for i in graph.input if i.name not in b.consts]
    if len(inputs) != 1:
        raise ConfigError(f"the model needs exactly one non-constant input, it has {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else 0 for d in dims][1:]
    if not shape or any(n <= 0 for n in shape):
        raise ConfigError(f"the model's input {inputs[0].name!r} needs fixed sizes after the batch dimension, "
                          f"got {[d.dim_param or d.dim_value for d in dims]}")
    b.value[inputs[0].name] = 0
    for node in graph.node:
        if node.op_type not in _HANDLERS:
            raise ConfigError(f"unsupported ONNX op {node.op_type!r} in node {node.name or node.output[0]!r}; "
                              f"supported: {', '.join(SUPPORTED_OPS)}")
        _HANDLERS[node.op_type](b, node, _attrs(node))
    out = graph.output[0].name
    if b.value.get(out) != len(b.layers) or not b.layers:
        raise ConfigError(f"the model's output {out!r} must be the last value the graph computes")
    return Network(b.layers, shape, b.sources, name=name)


def _gemm(b: _Builder, node, a: dict) -> None:
    if a.get("transA", 0):
        b.fail(node, "transA = 1 is not supported")
    src = b.computed(node, node.input[0])
    w = b.const(node, node.input[1])
    w = (w.T if a.get("transB", 0) else w) * a.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(b.const(node, node.input[2]) * a.get("beta", 1.0), (w.shape[1],)).copy()
    b.add(node, Dense(w, bias), [src])


def _matmul(b: _Builder, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    w = b.const(node, node.input[1])
    if w.ndim != 2:
        b.fail(node, f"the constant operand must be a matrix, got shape {w.shape}")
    b.add(node, Dense(w), [src])


def _add(b: _Builder, node, a: dict) -> None:
    names = list(node.input)
    computed = [n for n in names if n in b.value]
    if len(computed) == 2:
        b.add(node, Add(), [b.value[n] for n in names])
        return
    if len(computed) != 1:
        b.fail(node, "needs at least one computed input")
    src = b.value[computed[0]]
    constant = b.const(node, next(n for n in names if n != computed[0]))
    layer = b.producer(src)
    if isinstance(layer, (Dense, Conv2d)) and layer.bias is None and b.uses.get(computed[0]) == 1:
        bias = _as_bias(constant, layer)
        if bias is not None:  # MatMul + Add (or Conv + Add): the layer's bias row
            b.layers[src - 1] = layer.replace(bias=bias / layer.gain)
            b.value[node.output[0]] = src
            return
    b.add(node, Add(constant), [src])


def _as_bias(constant: np.ndarray, layer) -> np.ndarray | None:
    """The constant as one value per output of ``layer``, or None if it is not that."""
    if isinstance(layer, Dense):
        n_out, shapes = layer.weight.shape[1], ((layer.weight.shape[1],), (1, layer.weight.shape[1]))
    else:
        n_out = layer.weight.shape[0]
        shapes = ((n_out, 1, 1), (1, n_out, 1, 1))
    if constant.size == 1:
        return np.full(n_out, float(constant.ravel()[0]))
    return constant.reshape(n_out).astype(np.float64) if constant.shape in shapes else None


def _conv(b: _Builder, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    w = b.const(node, node.input[1])
    if w.ndim != 4:
        b.fail(node, f"only 2-D convolutions are supported, the kernel has shape {w.shape}")
    if a.get("group", 1) != 1:
        b.fail(node, f"group = {a['group']} is not supported (only group = 1)")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        b.fail(node, f"dilations {a['dilations']} are not supported (only 1)")
    bias = b.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    b.add(node, Conv2d(w, bias, tuple(a.get("strides", (1, 1))), _pads(b, node, a)), [src])


def _pads(b: _Builder, node, a: dict) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        b.fail(node, f"auto_pad = {auto} is not supported; export with explicit pads")
    top, left, bottom, right = tuple(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    return (int(top), int(left), int(bottom), int(right))


def _pool(b: _Builder, node, a: dict) -> None:
    if a.get("ceil_mode", 0):
        b.fail(node, "ceil_mode = 1 is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        b.fail(node, f"dilations {a['dilations']} are not supported")
    if len(node.output) > 1 and node.output[1]:
        b.fail(node, "the Indices output is not supported")
    kernel = tuple(a["kernel_shape"])
    if len(kernel) != 2:
        b.fail(node, f"only 2-D pooling is supported, kernel_shape = {list(kernel)}")
    stride, pads = tuple(a.get("strides", (1, 1))), _pads(b, node, a)
    src = b.computed(node, node.input[0])
    if node.op_type == "MaxPool":
        b.add(node, MaxPool(kernel, stride, pads), [src])
    else:
        b.add(node, AvgPool(kernel, stride, pads, bool(a.get("count_include_pad", 0))), [src])


def _batchnorm(b: _Builder, node, a: dict) -> None:
    if a.get("training_mode", 0):
        b.fail(node, "training_mode = 1 is not supported (export the model in eval mode)")
    src = b.computed(node, node.input[0])
    scale, shift, mean, var = (b.const(node, n) for n in node.input[1:5])
    norm = BatchNorm(scale, shift, mean, var, float(a.get("epsilon", 1e-5)))
    layer = b.producer(src)
    if isinstance(layer, (Dense, Conv2d)) and b.uses.get(node.input[0]) == 1:
        b.layers[src - 1] = fold_batchnorm(layer, norm)  # folded: no digital step
        b.value[node.output[0]] = src
    else:
        b.add(node, norm, [src])  # kept digital


def _simple(layer_of):
    def handler(b: _Builder, node, a: dict) -> None:
        b.add(node, layer_of(b, node, a), [b.computed(node, node.input[0])])
    return handler


def _identity(b: _Builder, node, a: dict) -> None:
    if node.input[0] in b.consts:
        b.consts[node.output[0]] = b.consts[node.input[0]]
    else:
        b.value[node.output[0]] = b.computed(node, node.input[0])


def _clip(b: _Builder, node, a: dict):
    def bound(i, attr):
        if len(node.input) > i and node.input[i]:
            return float(b.const(node, node.input[i]).ravel()[0])
        return a.get(attr)
    low, high = bound(1, "min"), bound(2, "max")
    if (low, high) == (-1.0, 1.0):
        return Activation("hardtanh")
    if low == 0.0 and high is None:
        return Activation("relu")
    b.fail(node, f"only Clip to [-1, 1] (hard-tanh) or [0, inf) (relu) is supported, got [{low}, {high}]")


def _constant(b: _Builder, node, a: dict) -> None:
    from onnx import numpy_helper

    if "value" not in a:
        b.fail(node, "only a tensor 'value' is supported")
    b.consts[node.output[0]] = _float(numpy_helper.to_array(a["value"]))


def _reshape(b: _Builder, node, a: dict):
    if a.get("allowzero", 0):
        b.fail(node, "allowzero = 1 is not supported")
    return Reshape(tuple(int(v) for v in b.const(node, node.input[1]).ravel()))


_HANDLERS = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool,
    "BatchNormalization": _batchnorm, "Identity": _identity, "Constant": _constant,
    "Relu": _simple(lambda b, n, a: Activation("relu")),
    "Sigmoid": _simple(lambda b, n, a: Activation("sigmoid")),
    "Tanh": _simple(lambda b, n, a: Activation("tanh")),
    "Softmax": _simple(lambda b, n, a: Activation("softmax", int(a.get("axis", -1)))),
    "GlobalAveragePool": _simple(lambda b, n, a: GlobalAvgPool()),
    "Flatten": _simple(lambda b, n, a: Flatten(int(a.get("axis", 1)))),
    "Reshape": _simple(_reshape), "Clip": _simple(_clip),
}
