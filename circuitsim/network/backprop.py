"""The reverse pass through any :class:`~circuitsim.network.network.Network`.

:func:`forward_trace` runs a network as :meth:`Network.forward` does (the same values,
bit for bit, and the same ``mac(k, rows)`` contract) and keeps every value, and for each
crossbar layer ``k`` its MAC input ``rows`` and its MAC output ``sums`` (before the
layer's gain). :func:`backward` then sends a gradient of the output back along the
layers' ``sources`` (a value several layers take gathers all their gradients) and returns,
per crossbar layer, the gradient with respect to its sums and to the weights and bias of
the float product ``rows @ W + b``, and the gradient with respect to the network input.

Because the sums are whatever ``mac`` returned, a caller can add a correction to them
(an affine correction, a low-rank adapter) and still backpropagate; because the
effective weights of a crossbar differ from the nominal ones, the gradient that crosses a
crossbar layer towards its input uses the matrix the caller names
(``backward(..., matrices={k: W})``), the layer's own weights by default.

:func:`softmax_cross_entropy` is the classification loss of a network whose last layer
is a softmax; its gradient is taken with respect to the softmax's *input* (the two
Jacobians folded into ``p - onehot``), which :func:`backward` accepts with
``output_is_softmax_grad=True``; :func:`classification_gradient` also takes a network that
ends in logits (an imported classifier), whose loss is the cross-entropy of their softmax.
The digital tensor layers of a transformer are differentiated by
:mod:`circuitsim.network.tensor_backprop`, a token-wise Dense layer per token.

Public API
----------
Trace, Gradients, forward_trace, backward, softmax_cross_entropy, classification_gradient, weight_gradient
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError
from .conv import col2im, im2col
from .layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool,
                     Reshape)
from .network import Network
from .tensor_backprop import tensor_grad, unbroadcast

MacFn = Callable[[int, np.ndarray], np.ndarray]
_OWN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "hardtanh", "softmax")  # the others: tensor_backprop


@dataclass
class Trace:
    """Everything a forward pass computed, as :func:`backward` needs it.

    Attributes
    ----------
    values : list of ndarray
        ``values[0]`` is the network input (after :meth:`Network.fit_input`, shape
        ``(N,) + input_shape``), ``values[k + 1]`` the output of layer ``k``.
    rows : dict of int to ndarray
        Crossbar layer ``k``'s MAC inputs, ``(M, n_rows)`` with ``M = N`` for a Dense layer
        and ``N · H_out · W_out`` (position-major, images first) for a Conv2d layer.
    sums : dict of int to ndarray
        Crossbar layer ``k``'s MAC outputs ``(M, n_out)``, before the layer's gain.
    """

    values: list[np.ndarray] = field(default_factory=list)
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    sums: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """The network's output (the last value)."""
        return self.values[-1]


@dataclass
class Gradients:
    """Gradients of a scalar loss from :func:`backward`.

    Attributes
    ----------
    d_sums : dict of int to ndarray
        Per crossbar layer ``k``: with respect to its sums, ``(M, n_out)`` like ``Trace.sums[k]``.
    d_weight : dict of int to ndarray
        Per crossbar layer ``k``: with respect to ``W`` of the float product ``rows @ W + b``,
        ``(n_rows, n_out)`` in the layout of ``layer.matrix()`` (``rows.T @ d_sums``);
        :func:`weight_gradient` gives it in the layout of ``layer.weight``.
    d_bias : dict of int to ndarray or None
        Per crossbar layer ``k``: with respect to ``b``, ``(n_out,)``; None when the layer has no bias.
    d_input : ndarray or None
        With respect to the network input, ``(N,) + input_shape``; None when not asked for.
    """

    d_sums: dict[int, np.ndarray] = field(default_factory=dict)
    d_weight: dict[int, np.ndarray] = field(default_factory=dict)
    d_bias: dict[int, np.ndarray | None] = field(default_factory=dict)
    d_input: np.ndarray | None = None


def _float_mac(layer, rows: np.ndarray) -> np.ndarray:
    w, b = layer.matrix()
    out = rows @ w
    return out + b if b is not None else out


def forward_trace(net: Network, x, mac: MacFn | None = None) -> Trace:
    """Run ``net`` on ``x`` keeping every value, and each crossbar layer's rows and sums.

    Parameters
    ----------
    net : Network
        The network.
    x : array_like
        Inputs, ``(N,) + net.input_shape`` or flattened images (through :meth:`Network.fit_input`).
    mac : callable, optional
        ``mac(k, rows) -> sums`` replaces crossbar layer ``k``'s float product
        ``rows @ W + b`` (rows ``(M, n_rows)``, sums ``(M, n_out)``), as in :meth:`Network.forward`.

    Returns
    -------
    Trace
        Its ``output`` equals ``net.forward(x, mac)`` exactly.
    """
    trace = Trace(values=[net.fit_input(x)])
    for k, (layer, src) in enumerate(zip(net.layers, net.sources)):
        args = [trace.values[i] for i in src]
        if layer.crossbar:
            n_out = layer.matrix()[0].shape[1]

            def record(rows, k=k, layer=layer, n_out=n_out):
                sums = mac(k, rows) if mac is not None else _float_mac(layer, rows)
                if np.shape(sums) != (len(rows), n_out):
                    raise ConfigError(f"mac({k}, rows) returned shape {np.shape(sums)}, "
                                      f"expected ({len(rows)}, {n_out}) for layer {k}")
                trace.rows[k], trace.sums[k] = rows, sums
                return sums

            trace.values.append(layer.apply(args[0], record))
        else:
            trace.values.append(layer(*args))
    return trace


def softmax_cross_entropy(output, y) -> tuple[float, np.ndarray, int]:
    """Cross-entropy of softmax ``output`` against labels ``y``, and its folded gradient.

    Parameters
    ----------
    output : array_like
        Class probabilities ``(N, n_classes)`` (the output of a final softmax; trailing
        axes of size 1, e.g. ``(N, n_classes, 1, 1)``, are accepted).
    y : array_like of int
        ``(N,)`` labels in ``0 .. n_classes - 1``.

    Returns
    -------
    loss_sum : float
        ``-sum(log(p[y] + 1e-12))`` over the images (nats).
    grad_output : ndarray
        Gradient of the *mean* loss (``loss_sum / N``) with respect to the softmax's input,
        ``(p - onehot(y)) / N``, shaped like ``output``: pass it to :func:`backward` with
        ``output_is_softmax_grad=True``.
    correct : int
        Images whose largest probability is at their label.
    """
    output = np.asarray(output, dtype=np.float64)
    y = np.asarray(y)
    if output.ndim < 2 or any(s != 1 for s in output.shape[2:]):
        raise ConfigError(f"softmax_cross_entropy needs (N, classes) probabilities, got shape {output.shape}")
    probs = output.reshape(output.shape[:2])
    if y.shape != (len(probs),) or not np.issubdtype(y.dtype, np.integer) \
            or (y.size and not (0 <= y.min() and y.max() < probs.shape[1])):
        raise ConfigError(f"softmax_cross_entropy needs {len(probs)} integer labels in 0..{probs.shape[1] - 1}, "
                          f"got {y.dtype} labels of shape {y.shape}")
    rows = np.arange(len(y))
    loss = float(-np.log(probs[rows, y] + 1e-12).sum())
    correct = int((probs.argmax(axis=1) == y).sum())
    grad = probs.copy()
    grad[rows, y] -= 1.0
    grad /= len(y)
    return loss, grad.reshape(output.shape), correct


def classification_gradient(net: Network, output, y) -> tuple[float, np.ndarray, int, bool]:
    """:func:`softmax_cross_entropy` of a classifier's output, whether it ends in a softmax or in logits.

    Returns
    -------
    loss_sum, grad, correct
        As :func:`softmax_cross_entropy` (of ``softmax(output)`` when the network ends in logits).
    folded : bool
        Whether ``grad`` is taken at the final softmax's input (pass it to :func:`backward` as
        ``output_is_softmax_grad``); otherwise it is the gradient at the logits, the output itself.
    """
    output = np.asarray(output, dtype=np.float64)
    last = net.layers[-1]
    folded = isinstance(last, Activation) and last.kind == "softmax"
    if not folded:
        shifted = np.exp(output - output.max(axis=1, keepdims=True))
        output = shifted / shifted.sum(axis=1, keepdims=True)
    loss, grad, correct = softmax_cross_entropy(output, y)
    return loss, grad, correct, folded


def backward(net: Network, trace: Trace, grad_output, matrices: dict[int, np.ndarray | Callable] | None = None,
             output_is_softmax_grad: bool = False, input_grad: bool = True) -> Gradients:
    """Gradients of a scalar loss, given its gradient with respect to the network output.

    Parameters
    ----------
    net : Network
        The network :func:`forward_trace` ran.
    trace : Trace
        The values of that run.
    grad_output : array_like
        Gradient of the loss with respect to ``trace.output`` (same shape); with
        ``output_is_softmax_grad``, with respect to the final softmax's *input* instead.
    matrices : dict of int to ndarray, optional
        Per crossbar layer ``k``, the ``(n_rows, n_out)`` matrix whose transpose carries the
        gradient from its sums back to its input (the effective weights on hardware);
        default ``layer.matrix()[0]``; or a function of the ``(M, n_out)`` gradient of the sums
        that returns the ``(M, n_rows)`` gradient of the rows (a MAC that is not one matrix, e.g.
        with a low-rank adapter). It changes neither ``d_sums[k]`` nor ``d_weight[k]``.
    output_is_softmax_grad : bool
        The last layer is an ``Activation("softmax")`` and ``grad_output`` is already the
        gradient at its input (:func:`softmax_cross_entropy`): that layer is skipped.
    input_grad : bool
        Compute ``d_input`` (and the gradient into a crossbar layer that reads the input).

    Returns
    -------
    Gradients
        ``d_sums``, ``d_weight`` and ``d_bias`` of every crossbar layer, and ``d_input``.

    Raises
    ------
    ConfigError
        On a trace of another network, a gradient of the wrong shape, or a layer that
        cannot be differentiated here.
    """
    layers, matrices = net.layers, matrices or {}
    if len(trace.values) != len(layers) + 1:
        raise ConfigError(f"the trace has {len(trace.values) - 1} layer outputs but the network "
                          f"{len(layers)} layers; pass the trace of forward_trace(net, x)")
    last = len(layers) - 1
    grad_output = np.asarray(grad_output, dtype=np.float64)
    if output_is_softmax_grad:
        if not (isinstance(layers[-1], Activation) and layers[-1].kind == "softmax"):
            raise ConfigError(f"output_is_softmax_grad needs a softmax last, but layer {last} is "
                              f"{type(layers[-1]).__name__}")
        if len(net.sources[-1]) != 1 or layers[-1].axis % trace.output.ndim != 1:
            raise ConfigError(f"output_is_softmax_grad needs the final softmax (layer {last}) over axis 1 "
                              "of one value, as softmax_cross_entropy assumes")
        target, last = trace.values[net.sources[-1][0]], last - 1
        grads = {net.sources[-1][0]: grad_output}
    else:
        target, grads = trace.values[-1], {len(layers): grad_output}
    if grad_output.shape != target.shape:
        raise ConfigError(f"grad_output has shape {grad_output.shape}, expected {target.shape}")
    result = Gradients()
    for k in range(last, -1, -1):
        layer, src = layers[k], net.sources[k]
        out = trace.values[k + 1]
        g = grads.pop(k + 1, None)
        if g is None:  # a value no later layer takes
            g = np.zeros_like(out)
        inputs = [trace.values[i] for i in src]
        if layer.crossbar:
            if not input_grad and src[0] == 0:
                _crossbar(k, layer, trace, g, out, None, result)
                continue
            d_inputs = [_crossbar(k, layer, trace, g, out, inputs[0], result, matrices.get(k))]
        else:
            d_inputs = _digital(k, layer, inputs, out, g)
        for i, d in zip(src, d_inputs):
            grads[i] = d if i not in grads else grads[i] + d
    if input_grad:
        result.d_input = grads.get(0, np.zeros_like(trace.values[0]))
    return result


def _crossbar(k, layer, trace, g, out, x, result, matrix=None):
    """Record the layer's gradients; return the gradient at its input ``x`` (None: skip it)."""
    if isinstance(layer, Conv2d):
        d_sums = layer.gain * g.transpose(0, 2, 3, 1).reshape(-1, g.shape[1])
    else:  # a token-wise layer's (N, ..., n_out) gradient: one row per token, as its rows
        d_sums = layer.gain * g.reshape(-1, g.shape[-1])
    rows = trace.rows[k]
    w, b = layer.matrix()
    result.d_sums[k] = d_sums
    result.d_weight[k] = rows.T @ d_sums
    result.d_bias[k] = d_sums.sum(axis=0) if b is not None else None
    if x is None:
        return None
    if callable(matrix):
        d_rows = matrix(d_sums)
    else:
        if matrix is None:
            matrix = w
        elif np.shape(matrix) != w.shape:
            raise ConfigError(f"matrices[{k}] has shape {np.shape(matrix)}, expected {w.shape} for layer {k}")
        d_rows = d_sums @ np.asarray(matrix, dtype=np.float64).T
    if isinstance(layer, Dense):
        return d_rows.reshape(x.shape)
    n, _, ho, wo = out.shape
    return col2im(d_rows.reshape(n, ho, wo, -1), x.shape, layer.kernel, layer.stride, layer.padding)


def _digital(k, layer, inputs, out, g) -> list:
    """Gradients at a digital layer's inputs from the gradient ``g`` at its output ``out``."""
    x = inputs[0]
    if isinstance(layer, Activation) and layer.kind in _OWN_ACTIVATIONS:
        return [_activation_grad(layer, x, out, g)]
    if isinstance(layer, (MaxPool, AvgPool)):
        return [_pool_grad(layer, x, out, g)]
    if isinstance(layer, (Flatten, Reshape)):
        return [g.reshape(x.shape)]
    if isinstance(layer, GlobalAvgPool):
        return [np.broadcast_to(g / (x.shape[2] * x.shape[3]), x.shape).copy()]
    if isinstance(layer, BatchNorm):
        a, _ = layer.factors()
        return [g * a.reshape((1, -1) + (1,) * (x.ndim - 2))]
    if isinstance(layer, Add):
        return [unbroadcast(g, np.shape(v)) for v in inputs]
    return tensor_grad(k, layer, inputs, out, g)


def _activation_grad(layer, z, out, g):
    if layer.kind == "relu":
        return g * (out > 0)
    if layer.kind == "sigmoid":
        return g * out * (1.0 - out)
    if layer.kind == "tanh":
        return g * (1.0 - out * out)
    if layer.kind == "hardtanh":
        return g * ((z > -1.0) & (z < 1.0))
    if layer.kind == "step":  # straight-through estimator (binary networks)
        return g * (np.abs(z) <= 1.0)
    return out * (g - (g * out).sum(axis=layer.axis, keepdims=True))  # softmax


def _pool_grad(layer, x, out, g):
    (kh, kw), (sh, sw), padding = layer.kernel, layer.stride, layer.padding
    n, c, height, width = x.shape
    ho, wo = out.shape[2:]
    if (sh, sw) == (kh, kw) and not any(padding):  # non-overlapping windows, as the forward tiles them
        dx = np.zeros_like(x)
        if isinstance(layer, MaxPool):
            windows = x[:, :, :kh * ho, :kw * wo].reshape(n, c, ho, kh, wo, kw)
            mask = windows == out[:, :, :, None, :, None]
            mask = mask / mask.sum(axis=(3, 5), keepdims=True)  # ties share the gradient
            part = mask * g[:, :, :, None, :, None]
        else:
            part = np.broadcast_to(g[:, :, :, None, :, None] / (kh * kw), (n, c, ho, kh, wo, kw))
        dx[:, :, :kh * ho, :kw * wo] = part.reshape(n, c, kh * ho, kw * wo)
        return dx
    flat = (n * c, 1, height, width)
    if isinstance(layer, MaxPool):
        windows = im2col(x.reshape(flat), layer.kernel, layer.stride, padding, -np.inf).reshape(n, c, ho, wo, -1)
        mask = windows == out[..., None]
        cols = mask / mask.sum(axis=-1, keepdims=True) * g[..., None]
    else:
        if layer.count_include_pad or not any(padding):
            count = kh * kw
        else:
            ones = np.ones((1, 1, height, width))
            count = im2col(ones, layer.kernel, layer.stride, padding).sum(axis=-1).reshape(ho, wo)
        cols = np.broadcast_to((g / count)[..., None], (n, c, ho, wo, kh * kw))
    return col2im(cols.reshape(n * c, ho, wo, kh * kw), flat, layer.kernel, layer.stride, padding).reshape(x.shape)


def weight_gradient(layer: Dense | Conv2d, d_weight: np.ndarray) -> np.ndarray:
    """``d_weight`` (layout of ``layer.matrix()``) in the layout of ``layer.weight``.

    A Dense layer's is the same array; a Conv2d layer's ``(c_in·k_h·k_w, c_out)`` matrix
    becomes ``(c_out, c_in, k_h, k_w)``.
    """
    if isinstance(layer, Conv2d):
        return d_weight.T.reshape(layer.weight.shape)
    return d_weight
