"""Layer types of a network: the ones that go onto crossbars and the digital ones.

Two layer types hold weights and are mapped onto crossbar tiles:

- :class:`Dense` computes ``gain · (x @ weight + bias)`` on ``(N, n_in)`` inputs (on
  ``(N, tokens, n_in)`` inputs token by token, each token one crossbar evaluation);
- :class:`Conv2d` computes the same product for every output position of an
  ``(N, C, H, W)`` input, with ``weight`` of shape ``(c_out, c_in, k_h, k_w)`` unrolled
  (im2col, :mod:`circuitsim.network.conv`) into a ``(c_in·k_h·k_w) × c_out`` matrix.

Both expose :meth:`~Dense.matrix` (the crossbar's weights and bias row), :meth:`~Dense.rows`
(the crossbar inputs, one row per output position) and :meth:`~Dense.apply`, which runs
the layer with any multiply-accumulate in place of the float product — the evaluator
passes its tiles. ``gain`` is the amplifier gain after the crossbar (dimensionless).

The other layers run digitally: :class:`MaxPool`, :class:`AvgPool`, :class:`GlobalAvgPool`,
:class:`Flatten`, :class:`Reshape`, :class:`BatchNorm` (kept digital when it does not follow
a crossbar layer; :func:`fold_batchnorm` folds it into the preceding one), :class:`Activation`
(relu, sigmoid, tanh, hard-tanh, softmax, GELU, erf, square root) and :class:`Add` (a residual sum of two values,
or a constant added to one).

Public API
----------
Dense, Conv2d, MaxPool, AvgPool, GlobalAvgPool, Flatten, Reshape, BatchNorm, Activation,
Add, ACTIVATIONS, fold_batchnorm, weight_scale
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import erf

from ..errors import ConfigError
from .conv import avg_pool, im2col, max_pool

ACTIVATIONS = ("relu", "sigmoid", "tanh", "hardtanh", "step", "softmax", "gelu", "gelu_tanh", "erf", "sqrt")
"""Activation kinds of :class:`Activation`."""

Mac = Callable[[np.ndarray], np.ndarray]

OPTIONAL = {"optional": True}
"""Field metadata: left out of weights files and content hashes while it is None (files and
hashes written before the field existed stay valid)."""


def _array(value, name: str, ndim: int | None = None) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ConfigError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} has non-finite values")
    return a


@dataclass(frozen=True, eq=False)
class Dense:
    """A fully connected layer: ``gain · (x @ weight + bias)``."""

    weight: np.ndarray
    """``(n_in, n_out)`` weights (any real values; the mapping scales them)."""
    bias: np.ndarray | None = None
    """``(n_out,)`` biases, one crossbar row driven like an input at 1, or None."""
    gain: float = 1.0
    """Amplifier gain applied to the sums (dimensionless)."""
    scale: float | None = field(default=None, metadata=OPTIONAL)
    """Weight scale ``s`` of the crossbar (the tiles hold ``weight / s``, the amplifier multiplies
    by ``s``); None: the largest weight or bias magnitude. A network trained for the device's
    range (the MLP's weights in [-1, 1]) has ``s = 1``."""
    cells: np.ndarray | None = field(default=None, metadata=OPTIONAL)
    """The layer's own cells, ``(n_in + bias) × 2 n_out`` conductances (siemens, pairs side by side,
    the bias row last), mapped as they are instead of from ``weight`` (a random-conductance
    network's); None: map ``weight``."""

    crossbar = True

    def __post_init__(self):
        object.__setattr__(self, "weight", _array(self.weight, "Dense weight", 2))
        if self.bias is not None:
            object.__setattr__(self, "bias", _array(self.bias, "Dense bias", 1))
            if self.bias.shape != (self.weight.shape[1],):
                raise ConfigError(f"Dense bias has shape {self.bias.shape}, expected ({self.weight.shape[1]},)")
        _check_scale(self)
        if self.cells is not None:
            object.__setattr__(self, "cells", _array(self.cells, "Dense cells", 2))
            rows = self.weight.shape[0] + int(self.bias is not None)
            if self.cells.shape != (rows, 2 * self.weight.shape[1]) or self.cells.min(initial=0.0) < 0:
                raise ConfigError(f"Dense cells must be {rows} x {2 * self.weight.shape[1]} conductances >= 0, "
                                  f"got shape {self.cells.shape}")

    def matrix(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The crossbar's ``(rows, n_out)`` weights and its bias row (or None)."""
        return self.weight, self.bias

    def rows(self, x: np.ndarray) -> np.ndarray:
        """Crossbar inputs: the ``(N, n_in)`` input itself; a ``(N, ..., n_in)`` input (a transformer's
        tokens) gives one row per token, ``(N·..., n_in)``."""
        if x.ndim < 2 or x.shape[-1] != self.weight.shape[0]:
            raise ConfigError(f"a Dense layer of {self.weight.shape[0]} inputs got input of shape {x.shape}; "
                              f"its last axis must have {self.weight.shape[0]} values: add a Flatten before it "
                              "or fix its weights")
        return x.reshape(-1, x.shape[-1]) if x.ndim > 2 else x

    def apply(self, x: np.ndarray, mac: Mac | None = None) -> np.ndarray:
        """Run the layer (token-wise on a ``(N, ..., n_in)`` input); ``mac(rows)`` replaces
        ``rows @ weight + bias`` when given."""
        rows = self.rows(x)
        sums = mac(rows) if mac is not None else _mac(rows, self.weight, self.bias)
        out = self.gain * sums
        return out.reshape(x.shape[:-1] + (out.shape[-1],)) if x.ndim > 2 else out

    __call__ = apply

    def replace(self, **changes) -> Dense:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Conv2d:
    """A 2-D convolution (groups = 1, dilation 1): ``gain · (conv(x, weight) + bias)``."""

    weight: np.ndarray
    """``(c_out, c_in, k_h, k_w)`` kernels."""
    bias: np.ndarray | None = None
    """``(c_out,)`` biases (one crossbar row), or None."""
    stride: tuple[int, int] = (1, 1)
    """Step between output positions, ``(s_h, s_w)`` pixels."""
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Zero padding ``(top, left, bottom, right)``, pixels."""
    gain: float = 1.0
    """Amplifier gain applied to the sums (dimensionless)."""
    scale: float | None = field(default=None, metadata=OPTIONAL)
    """Weight scale of the crossbar, as :attr:`Dense.scale`."""

    crossbar = True

    def __post_init__(self):
        _check_scale(self)
        object.__setattr__(self, "weight", _array(self.weight, "Conv2d weight", 4))
        if self.bias is not None:
            object.__setattr__(self, "bias", _array(self.bias, "Conv2d bias", 1))
            if self.bias.shape != (self.weight.shape[0],):
                raise ConfigError(f"Conv2d bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")
        object.__setattr__(self, "stride", _ints(self.stride, 2, "Conv2d stride", 1))
        object.__setattr__(self, "padding", _ints(self.padding, 4, "Conv2d padding", 0))

    @property
    def kernel(self) -> tuple[int, int]:
        """``(k_h, k_w)``."""
        return tuple(self.weight.shape[2:])

    def matrix(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The im2col matrix ``(c_in·k_h·k_w, c_out)`` and the bias row (or None)."""
        return self.weight.reshape(self.weight.shape[0], -1).T, self.bias

    def rows(self, x: np.ndarray) -> np.ndarray:
        """Crossbar inputs: ``(N, H_out, W_out, c_in·k_h·k_w)`` receptive fields."""
        if x.ndim != 4 or x.shape[1] != self.weight.shape[1]:
            raise ConfigError(f"a Conv2d layer of {self.weight.shape[1]} input channels got input of "
                              f"shape {x.shape}; it needs (N, {self.weight.shape[1]}, H, W)")
        return im2col(x, self.kernel, self.stride, self.padding)

    def apply(self, x: np.ndarray, mac: Mac | None = None) -> np.ndarray:
        """Run the layer; ``mac(rows)`` (rows ``(M, c_in·k_h·k_w)``) replaces the float product."""
        return self.output(self.rows(x), mac)

    def output(self, fields: np.ndarray, mac: Mac | None = None) -> np.ndarray:
        """The layer's ``(N, c_out, H_out, W_out)`` output from its receptive fields (:meth:`rows`)."""
        flat = fields.reshape(-1, fields.shape[-1])
        w, b = self.matrix()
        sums = mac(flat) if mac is not None else _mac(flat, w, b)
        out = (self.gain * sums).reshape(fields.shape[:3] + (w.shape[1],))
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    __call__ = apply

    def replace(self, **changes) -> Conv2d:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _check_scale(layer) -> None:
    if layer.scale is not None:
        value = float(layer.scale)
        if not 0 < value < np.inf:
            raise ConfigError(f"{type(layer).__name__} scale must be a finite number > 0, got {layer.scale!r}")
        object.__setattr__(layer, "scale", value)


def weight_scale(layer: Dense | Conv2d) -> float:
    """The crossbar's weight scale ``s``: the layer's ``scale``, else its largest weight or bias
    magnitude (1 for an all-zero layer)."""
    if layer.scale is not None:
        return layer.scale
    w, b = layer.matrix()
    peak = max(float(np.abs(w).max(initial=0.0)), float(np.abs(b).max(initial=0.0)) if b is not None else 0.0)
    return peak or 1.0


def _mac(rows, w, b):
    out = rows @ w
    return out + b if b is not None else out


def _ints(value, n: int, name: str, minimum: int) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   and v >= minimum for v in values):
        raise ConfigError(f"{name} must be {n} integers >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class MaxPool:
    """Maximum over ``kernel`` windows of an ``(N, C, H, W)`` input."""

    kernel: tuple[int, int] = (2, 2)
    """Window ``(k_h, k_w)``, pixels."""
    stride: tuple[int, int] | None = None
    """Step ``(s_h, s_w)``; None: the kernel."""
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Padding ``(top, left, bottom, right)`` (never selected)."""

    crossbar = False

    def __post_init__(self):
        _pool_fields(self)

    def __call__(self, x):
        return max_pool(x, self.kernel, self.stride, self.padding)


@dataclass(frozen=True)
class AvgPool:
    """Mean over ``kernel`` windows of an ``(N, C, H, W)`` input."""

    kernel: tuple[int, int] = (2, 2)
    """Window ``(k_h, k_w)``, pixels."""
    stride: tuple[int, int] | None = None
    """Step ``(s_h, s_w)``; None: the kernel."""
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Padding ``(top, left, bottom, right)``."""
    count_include_pad: bool = False
    """Whether padded pixels count in the mean (ONNX's ``count_include_pad``)."""

    crossbar = False

    def __post_init__(self):
        _pool_fields(self)

    def __call__(self, x):
        return avg_pool(x, self.kernel, self.stride, self.padding, self.count_include_pad)


def _pool_fields(layer) -> None:
    name = type(layer).__name__
    object.__setattr__(layer, "kernel", _ints(layer.kernel, 2, f"{name} kernel", 1))
    object.__setattr__(layer, "stride", _ints(layer.kernel if layer.stride is None else layer.stride,
                                              2, f"{name} stride", 1))
    object.__setattr__(layer, "padding", _ints(layer.padding, 4, f"{name} padding", 0))


@dataclass(frozen=True)
class GlobalAvgPool:
    """Mean over all pixels of each channel: ``(N, C, H, W)`` → ``(N, C, 1, 1)``."""

    crossbar = False

    def __call__(self, x):
        return np.asarray(x, dtype=np.float64).mean(axis=(2, 3), keepdims=True)


@dataclass(frozen=True)
class Flatten:
    """Flatten to 2-D: dimensions before ``axis`` become rows, the rest columns (ONNX)."""

    axis: int = 1
    """First dimension of the columns."""

    crossbar = False

    def __call__(self, x):
        axis = self.axis % x.ndim if self.axis else 0
        return x.reshape(int(np.prod(x.shape[:axis], dtype=int)), -1)


@dataclass(frozen=True)
class Reshape:
    """Reshape with ONNX's rules: 0 copies the input's dimension, -1 is inferred."""

    shape: tuple[int, ...]
    """Target shape (batch dimension included)."""

    crossbar = False

    def __call__(self, x):
        if any(s == 0 and i >= x.ndim for i, s in enumerate(self.shape)):
            raise ConfigError(f"cannot reshape an input of shape {x.shape} to {tuple(self.shape)}: a 0 copies an "
                              "input dimension the input does not have; fix the model's Reshape")
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)]
        try:
            return x.reshape(shape)
        except ValueError:
            raise ConfigError(f"cannot reshape an input of shape {x.shape} to {tuple(self.shape)}") from None


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Per-channel (axis 1) ``scale · (x - mean) / sqrt(var + eps) + bias``, kept digital."""

    scale: np.ndarray
    """Per-channel scale (gamma)."""
    bias: np.ndarray
    """Per-channel shift (beta)."""
    mean: np.ndarray
    """Running mean."""
    var: np.ndarray
    """Running variance."""
    eps: float = 1e-5
    """Added to the variance."""

    crossbar = False

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, c)`` such that the layer is ``a · x + c`` per channel."""
        a = np.asarray(self.scale, float) / np.sqrt(np.asarray(self.var, float) + self.eps)
        return a, np.asarray(self.bias, float) - a * np.asarray(self.mean, float)

    def __call__(self, x):
        a, c = self.factors()
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * a.reshape(shape) + c.reshape(shape)


@dataclass(frozen=True)
class Activation:
    """An element-wise activation, or softmax along ``axis``."""

    kind: str
    """One of :data:`ACTIVATIONS`; hard-tanh clips to [-1, 1]; step is 1 for ``z >= 0``, else 0
    (the binary activation of the resistance-sum topology); ``gelu`` is ``x Φ(x)`` (with erf),
    ``gelu_tanh`` its tanh approximation (ONNX ``Gelu`` with ``approximate = "tanh"``)."""
    axis: int = -1
    """Softmax axis."""

    crossbar = False

    def __post_init__(self):
        if self.kind not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.kind!r}")

    def __call__(self, z):
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "relu":
            return np.maximum(z, 0.0)
        if self.kind == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings
        if self.kind == "tanh":
            return np.tanh(z)
        if self.kind == "hardtanh":
            return np.clip(z, -1.0, 1.0)
        if self.kind == "step":
            return (z >= 0).astype(np.float64)
        if self.kind in _FUNCTIONS:
            return _FUNCTIONS[self.kind](z)
        e = np.exp(z - z.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)


_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": lambda z: 0.5 * z * (1.0 + erf(z / np.sqrt(2.0))),
    "gelu_tanh": lambda z: 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z ** 3))),
    "erf": erf,
    "sqrt": np.sqrt,
}


@dataclass(frozen=True, eq=False)
class Add:
    """The sum of two values (a residual connection), or of one value and ``constant``."""

    constant: np.ndarray | None = None
    """Broadcast constant added to a single input; None: add the layer's two inputs."""

    crossbar = False

    def __call__(self, x, y=None):
        if (y is None) == (self.constant is None):
            raise ConfigError("Add takes two inputs, or one input and a constant")
        other = self.constant if y is None else y
        try:
            return np.asarray(x, np.float64) + np.asarray(other, np.float64)
        except ValueError:
            raise ConfigError(f"Add cannot broadcast shapes {np.shape(x)} and {np.shape(other)}") from None


def fold_batchnorm(layer: Dense | Conv2d, norm: BatchNorm) -> Dense | Conv2d:
    """The crossbar layer followed by ``norm`` as one layer (weights and bias rescaled).

    With ``y = a · (gain · (x W + b)) + c``: ``W' = a W`` per output, ``b' = a b + c / gain``.
    """
    a, c = norm.factors()
    w, b = layer.weight, layer.bias if layer.bias is not None else np.zeros(len(a))
    if isinstance(layer, Dense):
        weight = w * a[None, :]
    else:
        weight = w * a[:, None, None, None]
    return layer.replace(weight=weight, bias=a * b + c / layer.gain)
