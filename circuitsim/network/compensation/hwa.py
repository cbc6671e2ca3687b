"""Hardware-aware fine-tuning: train a network's own weights through its mapped crossbars.

Starting from a trained :class:`~circuitsim.network.mlp.MLP`, Adam updates float "latent"
weights; the forward pass quantizes them as the network was trained (binary, ternary or
float, :mod:`circuitsim.network.mlp`) and runs them *as the tiles compute them*:

- **effective weights from the tiles' extracted T.** At every refresh (once per epoch, or
  every ``refresh_steps`` steps) the current quantized network is mapped
  (:func:`~circuitsim.network.mapped.map_network`: every tile realized, characterized
  and cached by content, so a tile whose cells did not change is not extracted again) and
  the layer's hardware error ``E = M_eff - W_q`` is kept; between refreshes the forward
  pass uses ``W_q + E`` (the quantized weights of this step plus the last extracted error);
- **ADCs**: the tiles' ADCs (their ranges recalibrated at every refresh) quantize every
  partial sum, with their non-idealities; the backward pass takes them as exact
  (straight-through), and the quantized weights pass their gradient to the latent ones;
- **device noise injection**: with device statistics, refresh ``j`` realizes the tiles
  with the training seed ``seed + 1 + j`` (new programming noise, faults and drift per
  refresh, never the evaluation draw ``seed``), and the tiles' read noise is drawn per
  image in every step.

At every refresh the real mapped network (with its ADCs) is scored on the first
``calibration_images`` training images; the best network seen — the starting one included —
is returned, so fine-tuning never scores worse than no fine-tuning on those images.
:func:`load_or_finetune` caches the fine-tuned network like any trained network.

Public API
----------
hwa_finetune, load_or_finetune
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..circuit_config import CircuitConfig
from ..mapped import map_network
from ..mlp import MLP, TERNARY_THRESHOLD, _load_cached, _quantize, _save_cached
from ...tile.tile_cache import TileCache
from .config import CompensationConfig
from .hardware import Adam, hardware_backward, hardware_forward

_HWA_VERSION = 1  # bump when fine-tuning changes, to invalidate cached networks


def _latent(w: np.ndarray, kind: str, scale: float) -> np.ndarray:
    """Latent weights that quantize back to ``w``, ``scale`` of the way to the clip."""
    if kind == "binary":
        return scale * w
    if kind == "ternary":
        return np.sign(w) * (TERNARY_THRESHOLD + scale * (1.0 - TERNARY_THRESHOLD))
    return w.copy()


def _training_circuit(circuit: CircuitConfig, refresh: int) -> CircuitConfig:
    stats = circuit.device.statistics
    if stats.is_exact:
        return circuit
    device = dataclasses.replace(circuit.device, statistics=stats.replace(seed=stats.seed + 1 + refresh))
    return dataclasses.replace(circuit, device=device)


def _stack(w: np.ndarray, b: np.ndarray, bias: bool) -> np.ndarray:
    return np.vstack([w, b[None, :]]) if bias else w


def hwa_finetune(net: MLP, partitions, circuit: CircuitConfig, cache: TileCache, x_train, y_train,
                 config: CompensationConfig) -> MLP:
    """Fine-tune ``net`` through its tiles (see the module notes) and return the best network.

    Parameters
    ----------
    net : MLP
        The trained network.
    partitions : sequence of Partition
        One per layer.
    circuit : CircuitConfig
        Device (and statistics), wires, engine, ADC.
    cache : TileCache
        Tile characterizations by content.
    x_train, y_train : array_like
        Training images and labels (the first ``config.calibration_images`` also set the ADC
        ranges and score the refreshes).
    config : CompensationConfig
        Epochs, batch size, learning rate, refresh interval, latent scale, seed.
    """
    x, y = np.asarray(x_train, dtype=float), np.asarray(y_train)
    x_cal, y_cal = x[:config.calibration_images], y[:config.calibration_images]
    kind, bias = net.config.weights, net.config.bias
    params = [p for w, b in zip(net.weights, net.biases)
              for p in (_latent(w, kind, config.latent_scale), _latent(b, kind, config.latent_scale))]
    trained = list(range(len(params))) if bias else list(range(0, len(params), 2))
    adam = Adam([params[j] for j in trained], config.learning_rate)
    rng = np.random.default_rng(config.seed)
    refreshes = 0

    def quantized() -> MLP:
        return MLP([_quantize(p, kind) for p in params[0::2]],
                   [_quantize(p, kind) if bias else np.zeros_like(p) for p in params[1::2]], net.config)

    def refresh():
        nonlocal refreshes
        current = quantized()
        mapped = map_network(current, partitions, _training_circuit(circuit, refreshes), cache, x_calibration=x_cal)
        refreshes += 1
        errors = [_stack(m, c, bias) - _stack(w, b, bias) for m, c, w, b in
                  zip(mapped.mlp.weights, mapped.mlp.biases, current.weights, current.biases)]
        return current, mapped, errors, mapped.accuracy(x_cal, y_cal)

    best_net, mapped, errors, best = refresh()
    steps_per_epoch = -(-len(x) // config.batch_size)
    interval = config.refresh_steps or steps_per_epoch
    epochs = range(config.epochs)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="hardware-aware fine-tuning", unit="epoch", leave=False)
    step = 0
    for _ in epochs:
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            current = quantized()
            matrices = [_stack(w, b, bias) + e for w, b, e in zip(current.weights, current.biases, errors)]
            _, trace = hardware_forward(mapped, x[idx], matrices=matrices)
            grads, _, _, _ = hardware_backward(mapped, trace, y[idx], matrices=matrices)
            split = [g for d in grads for g in ((d[:-1], d[-1]) if bias else (d, None))]
            adam.step([split[j] for j in trained])
            for j in trained:
                np.clip(params[j], -1.0, 1.0, out=params[j])
            step += 1
            if step % interval == 0:
                candidate, mapped, errors, score = refresh()
                if score > best:
                    best_net, best = candidate, score
    return best_net


def _cache_key(net: MLP, partitions, circuit: CircuitConfig, config: CompensationConfig, x_train, y_train) -> str:
    h = hashlib.sha256(f"hwa-v{_HWA_VERSION}|{net.content_hash()}|".encode())
    parts = [dataclasses.astuple(p) for p in partitions]
    h.update(json.dumps([parts, dataclasses.asdict(circuit), config.to_dict()], sort_keys=True, default=str).encode())
    for a in (x_train, y_train):
        a = np.asarray(a)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def load_or_finetune(net: MLP, partitions, circuit: CircuitConfig, cache: TileCache, x_train, y_train,
                     config: CompensationConfig, cache_dir: str | Path, name: str = "mlp") -> MLP:
    """The network :func:`hwa_finetune` returns, from ``cache_dir`` when cached.

    The key hashes the starting network, the partitions, the whole circuit configuration,
    the compensation settings and the training data; a cached file is used only when it
    holds this key and the network's configuration (else one warning line and a new
    fine-tuning). Raises :class:`~circuitsim.errors.EnvironmentFailure` when ``cache_dir``
    cannot be written.
    """
    key = _cache_key(net, partitions, circuit, config, x_train, y_train)
    folder = Path(cache_dir)
    target = folder / f"hwa-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{key[:20]}.npz"
    if target.is_file():
        cached = _load_cached(target, key, net.config)
        if cached is not None:
            return cached
    tuned = hwa_finetune(net, partitions, circuit, cache, x_train, y_train, config)
    _save_cached(tuned, target, key)
    return tuned
