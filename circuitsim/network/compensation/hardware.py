"""The network as its crossbars compute it, differentiable by straight-through estimates.

Every compensation method runs images through the mapped network
(:class:`~circuitsim.network.mapped.MappedNetwork`, any network: an MLP, a CNN, an ONNX
model): crossbar layer ``n`` takes its rows ``h`` (for a convolution one per output position)
with the bias entry appended (``h_aug``), and its normalized sums are the tiles' partial sums
``h_aug[:, rows] @ M[rows, outs]`` — each with the tile's read noise and through the tile's
ADC when the circuit has them — added over the horizontal partitions, with ``M`` the
layer's normalized effective weights from the tiles' extracted ``T`` (the very tiles the
evaluator uses). On top of those sums a method may add a low-rank term ``h_aug @ A @ B``
(adapters) and then a per-column affine map ``s·x + o``; the layer's weight scale, gain and
the digital layers after it follow.

:func:`hardware_forward` computes this (and keeps what the backward pass needs);
:func:`hardware_backward` gives the cross-entropy gradients with respect to ``M`` and the
adapters through the network's layers (:mod:`circuitsim.network.backprop`), passing the ADCs'
quantization (and read noise) straight through: the gradient of a layer's sums with respect
to its rows is ``M + A·B``, as if the ADC were exact.

Public API
----------
Trace, hardware_forward, hardware_backward, Adam
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backprop import Trace as LayerTrace
from ..backprop import backward, classification_gradient, forward_trace
from ..mapped import MappedNetwork
from ..topologies import augment

Pair = tuple[np.ndarray, np.ndarray]


@dataclass
class Trace:
    """What :func:`hardware_forward` keeps for the backward pass."""

    layers: LayerTrace
    """The run through the network's layers (every value, every crossbar layer's rows)."""
    projected: dict[int, np.ndarray] = field(default_factory=dict)
    """``h_aug @ A`` of every crossbar layer with adapters, by crossbar number."""

    @property
    def output(self) -> np.ndarray:
        """The network's output (class probabilities)."""
        return self.layers.output


def hardware_forward(mapped: MappedNetwork, x, matrices=None, adapters=None, affine=None,
                     use_adc: bool = True) -> tuple[np.ndarray, Trace]:
    """Class probabilities of images ``x`` through the mapped network and its corrections.

    Parameters
    ----------
    mapped : MappedNetwork
        The network as its tiles compute it (gains, layers, tiles, ADCs).
    x : array_like
        Images (flattened or in the network's input shape).
    matrices : list of ndarray, optional
        Normalized effective weights ``M`` per crossbar layer (``rows × outputs``, bias row
        last) used instead of the mapped ones (hardware-aware training).
    adapters : list of (ndarray, ndarray), optional
        ``(A, B)`` per crossbar layer: ``h_aug @ A @ B`` is added to the layer's sums.
    affine : list of (ndarray, ndarray), optional
        ``(scale, offset)`` per crossbar layer: the sums become ``scale · sums + offset``.
    use_adc : bool
        Convert the tiles' partial sums with their ADCs.
    """
    number = {c.index: n for n, c in enumerate(mapped.crossbars)}
    projected: dict[int, np.ndarray] = {}

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        n = number[k]
        layer = mapped.crossbars[n]
        sums = mapped.layer_sums(n, rows, use_adc, None if matrices is None else matrices[n])
        if adapters is not None:
            a, b = adapters[n]
            projected[n] = augment(rows, layer.bias) @ a
            sums = sums + projected[n] @ b
        if affine is not None:
            scale, offset = affine[n]
            sums = scale * sums + offset
        return sums if layer.scale == 1.0 else layer.scale * sums

    layers = forward_trace(mapped.network, x, mac)
    return layers.output.reshape(len(layers.output), -1), Trace(layers, projected)


def hardware_backward(mapped: MappedNetwork, trace: Trace, y, matrices=None, adapters=None):
    """Mean cross-entropy gradients of the last :func:`hardware_forward` (no affine map).

    Returns
    -------
    d_matrices : list of ndarray
        Gradient with respect to each crossbar layer's ``M`` (straight through the ADCs).
    d_adapters : list of (ndarray, ndarray) or None
        Gradients with respect to each ``(A, B)``.
    loss : float
        Summed cross-entropy over the batch.
    correct : int
        Images of the batch classified correctly.
    """
    loss, grad, correct, folded = classification_gradient(mapped.network, trace.output, np.asarray(y))
    crossbars = mapped.crossbars
    d_adapters: list[Pair | None] = [None] * len(crossbars)

    def carrier(n: int):
        """The map from a crossbar layer's sums' gradient to its rows' gradient."""
        layer = crossbars[n]
        matrix = matrices[n] if matrices is not None else layer.weights
        n_in = matrix.shape[0] - int(layer.bias)

        def back(d_sums: np.ndarray) -> np.ndarray:
            ds = d_sums if layer.scale == 1.0 else layer.scale * d_sums
            dh = ds @ matrix.T
            if adapters is not None:
                a, b = adapters[n]
                dh = dh + (ds @ b.T) @ a.T
            return dh[:, :n_in] if layer.bias else dh

        return back

    carriers = {c.index: carrier(n) for n, c in enumerate(crossbars)}
    grads = backward(mapped.network, trace.layers, grad, matrices=carriers, output_is_softmax_grad=folded,
                     input_grad=False)
    d_matrices = []
    for n, layer in enumerate(crossbars):
        d_sums = grads.d_sums[layer.index]
        ds = d_sums if layer.scale == 1.0 else layer.scale * d_sums
        h_aug = augment(trace.layers.rows[layer.index], layer.bias)
        d_matrices.append(h_aug.T @ ds)
        if adapters is not None:
            a, b = adapters[n]
            d_projected = ds @ b.T
            d_adapters[n] = (h_aug.T @ d_projected, trace.projected[n].T @ ds)
    return d_matrices, (d_adapters if adapters is not None else None), loss, correct


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
