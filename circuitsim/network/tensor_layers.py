"""Digital tensor layers: what a transformer computes between its crossbar layers.

A transformer's linear layers (QKV, projection, MLP) are :class:`~circuitsim.network.layers.Dense`
layers applied token-wise on crossbars; everything else runs digitally, on the whole value
(batch dimension included, wherever an earlier :class:`Transpose` moved it):

- :class:`LayerNorm` (ONNX ``LayerNormalization``: the mean and variance over the last axes);
- :class:`MatMul` of two computed values (attention's ``q @ kᵀ`` and ``a @ v``; its
  multiply-accumulates are counted by :meth:`MatMul.macs`);
- :class:`Binary` (``sub``, ``mul``, ``div``, ``pow`` of two values or of a value and a constant,
  with numpy's broadcasting) and :class:`Reduce` (a mean over some axes);
- the shape operations :class:`Transpose`, :class:`Squeeze`, :class:`Unsqueeze`,
  :class:`Concat` (inputs broadcast over every axis but the concatenated one, so a class
  token stored once joins every image of a batch), :class:`Slice`, :class:`Gather` (constant
  indices), :class:`Expand`;
- :class:`Embedding` (a table looked up by the value's integer ids) and :class:`Constant` (a
  constant tensor as a value of the network, e.g. the class token).

Element-wise functions (GELU, erf, square root) are kinds of
:class:`~circuitsim.network.layers.Activation`.

Public API
----------
LayerNorm, MatMul, Binary, Reduce, Transpose, Squeeze, Unsqueeze, Concat, Slice, Gather,
Expand, Embedding, Constant, BINARY_OPS
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .layers import _array

BINARY_OPS = ("sub", "mul", "div", "pow")
"""Operations of :class:`Binary` (``add`` is :class:`~circuitsim.network.layers.Add`)."""

_NUMPY = {"sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}


def _axes(value, name: str) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise ConfigError(f"{name} must be integers, got {value!r}")
    return tuple(int(a) for a in axes)


@dataclass(frozen=True, eq=False)
class LayerNorm:
    """``(x - mean) / sqrt(var + eps) · scale + bias``, mean and variance over the axes from ``axis`` on."""

    scale: np.ndarray
    """Gamma, broadcast against the normalized axes."""
    bias: np.ndarray | None = None
    """Beta, or None."""
    axis: int = -1
    """First normalized axis (ONNX's ``axis``; the normalized axes run to the last)."""
    eps: float = 1e-5
    """Added to the variance."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "scale", _array(self.scale, "LayerNorm scale"))
        if self.bias is not None:
            object.__setattr__(self, "bias", _array(self.bias, "LayerNorm bias"))
        object.__setattr__(self, "axis", int(self.axis))
        if not self.eps > 0:
            raise ConfigError(f"LayerNorm eps must be > 0, got {self.eps!r}")

    def __call__(self, x):
        x = np.asarray(x, np.float64)
        axes = tuple(range(self.axis % x.ndim, x.ndim))
        centred = x - x.mean(axis=axes, keepdims=True)
        out = centred / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + self.eps) * self.scale
        return out + self.bias if self.bias is not None else out


@dataclass(frozen=True)
class MatMul:
    """The matrix product of two computed values (numpy's ``matmul`` broadcasting), kept digital."""

    crossbar = False

    def __call__(self, x, y):
        try:
            return np.matmul(np.asarray(x, np.float64), np.asarray(y, np.float64))
        except ValueError:
            raise ConfigError(f"MatMul cannot multiply shapes {np.shape(x)} and {np.shape(y)}") from None

    @staticmethod
    def macs(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
        """Multiply-accumulates of one product of values shaped ``x_shape`` and ``y_shape``."""
        out = np.broadcast_shapes(tuple(x_shape[:-2]), tuple(y_shape[:-2]))
        return int(np.prod(out, dtype=np.int64)) * int(x_shape[-2]) * int(x_shape[-1]) * int(y_shape[-1])


@dataclass(frozen=True, eq=False)
class Binary:
    """``x op y`` of two values, or ``x op constant`` (``constant op x`` when ``reverse``)."""

    op: str
    """One of :data:`BINARY_OPS`."""
    constant: np.ndarray | None = None
    """The constant operand (broadcast), or None: the layer's second input."""
    reverse: bool = False
    """Whether the constant is the left operand."""

    crossbar = False

    def __post_init__(self):
        if self.op not in BINARY_OPS:
            raise ConfigError(f"Binary op must be one of {', '.join(BINARY_OPS)}, got {self.op!r}")
        if self.constant is not None:
            object.__setattr__(self, "constant", _array(self.constant, "Binary constant"))

    def __call__(self, x, y=None):
        if (y is None) == (self.constant is None):
            raise ConfigError(f"Binary {self.op} takes two inputs, or one input and a constant")
        left, right = np.asarray(x, np.float64), np.asarray(self.constant if y is None else y, np.float64)
        if self.reverse:
            left, right = right, left
        try:
            return _NUMPY[self.op](left, right)
        except ValueError:
            raise ConfigError(f"Binary {self.op} cannot broadcast shapes {left.shape} and {right.shape}") from None


@dataclass(frozen=True)
class Reduce:
    """The mean over ``axes`` (ONNX ``ReduceMean``)."""

    axes: tuple[int, ...]
    """Reduced axes (of the whole value, batch included)."""
    keepdims: bool = True
    """Whether the reduced axes stay, with size 1."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "axes", _axes(self.axes, "Reduce axes"))

    def __call__(self, x):
        return np.asarray(x, np.float64).mean(axis=self.axes, keepdims=self.keepdims)


@dataclass(frozen=True)
class Transpose:
    """Axes permuted: output axis ``i`` is input axis ``perm[i]``."""

    perm: tuple[int, ...]
    """The permutation (batch axis included)."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "perm", _axes(self.perm, "Transpose perm"))
        if sorted(self.perm) != list(range(len(self.perm))):
            raise ConfigError(f"Transpose perm must be a permutation of 0..{len(self.perm) - 1}, got {self.perm}")

    def __call__(self, x):
        if np.ndim(x) != len(self.perm):
            raise ConfigError(f"Transpose {self.perm} got a {np.ndim(x)}-D input of shape {np.shape(x)}")
        return np.transpose(x, self.perm)


@dataclass(frozen=True)
class Squeeze:
    """Axes of size 1 removed."""

    axes: tuple[int, ...]
    """The removed axes."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "axes", _axes(self.axes, "Squeeze axes"))

    def __call__(self, x):
        try:
            return np.squeeze(x, axis=self.axes)
        except ValueError:
            raise ConfigError(f"cannot squeeze axes {self.axes} of shape {np.shape(x)}") from None


@dataclass(frozen=True)
class Unsqueeze:
    """Axes of size 1 inserted (positions in the output, as ONNX's ``Unsqueeze``)."""

    axes: tuple[int, ...]
    """The inserted axes."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "axes", _axes(self.axes, "Unsqueeze axes"))

    def __call__(self, x):
        out = np.asarray(x)
        ndim = out.ndim + len(self.axes)
        for axis in sorted(a % ndim for a in self.axes):
            out = np.expand_dims(out, axis)
        return out


@dataclass(frozen=True)
class Concat:
    """The inputs joined along ``axis``, each first broadcast to the others' sizes on the other axes."""

    axis: int
    """The joined axis."""

    crossbar = False

    def __call__(self, *xs):
        arrays = [np.asarray(x, np.float64) for x in xs]
        ndim = arrays[0].ndim
        if any(a.ndim != ndim for a in arrays):
            raise ConfigError(f"Concat inputs must have the same number of axes, got {[a.shape for a in arrays]}")
        axis = self.axis % ndim
        size = [max(a.shape[i] for a in arrays) for i in range(ndim)]
        try:
            parts = [np.broadcast_to(a, tuple(a.shape[i] if i == axis else size[i] for i in range(ndim)))
                     for a in arrays]
        except ValueError:
            raise ConfigError(f"Concat on axis {self.axis} cannot join shapes {[a.shape for a in arrays]}") from None
        return np.concatenate(parts, axis=axis)


@dataclass(frozen=True)
class Slice:
    """``x[start:stop:step]`` on each of ``axes`` (ONNX's ``Slice``, and each output of ``Split``)."""

    starts: tuple[int, ...]
    """First index on each axis (negative: from the end)."""
    stops: tuple[int, ...]
    """End (exclusive) on each axis (clamped like Python slices)."""
    axes: tuple[int, ...]
    """The sliced axes."""
    steps: tuple[int, ...] = ()
    """Steps (empty: 1 on every axis)."""

    crossbar = False

    def __post_init__(self):
        for name in ("starts", "stops", "axes", "steps"):
            object.__setattr__(self, name, _axes(getattr(self, name), f"Slice {name}"))
        if not self.steps:
            object.__setattr__(self, "steps", (1,) * len(self.axes))
        if not len(self.starts) == len(self.stops) == len(self.axes) == len(self.steps) or 0 in self.steps:
            raise ConfigError(f"Slice needs one start, stop and non-zero step per axis, got {self}")

    def __call__(self, x):
        x = np.asarray(x)
        index = [slice(None)] * x.ndim
        for start, stop, axis, step in zip(self.starts, self.stops, self.axes, self.steps):
            index[axis % x.ndim] = slice(start, stop, step)
        return x[tuple(index)]


@dataclass(frozen=True, eq=False)
class Gather:
    """``numpy.take(x, indices, axis)`` with constant indices (a scalar index removes the axis)."""

    indices: np.ndarray
    """Integer indices (negative: from the end)."""
    axis: int = 0
    """The indexed axis."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "indices", np.asarray(self.indices, dtype=np.int64))
        object.__setattr__(self, "axis", int(self.axis))

    def __call__(self, x):
        try:
            return np.take(x, self.indices, axis=self.axis)
        except (IndexError, np.exceptions.AxisError):
            raise ConfigError(f"Gather of indices {self.indices.tolist()} on axis {self.axis} is out of range "
                              f"for shape {np.shape(x)}") from None


@dataclass(frozen=True)
class Expand:
    """The input broadcast to ``shape`` (ONNX's two-way broadcasting: 1 keeps the input's size)."""

    shape: tuple[int, ...]
    """Target shape."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "shape", _axes(self.shape, "Expand shape"))

    def __call__(self, x):
        try:
            return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), self.shape))
        except ValueError:
            raise ConfigError(f"cannot expand shape {np.shape(x)} to {self.shape}") from None


@dataclass(frozen=True, eq=False)
class Embedding:
    """Rows of ``table`` looked up by the input's integer ids (a digital embedding table)."""

    table: np.ndarray
    """``(vocabulary, ...)`` embeddings."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "table", _array(self.table, "Embedding table"))

    def __call__(self, ids):
        ids = np.asarray(ids)
        index = np.rint(ids).astype(np.int64)
        if np.any(index != ids) or index.size and (index.min() < -len(self.table) or index.max() >= len(self.table)):
            raise ConfigError(f"Embedding ids must be integers in [0, {len(self.table)}), got values from "
                              f"{ids.min()} to {ids.max()}")
        return self.table[index]


@dataclass(frozen=True, eq=False)
class Constant:
    """A constant tensor as a value of the network (its input is ignored)."""

    value: np.ndarray
    """The tensor (a leading axis of 1 is broadcast over the batch where it joins other values)."""

    crossbar = False

    def __post_init__(self):
        object.__setattr__(self, "value", _array(self.value, "Constant value"))

    def __call__(self, x=None):
        return self.value
