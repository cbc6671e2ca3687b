"""Hardware-aware fine-tuning: train a network's own weights through its mapped crossbars.

Starting from a trained network (an :class:`~circuitsim.network.mlp.MLP`, a CNN, an ONNX
model), Adam updates float "latent" weights of every crossbar layer, in the layer's normalized
units (``W / s``, ``s`` its weight scale, kept fixed); the forward pass quantizes them as the
network was trained (binary, ternary or float: an MLP's configuration says which, another
network's crossbar weights show it) and runs them *as the tiles compute them*:

- **effective weights from the tiles' extracted T.** At every refresh (once per epoch, or
  every ``refresh_steps`` steps) the current quantized network is mapped
  (:func:`~circuitsim.network.mapped.map_network`: every tile realized, characterized
  and cached by content, so a tile whose cells did not change is not extracted again) and
  the layer's hardware error ``E = M_eff - W_q`` is kept; between refreshes the forward
  pass uses ``W_q + E`` (the quantized weights of this step plus the last extracted error);
- **ADCs**: the tiles' ADCs (their ranges recalibrated at every refresh) quantize every
  partial sum, with their non-idealities; the backward pass (through every layer of the
  network, :mod:`circuitsim.network.backprop`) takes them as exact (straight-through), and
  the quantized weights pass their gradient to the latent ones;
- **device noise injection**: with device statistics, refresh ``j`` realizes the tiles
  from a training seed spawned from the device seed (``SeedSequence(seed, spawn_key=(1, j))``:
  new programming noise, faults and drift per refresh, independent of every evaluation seed),
  and the tiles' read noise is drawn per image in every step.

At every refresh the real mapped network (with its ADCs) is scored on the first
``calibration_images`` training images; the best network seen — the starting one included —
is returned, so fine-tuning never scores worse than no fine-tuning on those images.
:func:`load_or_finetune` caches the fine-tuned network like any trained network
(:mod:`circuitsim.network.network_cache`).

Public API
----------
hwa_finetune, load_or_finetune
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from ..circuit_config import CircuitConfig
from ..layers import Conv2d, weight_scale
from ..mapped import map_network
from ..mlp import MLP, TERNARY_THRESHOLD, _quantize
from ..network import Network
from ..network_cache import cache_key, cached_network
from ...tile.tile_cache import TileCache
from .config import CompensationConfig
from .hardware import Adam, hardware_backward, hardware_forward

_HWA_VERSION = 1  # bump when fine-tuning changes, to invalidate cached networks
_TRAINING_STREAM = 1  # spawn-key prefix of the training realizations


def _latent(w: np.ndarray, kind: str, scale: float) -> np.ndarray:
    """Latent weights that quantize back to ``w``, ``scale`` of the way to the clip."""
    if kind == "binary":
        return scale * w
    if kind == "ternary":
        return np.sign(w) * (TERNARY_THRESHOLD + scale * (1.0 - TERNARY_THRESHOLD))
    return w.copy()


def training_seed(seed: int, refresh: int) -> int:
    """The device seed of fine-tuning refresh ``refresh``: spawned from the evaluation ``seed``,
    so no training realization is an evaluation draw of this or any other seed."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(_TRAINING_STREAM, int(refresh))).generate_state(1)[0])


def _training_circuit(circuit: CircuitConfig, refresh: int) -> CircuitConfig:
    stats = circuit.device.statistics
    if stats.is_exact:
        return circuit
    device = dataclasses.replace(circuit.device, statistics=stats.replace(seed=training_seed(stats.seed, refresh)))
    return dataclasses.replace(circuit, device=device)


def _stack(w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return np.vstack([w, b[None, :]]) if b is not None else w


def _weight_kind(net: Network | MLP, normalized: list[np.ndarray]) -> str:
    """How the network's weights were trained: an MLP's configuration, else what its crossbar
    weights (divided by their scales) hold: only ±1 (binary), only -1, 0, 1 (ternary), or any."""
    if isinstance(net, MLP):
        return net.config.weights
    values = np.unique(np.concatenate([w.ravel() for w in normalized]))
    if np.all(np.isin(values, (-1.0, 1.0))):
        return "binary"
    return "ternary" if np.all(np.isin(values, (-1.0, 0.0, 1.0))) else "float"


class _Crossbars:
    """A network's crossbar layers as normalized ``(W / s, b / s)`` pairs, and back."""

    def __init__(self, net: Network | MLP):
        self.source = net
        self.network = Network.from_mlp(net) if isinstance(net, MLP) else net
        self.indices = self.network.crossbar_layers
        self.scales = [weight_scale(self.network.layers[k]) for k in self.indices]
        self.pairs = []
        for k, s in zip(self.indices, self.scales):
            w, b = self.network.layers[k].matrix()
            self.pairs.append((w / s, None if b is None else b / s))

    def rebuild(self, pairs: list[tuple[np.ndarray, np.ndarray | None]]) -> Network | MLP:
        """The network with normalized ``pairs`` on its crossbar layers (scales kept)."""
        if isinstance(self.source, MLP):
            config = self.source.config
            return MLP([w for w, _ in pairs], [b if b is not None else np.zeros(w.shape[1]) for w, b in pairs], config)
        changes = {}
        for k, s, (w, b) in zip(self.indices, self.scales, pairs):
            layer = self.network.layers[k]
            weight = s * w if not isinstance(layer, Conv2d) else (s * w).T.reshape(layer.weight.shape)
            changes[k] = layer.replace(weight=weight, bias=None if b is None else s * b, scale=s)
        return self.network.replace_layers(changes)


def hwa_finetune(net: Network | MLP, partitions, circuit: CircuitConfig, cache: TileCache, x_train, y_train,
                 config: CompensationConfig) -> Network | MLP:
    """Fine-tune ``net`` through its tiles (see the module notes) and return the best network.

    Parameters
    ----------
    net : Network or MLP
        The trained network (an MLP is returned as an MLP).
    partitions : sequence of Partition
        One per crossbar layer.
    circuit : CircuitConfig
        Device (and statistics), wires, engine, topology, ADC.
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
    crossbars = _Crossbars(net)
    kind = _weight_kind(net, [w for w, _ in crossbars.pairs])
    params: list[np.ndarray] = []
    trained: list[int] = []
    for w, b in crossbars.pairs:
        params.append(_latent(w, kind, config.latent_scale))
        trained.append(len(params) - 1)
        params.append(_latent(b, kind, config.latent_scale) if b is not None else np.zeros(w.shape[1]))
        if b is not None:
            trained.append(len(params) - 1)
    has_bias = [b is not None for _, b in crossbars.pairs]
    adam = Adam([params[j] for j in trained], config.learning_rate)
    rng = np.random.default_rng(config.seed)
    refreshes = 0

    def quantized() -> list[tuple[np.ndarray, np.ndarray | None]]:
        return [(_quantize(w, kind), _quantize(b, kind) if bias else None)
                for w, b, bias in zip(params[0::2], params[1::2], has_bias)]

    def refresh():
        nonlocal refreshes
        pairs = quantized()
        current = crossbars.rebuild(pairs)
        mapped = map_network(current, partitions, _training_circuit(circuit, refreshes), cache, x_calibration=x_cal)
        refreshes += 1
        errors = [layer.weights - _stack(w, b) for layer, (w, b) in zip(mapped.crossbars, pairs)]
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
            matrices = [_stack(w, b) + e for (w, b), e in zip(quantized(), errors)]
            _, trace = hardware_forward(mapped, x[idx], matrices=matrices)
            grads, _, _, _ = hardware_backward(mapped, trace, y[idx], matrices=matrices)
            split = [g for d, bias in zip(grads, has_bias) for g in ((d[:-1], d[-1]) if bias else (d, None))]
            adam.step([split[j] for j in trained])
            for j in trained:
                np.clip(params[j], -1.0, 1.0, out=params[j])
            step += 1
            if step % interval == 0:
                candidate, mapped, errors, score = refresh()
                if score > best:
                    best_net, best = candidate, score
    return best_net


def _cache_key(net: Network | MLP, partitions, circuit: CircuitConfig, config: CompensationConfig, x_train,
               y_train) -> str:
    head = f"hwa-v{_HWA_VERSION}|{net.content_hash()}|"
    if not circuit.device.statistics.is_exact:  # the training realizations' seeds are spawned since issue 21
        head += "spawned-training-seeds|"
    parts = [dataclasses.astuple(p) for p in partitions]
    return cache_key(head, [parts, _circuit_fields(circuit), config.to_dict()], (x_train, y_train))


def _circuit_fields(circuit: CircuitConfig) -> dict:
    """The circuit as plain data, without the architecture fields of issue 26 at their defaults and
    the sense resistor of other readouts (the keys of networks cached before them stay the same)."""
    fields = dataclasses.asdict(circuit)
    if circuit.readout != "sense":
        del fields["r_sense"]
    if circuit.dac.kind == "none" and circuit.dac == type(circuit.dac)():
        del fields["dac"]
    if circuit.weight_bits is None:
        del fields["weight_bits"]
    if circuit.negative == "differential":
        del fields["negative"]
    if fields.get("adc") is not None and fields["adc"]["columns_per_adc"] == 1:
        del fields["adc"]["columns_per_adc"]
    if fields["device"]["v_read_max"] is None:
        del fields["device"]["v_read_max"]
    return fields


def load_or_finetune(net: Network | MLP, partitions, circuit: CircuitConfig, cache: TileCache, x_train, y_train,
                     config: CompensationConfig, cache_dir: str | Path, name: str = "mlp") -> Network | MLP:
    """The network :func:`hwa_finetune` returns, from ``cache_dir`` when cached.

    The key hashes the starting network, the partitions, the whole circuit configuration,
    the compensation settings and the training data (:mod:`circuitsim.network.network_cache`);
    a cached MLP is used only when it also has the network's configuration. Raises
    :class:`~circuitsim.errors.EnvironmentFailure` when ``cache_dir`` cannot be written.
    """
    key = _cache_key(net, partitions, circuit, config, x_train, y_train)

    def build() -> Network | MLP:
        return hwa_finetune(net, partitions, circuit, cache, x_train, y_train, config)

    if isinstance(net, MLP):
        return cached_network(cache_dir, "hwa", name, key, build, MLP.load,
                              lambda tuned, path, k: tuned.save(path, cache_key=k),
                              lambda tuned: None if tuned.config.to_dict() == net.config.to_dict()
                              else "another configuration")
    return cached_network(cache_dir, "hwa", name, key, build, Network.load,
                          lambda tuned, path, k: tuned.save(path, cache_key=k))
