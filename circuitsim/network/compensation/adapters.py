"""Low-rank digital adapters trained against the hardware (Li et al.'s LoRA for AIMC).

The analog weights stay as programmed; a digital core adds to every layer's sums the
low-rank term ``h_aug @ A @ B`` (``A``: rows × r, ``B``: r × outputs, ``h_aug`` the layer's
input with its bias entry), so each layer computes ``W_eff + A·B`` with ``W_eff`` what its
tiles really compute. ``A`` starts small and random, ``B`` at zero (the adapters start as
no correction); Adam trains them on the training images through the hardware forward
(:func:`~.hardware.hardware_forward`: the tiles' effective weights, read noise and ADCs, the
ADCs passed straight through in the backward pass) with the analog weights frozen.
With ``adapter_format`` the entries of ``A`` and ``B`` are fixed point: the forward pass uses
the rounded entries and their gradient updates float copies (straight through).

Public API
----------
train_adapters, adapter_overhead
"""

from __future__ import annotations

import sys

import numpy as np

from ..mapped import MappedNetwork
from .config import CompensationConfig, to_fixed
from .hardware import Adam, hardware_backward, hardware_forward


def _rounded(params: list, config: CompensationConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    fixed = [to_fixed(p, config.adapter_format, signed=True) for p in params]
    return list(zip(fixed[0::2], fixed[1::2]))


def train_adapters(mapped: MappedNetwork, x_train, y_train, config: CompensationConfig,
                   use_adc: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train rank-``config.rank`` adapters ``(A, B)`` for every crossbar layer of ``mapped``.

    Parameters
    ----------
    mapped : MappedNetwork
        The network as its tiles compute it (left unchanged).
    x_train, y_train : array_like
        Training images and labels.
    config : CompensationConfig
        Rank, epochs, batch size, learning rate, seed and the adapters' fixed-point format.
    use_adc : bool
        Train through the tiles' ADCs (when the circuit has them).

    Returns
    -------
    list of (ndarray, ndarray)
        ``(A, B)`` per layer, rounded to ``config.adapter_format``.
    """
    x, y = np.asarray(x_train, dtype=float), np.asarray(y_train)
    rng = np.random.default_rng(config.seed)
    params = []
    for layer in mapped.crossbars:
        rows = layer.weights.shape[0]
        params += [rng.normal(0.0, 1.0 / np.sqrt(rows), (rows, config.rank)), np.zeros((config.rank, layer.n_out))]
    adam = Adam(params, config.learning_rate)
    epochs = range(config.epochs)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="train adapters", unit="epoch", leave=False)
    for _ in epochs:
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            adapters = _rounded(params, config)
            _, trace = hardware_forward(mapped, x[idx], adapters=adapters, use_adc=use_adc)
            _, grads, _, _ = hardware_backward(mapped, trace, y[idx], adapters=adapters)
            adam.step([g for pair in grads for g in pair])
    return _rounded(params, config)


def adapter_overhead(mapped: MappedNetwork, rank: int) -> tuple[int, int]:
    """Extra parameters (``r·(rows + outputs)`` per crossbar layer, the bias row counted) and
    multiply-accumulates per inference (each entry of ``A`` and ``B`` used once per position)."""
    sizes = [(rank * (c.weights.shape[0] + c.n_out), c.positions) for c in mapped.crossbars]
    return sum(p for p, _ in sizes), sum(p * positions for p, positions in sizes)
