"""A numpy multilayer perceptron with float, binary or ternary weights.

Layer ``k`` (counting from 0) computes, from its input ``h_k`` (the image for k = 0),

    s_k     = h_k @ W_k + b_k                      (the crossbar's multiply-accumulate)
    h_{k+1} = act(gains[k] * s_k)                  (amplifier gain, then the neuron)

with ``act`` the configured activation for hidden layers and softmax for the last one
(trained with cross-entropy; classification takes the argmax). ``gains[k]`` plays the role
of the circuit's differential amplifier gain: with ±1 weights and 400 inputs the sums ``s_k``
reach tens, and the gain keeps the activation in its useful range. The default is
``c / (rms_w · sqrt(n_in))``: ``c = 4`` for sigmoid (the inverse of its slope at 0) or 2 for
relu (chosen by measurement), 1 for step, and ``rms_w`` the RMS of a freshly initialised weight (1 for
binary, 1/√2 for ternary, 1/√3 for float), so the summed signal has about unit spread.

The bias is one more input row held at 1 (the circuit drives it from Vdd), so it obeys the
same rules as the weights: in [-1, 1] for float weights, exactly {-1, +1} for binary and
{-1, 0, +1} for ternary networks. Quantized networks are trained with the straight-through
estimator: float "latent" weights in [-1, 1] are quantized in the forward pass (sign, or
zero below :data:`TERNARY_THRESHOLD` in magnitude) and receive the quantized weights'
gradient unchanged; Adam updates them and they are clipped back to [-1, 1].

Public API
----------
MLPConfig, MLP, train_mlp, load_or_train, adam_step, TERNARY_THRESHOLD
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..configs import check_fields
from ..errors import ConfigError
from .network_cache import cache_key, cached_network
from ..files import check_array_file

if TYPE_CHECKING:
    from .datasets import Dataset

TERNARY_THRESHOLD = 0.5
"""Latent weights with ``|w| < TERNARY_THRESHOLD`` become 0 in a ternary network."""

_INV_RMS = {"binary": 1.0, "ternary": math.sqrt(2.0), "float": math.sqrt(3.0)}
_TRAINING_VERSION = 1  # bump when training changes, to invalidate load_or_train caches


@dataclass(frozen=True)
class MLPConfig:
    """Architecture and training settings of an :class:`MLP`."""

    layers: tuple[int, ...] = (400, 120, 84, 10)
    """Widths from the input (pixels) to the output (classes); at least two entries."""
    activation: str = "sigmoid"
    """Hidden-layer activation: ``"sigmoid"``, ``"relu"`` or ``"step"`` (0/1 outputs, trained with
    the straight-through estimator: gradient 1 for ``|z| <= 1``; the binary networks of the
    resistance-sum topology). The output layer is softmax."""
    weights: str = "binary"
    """Weight set: ``"float"`` ([-1, 1]), ``"binary"`` ({-1, +1}) or ``"ternary"`` ({-1, 0, +1})."""
    epochs: int = 40
    """Passes over the training set."""
    batch_size: int = 50
    """Images per Adam step."""
    learning_rate: float = 0.005
    """Initial Adam step size; it decays on a cosine schedule to 1 % of this by the last epoch."""
    seed: int = 0
    """Seed of the weight initialisation and of the batch shuffling."""
    bias: bool = True
    """Whether each layer has a bias (one extra crossbar row driven from Vdd)."""
    gains: tuple[float, ...] | None = field(default=None)
    """Gain applied to each layer's sums before its activation (dimensionless); ``None``
    means ``c / (rms_w · sqrt(n_in))`` per layer (see the module notes) and is replaced by
    those values on construction, so a saved configuration always lists them."""

    def __post_init__(self) -> None:
        layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else ()
        if len(layers) < 2 or not all(_is_int(n) and n >= 1 for n in layers):
            raise ConfigError("layers must be two or more positive integers such as "
                              f"(400, 120, 84, 10), got {self.layers!r}")
        object.__setattr__(self, "layers", tuple(int(n) for n in layers))
        if self.activation not in ("sigmoid", "relu", "step"):
            raise ConfigError(f"activation must be 'sigmoid', 'relu' or 'step', got {self.activation!r}")
        if self.weights not in ("float", "binary", "ternary"):
            raise ConfigError("weights must be 'float', 'binary' or 'ternary', "
                              f"got {self.weights!r}")
        for name in ("epochs", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not _is_int(self.seed):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if (isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float))
                or not 0 < self.learning_rate < math.inf):
            raise ConfigError(f"learning_rate must be a positive number such as 0.005, "
                              f"got {self.learning_rate!r}")
        if not isinstance(self.bias, bool):
            raise ConfigError(f"bias must be True or False, got {self.bias!r}")
        gains = self.gains
        if gains is None:
            c = {"sigmoid": 4.0, "relu": 2.0, "step": 1.0}[self.activation] * _INV_RMS[self.weights]
            gains = tuple(c / math.sqrt(n) for n in self.layers[:-1])
        if (not isinstance(gains, (list, tuple)) or len(gains) != len(self.layers) - 1
                or not all(isinstance(g, (int, float)) and not isinstance(g, bool)
                           and 0 < g < math.inf for g in gains)):
            raise ConfigError(f"gains must be {len(self.layers) - 1} positive numbers (one per "
                              f"layer) or None for the default, got {self.gains!r}")
        object.__setattr__(self, "gains", tuple(float(g) for g in gains))

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON-compatible plain data."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPConfig:
        """Build a configuration from :meth:`to_dict` output (unknown keys are an error)."""
        check_fields(cls, data)
        return cls(**data)


class MLP:
    """A trained (or initialised) multilayer perceptron.

    Parameters
    ----------
    weights : list of ndarray
        ``weights[k]`` has shape ``(n_in, n_out)`` of layer ``k``.
    biases : list of ndarray
        ``biases[k]`` has shape ``(n_out,)``; zeros when ``config.bias`` is False.
    config : MLPConfig
        The configuration the network was built with.
    """

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], config: MLPConfig):
        shapes = list(zip(config.layers[:-1], config.layers[1:]))
        if len(weights) != len(shapes) or len(biases) != len(shapes):
            raise ConfigError(f"expected {len(shapes)} weight and bias arrays for layers "
                              f"{config.layers}, got {len(weights)} and {len(biases)}")
        self.weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self.biases = [np.asarray(b, dtype=np.float64) for b in biases]
        for k, ((n_in, n_out), w, b) in enumerate(zip(shapes, self.weights, self.biases)):
            if w.shape != (n_in, n_out) or b.shape != (n_out,):
                raise ConfigError(f"layer {k} needs weights {(n_in, n_out)} and biases {(n_out,)}, "
                                  f"got {w.shape} and {b.shape}")
        self.config = config

    def activate(self, k: int, s: np.ndarray) -> np.ndarray:
        """Apply layer ``k``'s gain and activation to its sums ``s = h_k @ W_k + b_k``."""
        z = self.config.gains[k] * np.asarray(s, dtype=np.float64)
        if k == len(self.weights) - 1:
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if self.config.activation == "relu":
            return np.maximum(z, 0.0)
        if self.config.activation == "step":
            return (z >= 0).astype(np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow warnings

    def forward(self, x: np.ndarray, return_preactivations: bool = False):
        """Run the network.

        Parameters
        ----------
        x : ndarray
            Inputs in [0, 1], shape ``(n, layers[0])`` or ``(layers[0],)``.
        return_preactivations : bool
            Also return every layer's input and sums.

        Returns
        -------
        ndarray or tuple
            Class probabilities ``(n, layers[-1])``; with ``return_preactivations`` a tuple
            ``(activations, sums)`` where ``activations[k]`` is ``h_k`` (``activations[0]`` is
            ``x`` and the last entry the probabilities) and ``sums[k] = h_k @ W_k + b_k``,
            so that ``activations[k + 1] == self.activate(k, sums[k])``.
        """
        h = np.asarray(x, dtype=np.float64)
        if h.shape[-1:] != (self.config.layers[0],) or h.ndim > 2:
            raise ConfigError(f"inputs must have shape (n, {self.config.layers[0]}), got "
                              f"{h.shape}; load the dataset with a matching side")
        activations, sums = [h], []
        for k in range(len(self.weights)):
            sums.append(self.layer_sums(k, h))
            h = self.activate(k, sums[-1])
            activations.append(h)
        return (activations, sums) if return_preactivations else h

    def layer_sums(self, k: int, h: np.ndarray) -> np.ndarray:
        """Layer ``k``'s sums ``h @ W_k + b_k`` of its inputs ``h``."""
        return h @ self.weights[k] + self.biases[k]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return the predicted class (argmax of the output) of each input, int64."""
        return np.argmax(self.forward(x), axis=-1).astype(np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return the fraction of inputs whose predicted class equals the label ``y``."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def save(self, path: str | Path, cache_key: str = "") -> None:
        """Write weights, biases and the JSON configuration to an ``.npz`` file (with the
        :func:`load_or_train` key it was cached under, when given)."""
        arrays = {f"W{k}": w for k, w in enumerate(self.weights)}
        arrays |= {f"b{k}": b for k, b in enumerate(self.biases)}
        if cache_key:
            arrays["cache_key"] = np.array(cache_key)
        np.savez(path, config=np.array(json.dumps(self.config.to_dict())), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MLP:
        """Read a network written by :meth:`save`."""
        try:
            check_array_file(path)  # a header declaring 10¹² values is damage, not a request
            with np.load(path, allow_pickle=False) as f:
                config = MLPConfig.from_dict(json.loads(str(f["config"])))
                n = len(config.layers) - 1
                return cls([f[f"W{k}"] for k in range(n)], [f[f"b{k}"] for k in range(n)], config)
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RecursionError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot read MLP file {path}: {exc}; "
                              "re-save it with MLP.save") from None

    def content_hash(self) -> str:
        """Return a SHA-256 hex digest of the configuration, weights and biases."""
        h = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for a in self.weights + self.biases:
            h.update(f"|{a.shape}|".encode())
            h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        return h.hexdigest()


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _quantize(w: np.ndarray, kind: str) -> np.ndarray:
    if kind == "binary":
        return np.where(w >= 0, 1.0, -1.0)
    if kind == "ternary":
        return np.where(np.abs(w) >= TERNARY_THRESHOLD, np.sign(w), 0.0)
    return w.copy()


def _gradients(net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], float, int]:
    """Return the mean cross-entropy gradients ``[dW0, db0, dW1, ...]``, summed loss, hits."""
    acts, sums = net.forward(x, return_preactivations=True)
    rows = np.arange(len(y))
    loss = float(-np.log(acts[-1][rows, y] + 1e-12).sum())
    correct = int((acts[-1].argmax(axis=1) == y).sum())
    delta = acts[-1].copy()  # d(mean loss)/d(gain * s) of the softmax output layer
    delta[rows, y] -= 1.0
    delta /= len(y)
    grads: list[np.ndarray] = []
    for k in reversed(range(len(net.weights))):
        ds = net.config.gains[k] * delta
        grads[:0] = [acts[k].T @ ds, ds.sum(axis=0)]
        if k:
            dh, h = ds @ net.weights[k].T, acts[k]
            if net.config.activation == "step":  # straight-through estimator
                delta = dh * (np.abs(net.config.gains[k - 1] * sums[k - 1]) <= 1.0)
            else:
                delta = dh * (h > 0) if net.config.activation == "relu" else dh * h * (1.0 - h)
    return grads, loss, correct


def train_mlp(dataset: Dataset, config: MLPConfig, progress: bool = False) -> MLP:
    """Train an :class:`MLP` on ``dataset.x_train`` with Adam and cross-entropy.

    Parameters
    ----------
    dataset : Dataset
        Training data; ``x_train`` must have ``config.layers[0]`` columns.
    config : MLPConfig
        Architecture and training settings.
    progress : bool
        Show a progress bar with the loss and training accuracy per epoch.

    Returns
    -------
    MLP
        The network with quantized (binary/ternary) or float weights and biases.
    """
    x, y = np.asarray(dataset.x_train, dtype=np.float64), np.asarray(dataset.y_train)
    n_in, n_out = config.layers[0], config.layers[-1]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ConfigError(f"dataset {dataset.name!r} has {x.shape[-1]} inputs but layers[0] is "
                          f"{n_in}; use side={math.isqrt(n_in)} or change layers")
    if len(y) != len(x) or y.min() < 0 or y.max() >= n_out:
        raise ConfigError(f"labels must lie in [0, {n_out}) to match layers[-1] = {n_out}")
    rng = np.random.default_rng(config.seed)
    shapes = list(zip(config.layers[:-1], config.layers[1:]))
    params = [p for a, b in shapes for p in (rng.uniform(-1, 1, (a, b)), rng.uniform(-1, 1, b))]
    if not config.bias:
        params[1::2] = [np.zeros_like(p) for p in params[1::2]]
    trained = range(len(params)) if config.bias else range(0, len(params), 2)
    adam = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    beta1, beta2, step = 0.9, 0.999, 0
    epochs = range(config.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="train MLP", unit="epoch")
    for epoch in epochs:
        lr = config.learning_rate * (0.01 + 0.495 * (1 + math.cos(math.pi * epoch / config.epochs)))
        order = rng.permutation(len(x))
        loss = correct = 0.0
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            net = MLP([_quantize(p, config.weights) for p in params[0::2]],
                      [_quantize(p, config.weights) for p in params[1::2]], config)
            grads, batch_loss, batch_correct = _gradients(net, x[idx], y[idx])
            loss, correct, step = loss + batch_loss, correct + batch_correct, step + 1
            for j in trained:  # Adam; quantized weights pass their gradient straight through
                m, v = adam[j]
                m *= beta1
                m += (1 - beta1) * grads[j]
                v *= beta2
                v += (1 - beta2) * grads[j] ** 2
                m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
                params[j] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
                np.clip(params[j], -1.0, 1.0, out=params[j])
        if progress:
            epochs.set_postfix(loss=f"{loss / len(x):.3f}", acc=f"{correct / len(x):.3f}")
    weights = [_quantize(p, config.weights) for p in params[0::2]]
    biases = [_quantize(p, config.weights) if config.bias else np.zeros_like(p)
              for p in params[1::2]]
    return MLP(weights, biases, config)


def adam_step(param: np.ndarray, grad: np.ndarray, moments: tuple[np.ndarray, np.ndarray], step: int,
              lr: float) -> None:
    """One Adam update of ``param`` in place (β₁ = 0.9, β₂ = 0.999, ε = 1e-8; ``moments`` are
    updated in place, ``step`` counts from 1)."""
    first, second = moments
    first *= 0.9
    first += 0.1 * grad
    second *= 0.999
    second += 0.001 * grad * grad
    param -= lr * (first / (1 - 0.9 ** step)) / (np.sqrt(second / (1 - 0.999 ** step)) + 1e-8)


def load_or_train(dataset: Dataset, config: MLPConfig, cache_dir: str | Path) -> MLP:
    """Return the network :func:`train_mlp` would train, from ``cache_dir`` when cached.

    The cache key hashes the dataset name, the training arrays (shapes and contents),
    the configuration and the training-code version; a new network is saved atomically,
    with its key. A cached file is used only when it is readable, holds this key and this
    configuration, and has weights of the configured shapes; otherwise one warning line
    is logged and the network is trained again.

    Raises
    ------
    EnvironmentFailure
        The cache folder cannot be written.
    """
    key = cache_key(f"v{_TRAINING_VERSION}|{dataset.name}|{dataset.n_classes}|", config.to_dict(),
                    (dataset.x_train, dataset.y_train))
    return cached_network(cache_dir, "mlp", dataset.name, key,
                          lambda: train_mlp(dataset, config, progress=sys.stderr.isatty()),  # a bar on a terminal
                          MLP.load, lambda net, path, k: net.save(path, cache_key=k), _same_config(config))


def _same_config(config: MLPConfig):
    """A cache check: the loaded network has ``config``."""
    def check(net: MLP) -> str | None:
        return None if net.config.to_dict() == config.to_dict() else "another configuration"
    return check
