"""Surrogate-gradient training of a spiking network through time (backpropagation through time).

The float weights of a trained ReLU MLP (:func:`~circuitsim.network.mlp.load_or_train`) are
fine-tuned as the spiking network they become (:mod:`circuitsim.network.spiking`): the forward
pass is the network's own LIF dynamics over ``time_steps`` steps on the encoded training images
(refractoriness and early stop left out while training), the spike's step function is given
the fast-sigmoid surrogate derivative ``1 / (1 + k |v − θ| / θ)²`` (Zenke & Ganguli,
"SuperSpike", 2018; ``k`` = :data:`SLOPE`) and the reset is detached from the graph. The loss
is the cross-entropy of the scores (``score = "count"``: :data:`COUNT_LOGIT` × the output
spike rate; ``"potential"``: the output potentials). Adam with the MLP's cosine schedule;
the weights stay in [-1, 1] (the device's range, weight scale 1), the gains fixed.

Public API
----------
SLOPE, COUNT_LOGIT, train_surrogate, load_or_train_surrogate, train_mask_surrogate,
load_or_train_mask_surrogate
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .datasets import Dataset
from .mlp import MLP, adam_step
from .network_cache import cache_key, cached_network
from .random_weights import CellNetwork, draw_conductances, pair_weights
from .spiking import SpikingConfig, encode

SLOPE = 5.0
"""Steepness ``k`` of the surrogate derivative (per threshold)."""
COUNT_LOGIT = 10.0
"""Logit per unit output spike rate (spikes per step) of the count score."""
_VERSION = 1  # bump when the training changes, to invalidate cached networks


def _forward(weights, biases, gains, config: SpikingConfig, inputs: np.ndarray):
    """Membrane potentials (before the spike) and spikes of every layer, ``T × N × n`` each."""
    beta, theta = config.beta, config.threshold
    h_all, v_all, s_all = inputs, [], []
    last = len(weights) - 1
    for k, (w, b, g) in enumerate(zip(weights, biases, gains)):
        current = g * (h_all @ w + b)  # T × N × n
        v, u = np.empty_like(current), np.zeros(current.shape[1:])
        s = np.zeros_like(current)
        for t in range(len(current)):
            v[t] = beta * u + current[t]
            if k == last and config.score == "potential":
                u = v[t]
                continue
            s[t] = v[t] > theta
            u = v[t] - theta * s[t] if config.reset == "subtract" else v[t] * (1.0 - s[t])
        v_all.append(v)
        s_all.append(s)
        h_all = s
    return v_all, s_all


def _logits(config: SpikingConfig, v_all, s_all) -> np.ndarray:
    if config.score == "potential":
        return v_all[-1][-1]
    return COUNT_LOGIT * s_all[-1].mean(axis=0)


def _gradients(weights, biases, gains, config: SpikingConfig, inputs: np.ndarray, y: np.ndarray):
    """Loss and the gradients of the weights and biases (backpropagation through time)."""
    v_all, s_all = _forward(weights, biases, gains, config, inputs)
    logits = _logits(config, v_all, s_all)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n, steps = len(y), len(inputs)
    loss = float(-np.mean(np.log(p[np.arange(n), y] + 1e-12)))
    d_logits = p
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n
    beta, theta = config.beta, config.threshold
    d_out = np.zeros_like(v_all[-1])  # dL/d(spikes) of the last layer, or dL/dv of its potential
    potential = config.score == "potential"
    if potential:
        d_out[-1] = d_logits
    else:
        d_out[:] = COUNT_LOGIT / steps * d_logits
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        v, s = v_all[k], s_all[k]
        d_current = np.empty_like(v)
        d_u = np.zeros(v.shape[1:])
        non_firing = potential and k == len(weights) - 1
        for t in range(steps - 1, -1, -1):
            if non_firing:
                d_v = d_out[t] + beta * d_u
                d_u = d_v
            else:
                surrogate = 1.0 / (1.0 + SLOPE * np.abs(v[t] - theta) / theta) ** 2
                d_v = d_out[t] * surrogate + beta * d_u * (1.0 if config.reset == "subtract" else 1.0 - s[t])
                d_u = d_v
            d_current[t] = d_v
        d_sums = gains[k] * d_current
        h = inputs if k == 0 else s_all[k - 1]
        grads_w[k] = np.einsum("tni,tnj->ij", h, d_sums)
        grads_b[k] = d_sums.sum(axis=(0, 1))
        if k:
            d_out = d_sums @ weights[k].T
    return loss, grads_w, grads_b


def train_surrogate(dataset: Dataset, mlp: MLP, config: SpikingConfig, epochs: int, learning_rate: float = 0.002,
                    batch_size: int = 100, seed: int = 0, progress: bool = False) -> MLP:
    """Fine-tune the float weights of ``mlp`` as the spiking network ``config`` (module notes).

    Raises
    ------
    ConfigError
        The MLP's weights are not float (binary and ternary weights are not trained through time).
    """
    if mlp.config.weights != "float":
        raise ConfigError(f"surrogate-gradient training fine-tunes float weights; the network has "
                          f"{mlp.config.weights!r} weights: set [network] weights = \"float\"")
    weights = [np.array(w, dtype=float) for w in mlp.weights]
    biases = [np.array(b, dtype=float) for b in mlp.biases]
    gains = list(mlp.config.gains)
    params = weights + biases
    adam = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 << 17,)))
    x, y = np.asarray(dataset.x_train, dtype=float), np.asarray(dataset.y_train)
    step, rounds = 0, range(epochs)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc="train surrogate", unit="epoch")
    for epoch in rounds:
        lr = learning_rate * (0.01 + 0.495 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            encoder = encode(config.replace(encoding_seed=int(rng.integers(1 << 31))), x[idx])
            inputs = np.stack([encoder(t) for t in range(config.time_steps)])
            _, grads_w, grads_b = _gradients(weights, biases, gains, config, inputs, y[idx])
            step += 1
            for p, g, moments in zip(params, grads_w + grads_b, adam):
                adam_step(p, g, moments, step, lr)
                np.clip(p, -1.0, 1.0, out=p)
    return MLP(weights, biases, mlp.config)


def load_or_train_surrogate(dataset: Dataset, mlp: MLP, config: SpikingConfig, epochs: int,
                            cache_dir: str | Path) -> MLP:
    """:func:`train_surrogate`, cached in ``cache_dir`` by dataset, starting network and
    spiking configuration."""
    key = cache_key(f"surrogate-v{_VERSION}|{dataset.name}|{epochs}|",
                    dataclasses.asdict(config.replace(early_stop_margin=0.0)),
                    (dataset.x_train, dataset.y_train, *mlp.weights, *mlp.biases))
    return cached_network(cache_dir, "snn", dataset.name, key,
                          lambda: train_surrogate(dataset, mlp, config, epochs, seed=mlp.config.seed,
                                                  progress=sys.stderr.isatty()),
                          MLP.load, lambda net, path, k: net.save(path, cache_key=k))


def train_mask_surrogate(dataset: Dataset, net: CellNetwork, config: SpikingConfig, epochs: int,
                         progress: bool = False) -> CellNetwork:
    """The edge-popup mask of the random network ``net`` trained through time as the spiking
    network ``config``: scores start at its mask (plus uniform [0, 1) noise below it, so the
    first step keeps it), receive the straight-through gradient of the effective weights
    times the drawn weights (surrogate gradients through time, as :func:`train_surrogate`),
    and the top ``keep`` of each layer's pairs stay connected; the conductances never change.
    """
    from .mask_training import top_fraction

    random = net.random
    if random.training != "mask":
        raise ConfigError(f"training the mask through time needs network.training = \"mask\", got "
                          f"{random.training!r}")
    drawn = draw_conductances(random, net.device)
    fixed = [pair_weights(g, net.device) for g in drawn]  # rows × n_out, the bias row last (or none)
    rng = np.random.default_rng(np.random.SeedSequence(random.seed, spawn_key=(1 << 18,)))
    scores = [m + rng.random(m.shape) * 0.5 for m in net.masks]
    adam = [(np.zeros_like(s), np.zeros_like(s)) for s in scores]
    gains, bias = list(net.config.gains), random.bias
    x, y = np.asarray(dataset.x_train, dtype=float), np.asarray(dataset.y_train)
    step, rounds = 0, range(epochs)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc="train mask through time", unit="epoch")
    for epoch in rounds:
        lr = random.learning_rate * (0.01 + 0.495 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))
        order = rng.permutation(len(x))
        for start in range(0, len(x), random.batch_size):
            idx = order[start:start + random.batch_size]
            masks = [top_fraction(s, random.keep) for s in scores]
            effective = [m * w for m, w in zip(masks, fixed)]
            weights = [e[:e.shape[0] - int(bias)] for e in effective]
            biases = [e[-1] if bias else np.zeros(e.shape[1]) for e in effective]
            encoder = encode(config.replace(encoding_seed=int(rng.integers(1 << 31))), x[idx])
            inputs = np.stack([encoder(t) for t in range(config.time_steps)])
            _, grads_w, grads_b = _gradients(weights, biases, gains, config, inputs, y[idx])
            step += 1
            for k, (w, s) in enumerate(zip(fixed, scores)):
                g_eff = np.vstack([grads_w[k], grads_b[k][None, :]]) if bias else grads_w[k]
                adam_step(s, g_eff * w, adam[k], step, lr)  # straight through the mask
    masks = [top_fraction(s, random.keep) for s in scores]
    pruned = 0.0 if random.pruned_cells == "open" else net.device.g_min
    cells = [np.where(np.repeat(~m, 2, axis=1), pruned, g) for g, m in zip(drawn, masks)]
    return CellNetwork(cells, masks, random, net.device, gains)


def load_or_train_mask_surrogate(dataset: Dataset, net: CellNetwork, config: SpikingConfig, epochs: int,
                                 cache_dir: str | Path) -> CellNetwork:
    """:func:`train_mask_surrogate`, cached in ``cache_dir`` by dataset, network and spiking configuration."""
    key = cache_key(f"mask-surrogate-v{_VERSION}|{dataset.name}|{epochs}|",
                    [dataclasses.asdict(config.replace(early_stop_margin=0.0)), net.random.to_dict(),
                     [net.device.r_low, net.device.r_high, net.device.levels]],
                    (dataset.x_train, dataset.y_train, *net.masks))
    return cached_network(cache_dir, "snn-random", dataset.name, key,
                          lambda: train_mask_surrogate(dataset, net, config, epochs, progress=sys.stderr.isatty()),
                          CellNetwork.load, lambda n, path, k: n.save(path, cache_key=k))
