"""Learning which random pairs stay connected (edge-popup), or the weights themselves.

Every layer ``k`` has fixed random weights ``W_k`` (``rows × n_out``, the bias row last) from
the drawn conductance pairs. The forward pass uses ``M_k ⊙ W_k`` with the mask ``M_k`` holding
exactly ``n_k = max(1, round(keep · rows · n_out))`` ones: the pairs of the layer's
``n_k`` largest scores (ties broken by position). The scores are learned as in edge-popup
(Ramanujan et al., "What's hidden in a randomly weighted neural network?", CVPR 2020):

- ``training = "mask"``: scores ``S_k`` (initialised uniform in [0, 1) from the seed) receive
  the straight-through gradient ``∂L/∂S = ∂L/∂(M ⊙ W) ⊙ W`` and are updated by Adam; the
  weights never change;
- ``training = "none"``: the initial scores are used as they are (a random subset of pairs);
- ``training = "full"``: the weights themselves are trained (from the draw clipped to
  [-1, 1], Adam, clipped back after each step) with scores ``|W|``: the connected pairs are
  the largest-magnitude ones of each step, and the gradient reaches only them.

The loss, activations and gains are the MLP's (:mod:`circuitsim.network.mlp`); the step size
decays on the MLP's cosine schedule.

Public API
----------
top_fraction, train_cells
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .mlp import MLP, MLPConfig, _gradients, adam_step


def top_fraction(scores: np.ndarray, keep: float) -> np.ndarray:
    """Boolean mask of the ``max(1, round(keep · size))`` largest ``scores`` (exactly that many)."""
    n = max(1, int(round(keep * scores.size)))
    if n >= scores.size:
        return np.ones(scores.shape, bool)
    flat = scores.ravel()
    top = np.argpartition(-flat, n - 1)[:n]
    mask = np.zeros(flat.size, bool)
    mask[top] = True
    return mask.reshape(scores.shape)


def _network(effective, bias: bool, config: MLPConfig) -> MLP:
    return MLP([w[:w.shape[0] - int(bias)] for w in effective],
               [w[-1] if bias else np.zeros(w.shape[1]) for w in effective], config)


def train_cells(dataset, config, weights, gains, progress: bool = False):
    """Learn the masks (or the weights) of a random network.

    Parameters
    ----------
    dataset : Dataset
        Training images and labels.
    config : RandomNetworkConfig
        Training kind, ``keep``, epochs, batch size, learning rate, seed.
    weights : list of ndarray
        Normalized random weights per layer, ``rows × n_out`` (bias row last).
    gains : sequence of float
        Gain per layer.
    progress : bool
        A progress bar per epoch.

    Returns
    -------
    weights, masks : list of ndarray
        The weights (the drawn ones unless ``training = "full"``) and the connected pairs.
    """
    x, y = np.asarray(dataset.x_train, dtype=np.float64), np.asarray(dataset.y_train)
    if x.ndim != 2 or x.shape[1] != config.layers[0]:
        raise ConfigError(f"dataset {dataset.name!r} has {x.shape[-1]} inputs but layers[0] is "
                          f"{config.layers[0]}; use side={math.isqrt(x.shape[-1])} or change layers")
    if len(y) and (y.min() < 0 or y.max() >= config.layers[-1]):
        raise ConfigError(f"labels must lie in [0, {config.layers[-1]}) to match layers[-1]")
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1 << 16,)))
    mlp = MLPConfig(config.layers, config.activation, "float", config.epochs, config.batch_size,
                    config.learning_rate, config.seed, config.bias, tuple(gains))
    full = config.training == "full"
    fixed = [np.asarray(w, dtype=float) for w in weights]
    params = [np.clip(w, -1.0, 1.0) for w in fixed] if full else [rng.random(w.shape) for w in fixed]

    def masks():
        return [top_fraction(np.abs(p) if full else p, config.keep) for p in params]

    if config.training == "none" or (full is False and config.keep >= 1):
        return fixed, masks()
    adam = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    step, epochs = 0, range(config.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"train {config.training}", unit="epoch")
    for epoch in epochs:
        lr = config.learning_rate * (0.01 + 0.495 * (1 + math.cos(math.pi * epoch / config.epochs)))
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            current = masks()
            base = params if full else fixed
            grads, _, _ = _gradients(_network([m * w for m, w in zip(current, base)], config.bias, mlp),
                                     x[idx], y[idx])
            step += 1
            for k, (m, w) in enumerate(zip(current, base)):
                g_eff = np.vstack([grads[2 * k], grads[2 * k + 1][None, :]]) if config.bias else grads[2 * k]
                g = g_eff * m if full else g_eff * w  # straight through the mask
                adam_step(params[k], g, adam[k], step, lr)
                if full:
                    np.clip(params[k], -1.0, 1.0, out=params[k])
    return (params if full else fixed), masks()
