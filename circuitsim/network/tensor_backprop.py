"""Gradients of the digital tensor layers (a transformer's), for :mod:`circuitsim.network.backprop`.

:func:`tensor_grad` takes a layer of :mod:`circuitsim.network.tensor_layers` (or a GELU, erf
or square-root :class:`~circuitsim.network.layers.Activation`), its inputs, its output and
the gradient at its output, and returns the gradient at each of its inputs (broadcast inputs
get the gradient summed over the axes they were broadcast along):

- :class:`~.tensor_layers.LayerNorm`: ``(dx̂ - mean dx̂ - x̂ · mean(dx̂ · x̂)) / σ`` over the
  normalized axes, ``dx̂ = g · scale``;
- :class:`~.tensor_layers.MatMul`: ``g @ yᵀ`` and ``xᵀ @ g`` (last two axes);
- :class:`~.tensor_layers.Binary`: the derivatives of ``sub``, ``mul``, ``div``, ``pow``
  with respect to the computed operand(s) (a constant gets none);
- shape layers (Transpose, Squeeze, Unsqueeze, Concat, Slice, Gather, Expand) move the gradient
  back where the values came from; :class:`~.tensor_layers.Reduce` spreads it over the
  reduced axes; a :class:`~.tensor_layers.Constant` and an :class:`~.tensor_layers.Embedding`'s
  integer ids take none.

Public API
----------
tensor_grad
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from ..errors import ConfigError
from .layers import Activation
from .tensor_layers import (Binary, Concat, Constant, Embedding, Expand, Gather, LayerNorm, MatMul, Reduce,
                            Slice, Squeeze, Transpose, Unsqueeze)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (the adjoint of numpy broadcasting)."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _activation(kind: str, z: np.ndarray, out: np.ndarray, g: np.ndarray) -> np.ndarray:
    if kind == "gelu":
        return g * (0.5 * (1.0 + erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))
    if kind == "gelu_tanh":
        c = np.sqrt(2.0 / np.pi)
        t = np.tanh(c * (z + 0.044715 * z ** 3))
        return g * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * z * z))
    if kind == "erf":
        return g * 2.0 / np.sqrt(np.pi) * np.exp(-z * z)
    return g * 0.5 / np.where(out > 0, out, np.inf)  # sqrt (no gradient at 0)


def _layer_norm(layer: LayerNorm, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    axes = tuple(range(layer.axis % x.ndim, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    sigma = np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + layer.eps)
    normed = centred / sigma
    d_normed = g * layer.scale
    return (d_normed - d_normed.mean(axis=axes, keepdims=True)
            - normed * (d_normed * normed).mean(axis=axes, keepdims=True)) / sigma


def _matmul(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    if x.ndim < 2 or y.ndim < 2:
        raise ConfigError(f"backprop through MatMul needs operands of 2 axes or more, got {x.shape} and {y.shape}")
    return [unbroadcast(g @ np.swapaxes(y, -1, -2), x.shape), unbroadcast(np.swapaxes(x, -1, -2) @ g, y.shape)]


def _binary(layer: Binary, inputs: list[np.ndarray], out: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float64)
    other = np.asarray(layer.constant if layer.constant is not None else inputs[1], np.float64)
    left, right = (other, x) if layer.reverse else (x, other)
    if layer.op == "sub":
        d_left, d_right = g, -g
    elif layer.op == "mul":
        d_left, d_right = g * right, g * left
    elif layer.op == "div":
        d_left, d_right = g / right, -g * out / right
    else:  # pow
        d_left = g * right * np.power(left, right - 1.0)
        d_right = g * out * np.log(np.where(left > 0, left, 1.0))
    d_x, d_other = (d_right, d_left) if layer.reverse else (d_left, d_right)
    grads = [unbroadcast(d_x, x.shape)]
    return grads if layer.constant is not None else grads + [unbroadcast(d_other, other.shape)]


def _concat(layer: Concat, inputs: list[np.ndarray], g: np.ndarray) -> list[np.ndarray]:
    axis = layer.axis % g.ndim
    ends = np.cumsum([np.shape(v)[axis] for v in inputs])[:-1]
    return [unbroadcast(part, np.shape(v)) for part, v in zip(np.split(g, ends, axis=axis), inputs)]


def _slice(layer: Slice, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    dx = np.zeros(np.shape(x))
    index = [slice(None)] * dx.ndim
    for start, stop, axis, step in zip(layer.starts, layer.stops, layer.axes, layer.steps):
        index[axis % dx.ndim] = slice(start, stop, step)
    dx[tuple(index)] = g
    return dx


def _gather(layer: Gather, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    shape = np.shape(x)
    axis = layer.axis % len(shape)
    dx = np.zeros(shape)
    flat = g.reshape(shape[:axis] + (layer.indices.size,) + shape[axis + 1:])
    np.add.at(np.moveaxis(dx, axis, 0), layer.indices.ravel() % shape[axis], np.moveaxis(flat, axis, 0))
    return dx


def _reduce(layer: Reduce, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    shape = np.shape(x)
    axes = tuple(a % len(shape) for a in layer.axes)
    if not layer.keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g / np.prod([shape[a] for a in axes]), shape).copy()


def tensor_grad(k: int, layer, inputs: list, out: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    """Gradients at the inputs of digital layer ``k`` (a tensor layer, or a GELU/erf/sqrt activation).

    Parameters
    ----------
    k : int
        The layer's index (named in errors).
    layer : object
        The layer.
    inputs : list of ndarray
        Its inputs in the forward pass.
    out : ndarray
        Its output in the forward pass.
    g : ndarray
        Gradient of the loss with respect to ``out``.

    Returns
    -------
    list of ndarray
        One gradient per input that carries one (none for a :class:`~.tensor_layers.Constant`).

    Raises
    ------
    ConfigError
        On a layer this module cannot differentiate.
    """
    x = inputs[0] if inputs else None
    if isinstance(layer, Activation):
        return [_activation(layer.kind, np.asarray(x, np.float64), out, g)]
    if isinstance(layer, LayerNorm):
        return [_layer_norm(layer, np.asarray(x, np.float64), g)]
    if isinstance(layer, MatMul):
        return _matmul(np.asarray(x, np.float64), np.asarray(inputs[1], np.float64), g)
    if isinstance(layer, Binary):
        return _binary(layer, inputs, out, g)
    if isinstance(layer, Transpose):
        return [g.transpose(np.argsort(layer.perm))]
    if isinstance(layer, (Squeeze, Unsqueeze)):
        return [g.reshape(np.shape(x))]
    if isinstance(layer, Concat):
        return _concat(layer, inputs, g)
    if isinstance(layer, Slice):
        return [_slice(layer, x, g)]
    if isinstance(layer, Gather):
        return [_gather(layer, x, g)]
    if isinstance(layer, Expand):
        return [unbroadcast(g, np.shape(x))]
    if isinstance(layer, Reduce):
        return [_reduce(layer, x, g)]
    if isinstance(layer, Constant):
        return []
    if isinstance(layer, Embedding):
        return [np.zeros(np.shape(x))]
    raise ConfigError(f"layer {k} ({type(layer).__name__}) cannot be differentiated by backprop")
