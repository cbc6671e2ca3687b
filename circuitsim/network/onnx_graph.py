"""What the ONNX importer does with the parts of a graph that are not layers.

Exporters surround a network's layers with two kinds of bookkeeping that never reach a
crossbar:

- **shape arithmetic**: PyTorch writes ``x.view(x.size(0), -1)`` as ``Shape`` → ``Gather``
  → ``Unsqueeze`` → ``Concat`` → ``Reshape``, and casts and slices of constants. These
  nodes only compute constants once the input's size is known, so :func:`fold_constant`
  evaluates them in numpy. The batch size is the one unknown: ``Shape`` of a computed value
  returns :data:`BATCH` in its first entry, and a ``Reshape`` that keeps :data:`BATCH`
  first keeps the batch dimension.
- **a classifier tail**: skl2onnx classifiers end in ``ArgMax`` → ``ArrayFeatureExtractor``
  (the class labels) → ``Reshape`` → ``Cast`` (the label output) and ``ZipMap`` (the
  probabilities as a list of maps). :func:`classifier_tail` finds it; the importer keeps
  the probabilities as the network's output and the labels in a :class:`ClassifierTail`,
  the digital post-processing after the network.

Public API
----------
ClassifierTail, classifier_tail, fold_constant, FOLDABLE_OPS, TAIL_OPS, BATCH
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

BATCH = 2_147_483_647
"""Stand-in for the batch size in folded shapes (a prime no tensor dimension equals)."""

FOLDABLE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Div", "Sub",
                "Add", "Pow", "Mod", "Sqrt", "Equal", "Where", "Range", "Expand", "Transpose", "Constant",
                "ConstantOfShape")
"""Operators evaluated at import when all their inputs are constants (``Shape``: of any value)."""

TAIL_OPS = ("ArgMax", "ArrayFeatureExtractor", "ZipMap", "Cast", "Reshape", "Identity", "Squeeze", "Flatten")
"""Operators that may follow a classifier's ``ArgMax`` (or take its probabilities, ``ZipMap``)."""

# ONNX TensorProto element types numpy can hold (value: numpy dtype)
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
FLOAT_TYPES = (1, 11)
"""ONNX element types a computed value may be cast to without changing it here (float, double)."""


@dataclass(frozen=True, eq=False)
class ClassifierTail:
    """A classifier's digital post-processing: output index → class label.

    The imported network's output is the class probabilities (or scores); the exported
    model's label output is ``labels[argmax(output)]``.
    """

    labels: np.ndarray
    """Class label of each output, in output order (integers or strings)."""
    nodes: tuple[str, ...]
    """Names of the ONNX nodes handled here instead of on crossbars."""

    def label(self, outputs: np.ndarray) -> np.ndarray:
        """The class labels of ``(N, n_classes)`` network outputs.

        Parameters
        ----------
        outputs : numpy.ndarray
            Probabilities or scores, one row per input (dimensionless).

        Returns
        -------
        numpy.ndarray
            ``(N,)`` labels, of the labels' type.
        """
        return np.asarray(self.labels[np.argmax(np.asarray(outputs).reshape(len(outputs), -1), axis=1)])

    def indices(self, labels: Any) -> np.ndarray:
        """Output indices of class ``labels`` (to score a network against labelled data).

        Raises :class:`~circuitsim.errors.ConfigError` naming a label that is not a class.
        """
        from ..errors import ConfigError

        where = {label: k for k, label in enumerate(self.labels.tolist())}
        try:
            return np.array([where[label] for label in np.asarray(labels).tolist()], dtype=np.int64)
        except KeyError as exc:
            raise ConfigError(f"label {exc.args[0]!r} is not one of the classifier's classes "
                              f"{self.labels.tolist()}") from None


def classifier_tail(graph: Any, consts: dict[str, np.ndarray]) -> tuple[str, ClassifierTail] | None:
    """Find a classifier tail: the probabilities' name and the tail, or None.

    The tail starts at an ``ArgMax`` over axis 1 of a value ``P``; every node downstream of the
    ``ArgMax`` must be one of :data:`TAIL_OPS`, and ``ZipMap`` nodes (and ``Cast`` s to
    float) of ``P`` join it. The labels come from the ``ArrayFeatureExtractor``'s constant
    (or a ``ZipMap``'s ``classlabels_*``); without either, the class indices.
    """
    from onnx import helper

    argmax = [n for n in graph.node if n.op_type == "ArgMax"]
    if len(argmax) != 1:
        return None
    probabilities = argmax[0].input[0]
    tail, frontier = [argmax[0]], {argmax[0].output[0]}
    for node in graph.node:  # topological order: consumers come after producers
        if node is argmax[0]:
            continue
        if any(i in frontier for i in node.input):
            if node.op_type not in TAIL_OPS:
                return None
            tail.append(node)
            frontier.update(node.output)
        elif node.op_type == "ZipMap" and node.input[0] == probabilities:
            tail.append(node)
    labels = None
    for node in tail:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "ArrayFeatureExtractor" and node.input[0] in consts:
            labels = np.asarray(consts[node.input[0]]).ravel()
        elif node.op_type == "ZipMap" and labels is None:
            if attrs.get("classlabels_int64s"):
                labels = np.asarray(attrs["classlabels_int64s"], dtype=np.int64)
            elif attrs.get("classlabels_strings"):
                labels = np.asarray([s.decode() for s in attrs["classlabels_strings"]])
    if labels is not None and labels.dtype.kind in "SO":
        labels = np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in labels])
    names = tuple(n.name or n.output[0] for n in tail)
    return probabilities, ClassifierTail(labels if labels is not None else np.array([], np.int64), names)


def _axes(node: Any, attrs: dict[str, Any], consts: dict[str, np.ndarray]) -> list[int]:
    if len(node.input) > 1 and node.input[1]:
        return [int(v) for v in np.asarray(consts[node.input[1]]).ravel()]
    return list(attrs.get("axes", []))


def fold_constant(node: Any, attrs: dict[str, Any], consts: dict[str, np.ndarray],
                  shape_of: Callable[[str], tuple[int, ...]]) -> np.ndarray:
    """Evaluate ``node`` on constant inputs (numpy); ``shape_of(name)`` gives a computed
    value's shape with :data:`BATCH` first (for ``Shape``).

    Raises KeyError when an input it needs is not a constant, ValueError when the node's
    attributes are not supported.
    """
    op = node.op_type
    if op == "Shape":
        shape = np.asarray(consts[node.input[0]].shape if node.input[0] in consts else shape_of(node.input[0]),
                           dtype=np.int64)
        return shape[attrs.get("start", 0):attrs.get("end", len(shape))]
    if op == "Constant":
        from onnx import numpy_helper

        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key in ("value_int", "value_float"):
            if key in attrs:
                return np.asarray(attrs[key])
        for key in ("value_ints", "value_floats"):
            if key in attrs:
                return np.asarray(list(attrs[key]))
        raise ValueError("only a tensor, int(s) or float(s) value is supported")
    x: list[Any] = [consts[name] if name else None for name in node.input]
    if op == "Gather":
        return np.take(x[0], np.asarray(x[1], dtype=np.int64), axis=attrs.get("axis", 0))
    if op == "Unsqueeze":
        out = np.asarray(x[0])
        for axis in sorted(a % (out.ndim + len(_axes(node, attrs, consts))) for a in _axes(node, attrs, consts)):
            out = np.expand_dims(out, axis)
        return out
    if op == "Squeeze":
        axes = _axes(node, attrs, consts)
        return np.asarray(np.squeeze(x[0], axis=tuple(axes) if axes else None))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in x], axis=attrs.get("axis", 0))
    if op == "Cast":
        if attrs["to"] not in _DTYPES:
            raise ValueError(f"a cast to ONNX type {attrs['to']} is not supported")
        return np.asarray(np.asarray(x[0]).astype(_DTYPES[attrs["to"]]))
    if op == "Slice":
        data = np.asarray(x[0])
        starts, ends = np.asarray(x[1]).ravel(), np.asarray(x[2]).ravel()
        where = np.asarray(x[3]).ravel() if len(x) > 3 and x[3] is not None else np.arange(len(starts))
        steps = np.asarray(x[4]).ravel() if len(x) > 4 and x[4] is not None else np.ones(len(starts), int)
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(starts, ends, where, steps):
            index[int(axis)] = slice(int(start), int(end), int(step))
        return np.asarray(data[tuple(index)])
    if op in ("Mul", "Div", "Sub", "Add", "Pow", "Mod", "Equal"):
        left, right = np.asarray(x[0]), np.asarray(x[1])
        if op == "Div":
            integers = left.dtype.kind in "iu" and right.dtype.kind in "iu"
            return np.asarray(left // right if integers else left / right)
        function = {"Mul": np.multiply, "Sub": np.subtract, "Add": np.add, "Pow": np.power, "Equal": np.equal,
                    "Mod": np.fmod if attrs.get("fmod", 0) else np.mod}[op]
        return np.asarray(function(left, right)).astype(np.bool_ if op == "Equal" else left.dtype)
    if op == "Sqrt":
        return np.asarray(np.sqrt(np.asarray(x[0])))
    if op == "Where":
        return np.asarray(np.where(np.asarray(x[0], dtype=bool), x[1], x[2]))
    if op == "Range":
        start, limit, delta = (np.asarray(v).ravel()[0] for v in x[:3])
        return np.arange(start, limit, delta, dtype=np.asarray(x[0]).dtype)
    if op == "Expand":  # the batch (folded from Shape) stays 1: the value is broadcast where it is used
        sizes = tuple(1 if v > 0 and v % BATCH == 0 else int(v) for v in np.asarray(x[1]).ravel())
        data = np.asarray(x[0])
        return np.asarray(np.broadcast_to(data, np.broadcast_shapes(data.shape, sizes)))
    if op == "Transpose":
        return np.transpose(x[0], attrs.get("perm"))
    if op == "ConstantOfShape":
        from onnx import numpy_helper

        value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        return np.full(tuple(int(v) for v in np.asarray(x[0]).ravel()), value.ravel()[0], dtype=value.dtype)
    raise ValueError(f"{op} is not evaluated at import")
