"""The network as its crossbars compute it, differentiable by straight-through estimates.

Every compensation method runs images through the mapped network
(:class:`~circuitsim.network.mapped.MappedNetwork`): layer ``k`` takes its input ``h``
with the bias entry appended (``h_aug``), and its sums are the blocks' (tiles') partial sums
``h_aug[:, rows] @ M[rows, outs]`` — each with the tile's read noise and through the tile's
ADC when the circuit has them — added over the horizontal partitions, with ``M`` the
layer's normalized effective weights from the tiles' extracted ``T`` (the very blocks the
evaluator uses). On top of those sums a method may add a low-rank term ``h_aug @ A @ B``
(adapters) and then a per-column affine map ``s·x + o``; the layer's gain and neuron follow.

:func:`hardware_forward` computes this (and keeps what the backward pass needs);
:func:`hardware_backward` gives the cross-entropy gradients with respect to ``M`` and the
adapters, passing the ADCs' quantization (and read noise) straight through: the gradient
of a layer's sums with respect to its input is ``M + A·B``, as if the ADC were exact.

Public API
----------
Trace, augment, hardware_forward, hardware_backward, Adam
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mapped import MappedNetwork


def augment(h: np.ndarray, bias: bool) -> np.ndarray:
    """``h`` with a column of ones (the bias row's input) when the network has biases."""
    return np.hstack([h, np.ones((len(h), 1))]) if bias else h


@dataclass
class Trace:
    """What :func:`hardware_forward` keeps for the backward pass."""

    inputs: list
    """``h_aug`` of every layer."""
    outputs: list
    """Every layer's activation (the last: class probabilities)."""
    projected: list
    """``h_aug @ A`` of every layer with adapters (else None)."""


def hardware_forward(mapped: MappedNetwork, x, matrices=None, adapters=None, affine=None,
                     use_adc: bool = True) -> tuple[np.ndarray, Trace]:
    """Class probabilities of images ``x`` through the mapped network and its corrections.

    Parameters
    ----------
    mapped : MappedNetwork
        The network as its tiles compute it (gains, activation, blocks, ADCs).
    x : array_like
        Images, ``(n, inputs)``.
    matrices : list of ndarray, optional
        Effective weights ``M`` per layer (``rows × outputs``, bias row last) used instead of the
        mapped ones (hardware-aware training).
    adapters : list of (ndarray, ndarray), optional
        ``(A, B)`` per layer: ``h_aug @ A @ B`` is added to the layer's sums.
    affine : list of (ndarray, ndarray), optional
        ``(scale, offset)`` per layer: the sums become ``scale · sums + offset``.
    use_adc : bool
        Convert the tiles' partial sums with their ADCs.
    """
    net = mapped.mlp
    h = np.asarray(x, dtype=float)
    trace = Trace([], [], [])
    for k in range(len(net.weights)):
        h_aug = augment(h, net.config.bias)
        sums = mapped.layer_sums(k, h, use_adc, None if matrices is None else matrices[k])
        projected = None
        if adapters is not None:
            a, b = adapters[k]
            projected = h_aug @ a
            sums = sums + projected @ b
        if affine is not None:
            scale, offset = affine[k]
            sums = scale * sums + offset
        h = net.activate(k, sums)
        trace.inputs.append(h_aug)
        trace.outputs.append(h)
        trace.projected.append(projected)
    return h, trace


def hardware_backward(mapped: MappedNetwork, trace: Trace, y, matrices=None, adapters=None):
    """Mean cross-entropy gradients of the last :func:`hardware_forward` (no affine map).

    Returns
    -------
    d_matrices : list of ndarray
        Gradient with respect to each layer's ``M`` (straight through the ADCs).
    d_adapters : list of (ndarray, ndarray) or None
        Gradients with respect to each ``(A, B)``.
    loss : float
        Summed cross-entropy over the batch.
    correct : int
        Images of the batch classified correctly.
    """
    net = mapped.mlp
    y = np.asarray(y)
    rows = np.arange(len(y))
    probs = trace.outputs[-1]
    loss = float(-np.log(probs[rows, y] + 1e-12).sum())
    correct = int((probs.argmax(axis=1) == y).sum())
    delta = probs.copy()
    delta[rows, y] -= 1.0
    delta /= len(y)
    n_layers = len(net.weights)
    d_matrices, d_adapters = [None] * n_layers, [None] * n_layers
    for k in reversed(range(n_layers)):
        ds = net.config.gains[k] * delta
        h_aug = trace.inputs[k]
        d_matrices[k] = h_aug.T @ ds
        matrix = matrices[k] if matrices is not None else _matrix(net, k)
        dh = ds @ matrix.T
        if adapters is not None:
            a, b = adapters[k]
            d_projected = ds @ b.T
            d_adapters[k] = (h_aug.T @ d_projected, trace.projected[k].T @ ds)
            dh = dh + d_projected @ a.T
        if k:
            if net.config.bias:
                dh = dh[:, :-1]
            h = trace.outputs[k - 1]
            delta = dh * (h > 0) if net.config.activation == "relu" else dh * h * (1.0 - h)
    return d_matrices, (d_adapters if adapters is not None else None), loss, correct


def _matrix(net, k: int) -> np.ndarray:
    if net.config.bias:
        return np.vstack([net.weights[k], net.biases[k][None, :]])
    return net.weights[k]


class Adam:
    """Adam steps on a list of arrays (updated in place)."""

    def __init__(self, params: list, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999):
        self.params, self.learning_rate = params, learning_rate
        self.beta1, self.beta2, self.steps = beta1, beta2, 0
        self._moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]

    def step(self, grads: list) -> None:
        """One step along ``grads`` (one per parameter, same shapes)."""
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        for p, g, (m, v) in zip(self.params, grads, self._moments):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.learning_rate * (m / (1 - b1 ** self.steps)) / (np.sqrt(v / (1 - b2 ** self.steps)) + 1e-8)
