"""Import an ONNX model as a circuitsim :class:`~circuitsim.network.network.Network`.

Supported operators (:data:`SUPPORTED_OPS`): Gemm, MatMul (with a constant right operand),
Add, Conv (groups = 1, dilation 1, explicit pads or ``auto_pad`` NOTSET/VALID), Relu,
Sigmoid, Tanh, MaxPool, AveragePool (``ceil_mode`` 0), GlobalAveragePool, ReduceMean over
the pixels, Flatten, Reshape, BatchNormalization (inference), Softmax, Identity, Clip to
[-1, 1] (hard-tanh) or [0, inf) (relu), and Cast of a value to float. Shape arithmetic on
constants (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``, ``Slice``, ...; the list is
:data:`~circuitsim.network.onnx_graph.FOLDABLE_OPS`) is evaluated at import, and a
classifier's tail (``ArgMax`` and what follows it, ``ZipMap``) becomes the network's
``classifier`` (:mod:`circuitsim.network.onnx_graph`). Every node that cannot be imported —
an unknown operator or an unsupported attribute — is named, with its operator, in one
:class:`~circuitsim.errors.ConfigError` line.

**Batch dimension.** The input's first dimension is the batch. A model exported with a fixed batch
size ``b`` (PyTorch's default exporter writes ``Reshape`` to ``[b, -1]``) keeps the batch where a
``Reshape`` target starts with ``b``; ``allowzero = 1`` is accepted when the target has no 0.

Mapping onto layers:

- Gemm and MatMul become :class:`~circuitsim.network.layers.Dense` (``alpha`` and
  ``beta`` folded into the weights and bias); an Add of a constant right after a MatMul
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
from .layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool,
                     Reshape, fold_batchnorm)
from .network import Network
from .onnx_graph import BATCH, FLOAT_TYPES, FOLDABLE_OPS, classifier_tail, fold_constant
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


def _reshape(b: _Builder, node, a: dict) -> None:
    target = [int(v) for v in b.const(node, node.input[1]).ravel()]
    if node.input[0] in b.consts:  # a constant reshaped: fold it
        data = b.consts[node.input[0]]
        b.consts[node.output[0]] = data.reshape([data.shape[i] if v == 0 and not a.get("allowzero", 0) else v
                                                 for i, v in enumerate(target)])
        return
    src = b.computed(node, node.input[0])
    if a.get("allowzero", 0) and 0 in target:
        b.fail(node, f"allowzero = 1 with a 0 in the shape {target} makes an empty tensor; export without it")
    b.add(node, Reshape(batch_shape(b, node, node.input[0], target)), [src])


def batch_shape(b: _Builder, node, name: str, target: list[int]) -> tuple[int, ...]:
    """The ``Reshape`` target of computed value ``name`` for any batch size: every size concrete
    but the one that holds the batch, -1.

    The batch is the target entry that is a multiple of
    :data:`~circuitsim.network.onnx_graph.BATCH` (folded from ``Shape``), else its -1 when the
    model's batch size is dynamic. In a model exported
    for a fixed batch size ``b`` the batch must be the outermost index of the value (every axis
    before its batch axis of size 1): it is then the first entry ``j`` that holds ``b`` times the
    sizes between it and the entries after it (``(1, 17, 4, 8) → [1, 17, 32]``: entry 0;
    ``→ [17, 32]``: entry 0, the batch merged with the tokens). Anything else is ambiguous at a
    fixed batch size and refused.
    """
    shape = b.shape_of(name)
    if any(v == 0 and i >= len(shape) for i, v in enumerate(target)):
        b.fail(node, f"cannot reshape an input of shape {_per_image(b, name)} to {tuple(target)}: a 0 copies an "
                     "input dimension the input does not have; fix the model's Reshape")
    t = [shape[i] if v == 0 else v for i, v in enumerate(target)]
    batch_at = [i for i, v in enumerate(t) if v > 0 and v % BATCH == 0]
    axis = [i for i, v in enumerate(shape) if v % BATCH == 0]
    if not axis:  # a value the batch does not reach (a constant's)
        return tuple(target)
    p, fixed = axis[0], b.fixed_batch or 1
    before, after = int(np.prod(shape[:p], dtype=np.int64)), int(np.prod(shape[p + 1:], dtype=np.int64))
    after *= shape[p] // BATCH  # a batch axis already merged with others: the batch outermost in it
    if not batch_at and not b.fixed_batch and -1 in t:  # a dynamic batch: the one size not given holds it
        return tuple(t)
    if not batch_at:  # a fixed batch size: find the entry it falls into
        if -1 in t:
            known = int(np.prod([v for v in t if v != -1], dtype=np.int64))
            if known <= 0 or (before * fixed * after) % known:
                b.fail(node, f"cannot reshape a value of shape {_per_image(b, name)} per image to {target}")
            t[t.index(-1)] = before * fixed * after // known
        for j in range(len(t) if before == 1 else 0):
            tail = int(np.prod(t[j + 1:], dtype=np.int64))
            if after % tail == 0 and t[j] == fixed * (after // tail) and all(v == 1 for v in t[:j]):
                t[j], batch_at = BATCH * (t[j] // fixed), [j]
                break
    if len(batch_at) != 1:
        b.fail(node, f"cannot tell which size of the shape {target} holds the batch of a value of shape "
                     f"{_per_image(b, name)} per image; export the model with a dynamic batch size "
                     "(dynamic_axes, or dynamic_shapes with the default exporter)")
    j = batch_at[0]
    if -1 in t:
        i = t.index(-1)
        known = (t[j] // BATCH) * int(np.prod([v for m, v in enumerate(t) if m not in (i, j)], dtype=np.int64))
        per_image = before * after
        if known <= 0 or per_image % known:
            b.fail(node, f"cannot reshape a value of shape {_per_image(b, name)} per image to {target}")
        t[i] = per_image // known
    t[j] = -1
    return tuple(t)


def _per_image(b: _Builder, name: str) -> tuple[int, ...]:
    return tuple(b.examples[b.value[name]].shape)


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
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool,
    "BatchNormalization": _batchnorm, "Identity": _identity, "ReduceMean": _reduce_mean, "Reshape": _reshape,
    "Relu": _simple(lambda b, n, a: Activation("relu")),
    "Sigmoid": _simple(lambda b, n, a: Activation("sigmoid")),
    "Tanh": _simple(lambda b, n, a: Activation("tanh")),
    "GlobalAveragePool": _simple(lambda b, n, a: GlobalAvgPool()),
    "Flatten": _simple(lambda b, n, a: Flatten(int(a.get("axis", 1)))),
    "Clip": _simple(_clip),
    **TENSOR_HANDLERS,
}
