"""The ONNX operators of transformers, imported as digital tensor layers.

:mod:`circuitsim.network.onnx_import` turns a transformer's linear layers (``MatMul`` with a
constant matrix, ``Gemm``) into token-wise :class:`~circuitsim.network.layers.Dense` crossbar
layers; the handlers here take the rest (:mod:`circuitsim.network.tensor_layers`):

- ``LayerNormalization`` → :class:`~circuitsim.network.tensor_layers.LayerNorm`; its
  decomposed form (``ReduceMean``, ``Sub``, ``Pow``, ``Sqrt``, ``Div``, ``Mul``, ``Add``)
  imports node by node;
- ``Gelu`` (``approximate`` none or tanh), ``Erf``, ``Sqrt`` →
  :class:`~circuitsim.network.layers.Activation`; ``Softmax`` on any axis (opset >= 13; before,
  only on the last axis, where the two definitions agree);
- ``Sub``, ``Mul``, ``Div``, ``Pow`` of two values or a value and a constant →
  :class:`~circuitsim.network.tensor_layers.Binary`;
- ``Transpose``, ``Squeeze``, ``Unsqueeze``, ``Concat`` (constant inputs such as a class token
  become :class:`~circuitsim.network.tensor_layers.Constant` values, broadcast over the batch),
  ``Split`` (one :class:`~circuitsim.network.tensor_layers.Slice` per output), ``Slice``,
  ``Gather`` (constant indices of a value; a value's ids into a constant table is an
  :class:`~circuitsim.network.tensor_layers.Embedding`), ``Expand``, ``Reshape`` (of any
  value; :func:`batch_shape` finds the size that holds the batch).

Shape arithmetic on constants (``Shape``, ``ConstantOfShape``, ``Range``, ``Expand``,
``Where``, ...) is folded before these handlers run
(:data:`~circuitsim.network.onnx_graph.FOLDABLE_OPS`).

Public API
----------
TENSOR_HANDLERS, batch_shape
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .layers import Activation, Reshape
from .onnx_graph import BATCH
from .tensor_layers import (Binary, Concat, Embedding, Expand, Gather, LayerNorm, Slice, Squeeze, Transpose,
                            Unsqueeze)

Handler = Callable[[Any, Any, dict], None]


def _ints(b, node, index: int, attrs: dict, attr: str) -> list[int] | None:
    """Integers from input ``index`` (a constant) or attribute ``attr``; None when neither is given."""
    if len(node.input) > index and node.input[index]:
        return [int(v) for v in b.const(node, node.input[index]).ravel()]
    return [int(v) for v in attrs[attr]] if attr in attrs else None


def _reshape(b, node, a: dict) -> None:
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


def batch_shape(b, node, name: str, target: list[int]) -> tuple[int, ...]:
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


def _per_image(b, name: str) -> tuple[int, ...]:
    return tuple(b.examples[b.value[name]].shape)


def _layer_norm(b, node, a: dict) -> None:
    if any(name for name in node.output[1:] if b.uses.get(name)):
        b.fail(node, "its Mean and InvStdDev outputs are not supported (only the normalized value)")
    src = b.computed(node, node.input[0])
    bias = b.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    b.add(node, LayerNorm(b.const(node, node.input[1]), bias, int(a.get("axis", -1)),
                          float(a.get("epsilon", 1e-5))), [src])


def _gelu(b, node, a: dict) -> None:
    approximate = a.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate not in ("none", "tanh"):
        b.fail(node, f"approximate = {approximate!r} is not supported (none or tanh)")
    b.add(node, Activation("gelu" if approximate == "none" else "gelu_tanh"), [b.computed(node, node.input[0])])


def _function(kind: str) -> Handler:
    def handler(b, node, a: dict) -> None:
        b.add(node, Activation(kind), [b.computed(node, node.input[0])])
    return handler


def _softmax(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    ndim = b.examples[src].ndim
    axis = int(a.get("axis", -1 if b.opset >= 13 else 1))
    if b.opset < 13 and axis % ndim != ndim - 1:
        b.fail(node, f"before opset 13 Softmax flattens the axes from {axis} on; only the last axis is supported "
                     "(export with opset >= 13)")
    b.add(node, Activation("softmax", axis), [src])


def _binary(op: str) -> Handler:
    def handler(b, node, a: dict) -> None:
        left, right = node.input[0], node.input[1]
        if left in b.value and right in b.value:
            b.add(node, Binary(op), [b.value[left], b.value[right]])
        elif left in b.value:
            b.add(node, Binary(op, b.const(node, right)), [b.value[left]])
        else:
            b.add(node, Binary(op, b.const(node, left), reverse=True), [b.computed(node, right)])
    return handler


def _transpose(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    perm = a.get("perm", list(range(b.examples[src].ndim))[::-1])
    b.add(node, Transpose(tuple(int(p) for p in perm)), [src])


def _squeeze(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    axes = _ints(b, node, 1, a, "axes")
    if axes is None:  # every axis of size 1 at batch 1 but the batch's
        batch = [i for i, v in enumerate(b.shape_of(node.input[0])) if v % BATCH == 0]
        axes = [i for i, v in enumerate(b.examples[src].shape) if v == 1 and i not in batch]
    b.add(node, Squeeze(tuple(axes)), [src])


def _unsqueeze(b, node, a: dict) -> None:
    axes = _ints(b, node, 1, a, "axes")
    if axes is None:
        b.fail(node, "needs its axes")
    b.add(node, Unsqueeze(tuple(axes)), [b.computed(node, node.input[0])])


def _concat(b, node, a: dict) -> None:
    if not any(name in b.value for name in node.input):
        b.computed(node, node.input[0])
    b.add(node, Concat(int(a["axis"])), [b.operand(node, name) for name in node.input])


def _split(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    axis = int(a.get("axis", 0))
    size = b.examples[src].shape[axis]
    if BATCH * size in (b.shape_of(node.input[0])[axis],):
        b.fail(node, f"splitting the batch axis {axis} is not supported")
    sizes = _ints(b, node, 1, a, "split")
    if sizes is None:
        parts = int(a.get("num_outputs", len(node.output)))
        step = -(-size // parts)
        sizes = [min(step, size - k * step) for k in range(parts)]
    if sum(sizes) != size or len(sizes) != len(node.output):
        b.fail(node, f"split sizes {sizes} do not cut axis {axis} of size {size} into {len(node.output)} parts")
    start = 0
    for name, n in zip(node.output, sizes):
        b.add(node, Slice((start,), (start + n,), (axis,)), [src], output=name)
        start += n


def _slice(b, node, a: dict) -> None:
    src = b.computed(node, node.input[0])
    starts, stops = _ints(b, node, 1, a, "starts"), _ints(b, node, 2, a, "ends")
    if starts is None or stops is None:
        b.fail(node, "needs its starts and ends")
    axes = _ints(b, node, 3, a, "axes") or list(range(len(starts)))
    steps = _ints(b, node, 4, a, "steps") or [1] * len(starts)
    batch = [i for i, v in enumerate(b.shape_of(node.input[0])) if v % BATCH == 0]
    ndim = b.examples[src].ndim
    for axis, start, stop, step in zip(axes, starts, stops, steps):
        if axis % ndim in batch and not (start == 0 and step == 1 and stop >= 2 ** 31 - 1):
            b.fail(node, f"slicing the batch axis {axis} is not supported")
    big = np.iinfo(np.int64).max  # ONNX's "to the end" (INT64_MAX) as a Python slice bound
    stops = [min(s, big) for s in stops]
    b.add(node, Slice(tuple(starts), tuple(stops), tuple(axes), tuple(steps)), [src])


def _gather(b, node, a: dict) -> None:
    data, indices, axis = node.input[0], node.input[1], int(a.get("axis", 0))
    if data in b.value:
        if indices not in b.consts:
            b.fail(node, "indices computed from the input are only supported into a constant table (an embedding)")
        b.add(node, Gather(b.const(node, indices), axis), [b.value[data]])
        return
    if axis != 0:
        b.fail(node, f"an embedding lookup needs axis = 0, got {axis}")
    b.add(node, Embedding(b.const(node, data)), [b.computed(node, indices)])


def _expand(b, node, a: dict) -> None:
    shape = [1 if v > 0 and v % BATCH == 0 else v for v in _ints(b, node, 1, a, "shape") or []]
    b.add(node, Expand(tuple(shape)), [b.computed(node, node.input[0])])


TENSOR_HANDLERS: dict[str, Handler] = {
    "LayerNormalization": _layer_norm, "Gelu": _gelu, "Erf": _function("erf"), "Sqrt": _function("sqrt"),
    "Softmax": _softmax, "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _binary("div"),
    "Pow": _binary("pow"), "Transpose": _transpose, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Concat": _concat, "Split": _split, "Slice": _slice, "Gather": _gather, "Expand": _expand,
    "Reshape": _reshape,
}
"""Importers of the transformer operators, by ONNX operator (merged into the importer's)."""
