"""Import an ONNX model as a circuitsim :class:`~circuitsim.network.network.Network`.

Supported operators (:data:`SUPPORTED_OPS`): Gemm, MatMul, Add, Conv (groups = 1, dilation 1,
explicit pads or ``auto_pad`` NOTSET/VALID), Relu, Sigmoid, Tanh, MaxPool, AveragePool
(``ceil_mode`` 0), GlobalAveragePool, ReduceMean, Flatten, Reshape, BatchNormalization
(inference), Softmax, Identity, Clip to [-1, 1] (hard-tanh) or [0, inf) (relu), Cast of a value
to float, and a transformer's operators (:mod:`circuitsim.network.onnx_tensor_ops`:
LayerNormalization, Gelu, Erf, Sqrt, Softmax on any axis, Sub/Mul/Div/Pow, Transpose, Squeeze,
Unsqueeze, Concat, Split, Slice, Gather, Expand). Shape arithmetic on
constants (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``, ``Slice``, ...; the list is
:data:`~circuitsim.network.onnx_graph.FOLDABLE_OPS`) is evaluated at import, and a
classifier's tail (``ArgMax`` and what follows it, ``ZipMap``) becomes the network's
``classifier`` (:mod:`circuitsim.network.onnx_graph`). Every node that cannot be imported —
an unknown operator or an unsupported attribute — is named, with its operator, in one
:class:`~circuitsim.errors.ConfigError` line.

**Batch dimension.** The input's first dimension is the batch; later values may hold it on any
axis (a ``Transpose`` moves it). The importer runs every layer on one image and on two, which
tells each value's batch axis, and writes every ``Reshape`` target with concrete sizes but the
one holding the batch, -1 (:func:`~circuitsim.network.onnx_tensor_ops.batch_shape`): in a model
with a dynamic batch size the entry folded from ``Shape`` (or the -1), in one exported for a
fixed batch size ``b`` (PyTorch's exporters by default) the first entry holding ``b`` times the
sizes after it, when the batch is the value's outermost index; anything else is refused as
ambiguous (export with a dynamic batch). ``allowzero = 1`` is accepted when the target has no 0.

Mapping onto layers:

- Gemm and MatMul with a constant matrix become :class:`~circuitsim.network.layers.Dense`
  (``alpha`` and ``beta`` folded into the weights and bias), applied token-wise to a
  ``(batch, tokens, features)`` value; a MatMul of two computed values is a digital
  :class:`~circuitsim.network.tensor_layers.MatMul`; an Add of a constant right after a MatMul
  or a bias-free Conv becomes that layer's bias row; Conv becomes
  :class:`~circuitsim.network.layers.Conv2d`.
- BatchNormalization directly after a Conv or Gemm/MatMul whose output nothing else uses
  is **folded** into that layer's weights and bias (so it costs no digital step); anywhere
  else it is **kept digital** as a :class:`~circuitsim.network.layers.BatchNorm` layer.
- An Add of two computed values is a residual :class:`~circuitsim.network.layers.Add`.

The network's ``input_shape`` is the model's first non-constant input without the batch dimension;
its output is the model's first output. Weights are kept as float64; the evaluator scales each
crossbar layer into the device's range (see :mod:`circuitsim.network.mapped`).

Public API
----------
load_network, network_from_onnx, SUPPORTED_OPS
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .layers import (Activation, Add, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, fold_batchnorm)
from .network import Network
from .onnx_graph import BATCH, FLOAT_TYPES, FOLDABLE_OPS, classifier_tail, fold_constant
from .onnx_conv_ops import CONV_HANDLERS
from .onnx_tensor_ops import TENSOR_HANDLERS
from .tensor_layers import Constant, MatMul, Reduce

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Conv", "Relu", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "BatchNormalization", "Softmax",
                 "Identity", "Clip", "Cast", *(op for op in TENSOR_HANDLERS if op != "Softmax"))
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

    def __init__(self, graph, skip: frozenset = frozenset()):
        from onnx import numpy_helper

        self.consts = {t.name: _float(numpy_helper.to_array(t)) for t in graph.initializer}
        self.layers, self.sources = [], []
        self.value = {}  # ONNX name -> value index (0 = input, k + 1 = layer k)
        self.examples = []  # one batch-1 example of every value (for shapes)
        self.examples2 = []  # the same at batch 2 (where the batch is, and that the batch can vary)
        self.opset = 13
        self.fixed_batch = 0  # the input's batch size when the model fixes it
        self.uses = {}
        for node in graph.node:
            if (node.name or node.output[0]) in skip:
                continue
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
            self.fail(node, f"constant {name!r} holds {self.consts[name].dtype} values, not numbers")
        return self.consts[name]

    def add(self, node, layer, sources, output: str | None = None) -> None:
        try:
            example = layer(*[self.examples[i] for i in sources])
        except ConfigError as exc:
            self.fail(node, str(exc))
        try:
            example2 = layer(*[self.examples2[i] for i in sources])
        except ConfigError as exc:
            self.fail(node, f"it works for one image but not for a batch of two ({exc}); export the model with "
                            "a dynamic batch size")
        self.layers.append(layer)
        self.sources.append(tuple(sources))
        self.examples.append(example)
        self.examples2.append(example2)
        self.value[output or node.output[0]] = len(self.layers)

    def operand(self, node, name: str) -> int:
        """The value index of input ``name``: a computed value, or a constant made a
        :class:`~circuitsim.network.tensor_layers.Constant` layer (once per constant)."""
        if name in self.value:
            return self.value[name]
        self.add(node, Constant(self.const(node, name)), [0], output=name)
        return self.value[name]

    def shape_of(self, name: str) -> tuple[int, ...]:
        """Shape of a computed value, its batch axis (the axis whose size grows with the batch)
        :data:`~circuitsim.network.onnx_graph.BATCH` times its size at batch 1."""
        one, two = self.examples[self.value[name]].shape, self.examples2[self.value[name]].shape
        return tuple(BATCH * a if b == 2 * a and a else a for a, b in zip(one, two))

    def producer(self, index: int):
        """The layer computing value ``index`` when it may be changed in place (sole consumer)."""
        return self.layers[index - 1] if index > 0 else None


def network_from_onnx(model, name: str = "onnx") -> Network:
    """Build a :class:`Network` from an ``onnx.ModelProto``.

    Every node that cannot be imported is named in the one :class:`ConfigError` raised. A
    classifier tail (skl2onnx: ``ArgMax``, ``ArrayFeatureExtractor``, ``Cast``, ``ZipMap``) is
    kept off the network, whose output is then the class probabilities; ``network.classifier``
    holds the labels (:class:`~circuitsim.network.onnx_graph.ClassifierTail`, or None).
    """
    graph = model.graph
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    found = classifier_tail(graph, consts)
    tail = found[1] if found else None
    skip = frozenset(tail.nodes) if tail else frozenset()
    b = _Builder(graph, skip)
    inputs = [i for i in graph.input if i.name not in b.consts]
    if len(inputs) != 1:
        raise ConfigError(f"the model needs exactly one non-constant input, it has {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else 0 for d in dims][1:]
    if not shape or any(n <= 0 for n in shape):
        raise ConfigError(f"the model's input {inputs[0].name!r} needs fixed sizes after the batch dimension, "
                          f"got {[d.dim_param or d.dim_value for d in dims]}")
    b.fixed_batch = dims[0].dim_value if dims[0].HasField("dim_value") else 0
    b.value[inputs[0].name] = 0
    b.examples.append(np.zeros([1] + shape))
    b.examples2.append(np.zeros([2] + shape))
    b.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    problems, failed, unsupported = [], set(), False
    for node in graph.node:
        if (node.name or node.output[0]) in skip:
            continue
        if any(i in failed for i in node.input):
            failed.update(node.output)  # its input is already reported; only an unknown operator is news
            if node.op_type not in _HANDLERS and node.op_type not in FOLDABLE_OPS:
                problems.append(f"unsupported ONNX op {node.op_type!r} in node {node.name or node.output[0]!r}")
                unsupported = True
            continue
        try:
            _import_node(b, node)
        except ConfigError as exc:
            problems.append(str(exc))
            unsupported |= str(exc).startswith("unsupported ONNX op")
            failed.update(node.output)
    if problems:
        supported = f"; supported: {', '.join(SUPPORTED_OPS)}" if unsupported else ""
        if len(problems) == 1:
            raise ConfigError(problems[0] + supported)
        raise ConfigError(f"{len(problems)} ONNX nodes cannot be imported: {'; '.join(problems)}{supported}")
    out = found[0] if found else graph.output[0].name
    if b.value.get(out) != len(b.layers) or not b.layers:
        raise ConfigError(f"the model's output {out!r} must be the last value the graph computes")
    net = Network(b.layers, shape, b.sources, name=name)
    net.classifier = tail
    return net


def _import_node(b: _Builder, node) -> None:
    """Turn one node into a layer, a constant, or an alias of a value."""
    a = _attrs(node)
    op = node.op_type
    if op == "Cast" and node.input[0] in b.value:
        if a["to"] not in FLOAT_TYPES:
            b.fail(node, f"a cast of a computed value to ONNX type {a['to']} is not supported (only to float)")
        b.value[node.output[0]] = b.value[node.input[0]]  # computed in float64 anyway
        return
    if op in FOLDABLE_OPS and (op == "Shape" or all(not i or i in b.consts for i in node.input)):
        if op == "Shape" and node.input[0] not in b.value and node.input[0] not in b.consts:
            b.computed(node, node.input[0])
        try:
            b.consts[node.output[0]] = _float(np.asarray(fold_constant(node, a, b.consts, b.shape_of)))
        except (ValueError, KeyError, IndexError) as exc:
            b.fail(node, f"cannot evaluate it at import: {exc}")
        return
    if op not in _HANDLERS:
        raise ConfigError(f"unsupported ONNX op {op!r} in node {node.name or node.output[0]!r}")
    _HANDLERS[op](b, node, a)


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
    left, right = node.input[0], node.input[1]
    if left in b.value and right in b.consts and b.consts[right].ndim == 2:
        b.add(node, Dense(b.const(node, right)), [b.computed(node, left)])  # on crossbars, token-wise
        return
    if left not in b.value and right not in b.value:
        b.computed(node, left)
    b.add(node, MatMul(), [b.operand(node, left), b.operand(node, right)])  # digital


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
        n_out = layer.weight.shape[1]
        fits = constant.ndim >= 1 and constant.shape[-1] == n_out and constant.size == n_out  # (1, ..., n_out)
    else:
        n_out = layer.weight.shape[0]
        fits = constant.shape in ((n_out, 1, 1), (1, n_out, 1, 1))
    if constant.size == 1:
        return np.full(n_out, float(constant.ravel()[0]))
    return constant.reshape(n_out).astype(np.float64) if fits else None


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


def _reduce_mean(b: _Builder, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    ndim = b.examples[src].ndim
    axes = (b.const(node, node.input[1]).ravel().astype(int).tolist() if len(node.input) > 1 and node.input[1]
            else list(a.get("axes", [])))
    if not axes:
        b.fail(node, "a mean over every axis (no axes) would mix the images of a batch; give the axes")
    if ndim != 4 or sorted(v % ndim for v in axes) != [2, 3]:
        b.add(node, Reduce(tuple(axes), bool(a.get("keepdims", 1))), [src])  # e.g. over a transformer's tokens
        return
    b.add(node, GlobalAvgPool(), [src])
    if not a.get("keepdims", 1):
        b.layers.append(Flatten(1))
        b.sources.append((len(b.layers) - 1,))
        b.examples.append(b.layers[-1](b.examples[-1]))
        b.value[node.output[0]] = len(b.layers)


_HANDLERS = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "BatchNormalization": _batchnorm, "Identity": _identity,
    "ReduceMean": _reduce_mean, **CONV_HANDLERS,
    "Relu": _simple(lambda b, n, a: Activation("relu")),
    "Sigmoid": _simple(lambda b, n, a: Activation("sigmoid")),
    "Tanh": _simple(lambda b, n, a: Activation("tanh")),
    "GlobalAveragePool": _simple(lambda b, n, a: GlobalAvgPool()),
    "Flatten": _simple(lambda b, n, a: Flatten(int(a.get("axis", 1)))),
    "Clip": _simple(_clip),
    **TENSOR_HANDLERS,
}
