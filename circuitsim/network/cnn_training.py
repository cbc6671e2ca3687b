"""Train small convolutional networks (LeNet-5 class) in numpy, and cache them.

The architecture of :class:`CNNConfig` is LeNet-5's: convolutions of ``kernel × kernel``
with ``channels`` output channels, each followed by the activation and a 2 × 2 pooling,
then dense layers of ``dense`` widths and a softmax over the classes. The defaults
(conv 5×5×6, pool, conv 5×5×16, pool, dense 120-84-10, padding 2 on the first
convolution) are LeNet-5's for 28 × 28 images.

Every crossbar layer computes ``gain · (rows @ W + b)`` with ``W`` and ``b`` in [-1, 1]
(binary {-1, +1} and ternary {-1, 0, +1} weights by the straight-through estimator, as
the MLP of :mod:`circuitsim.network.mlp`), the gain ``c / (rms_w · sqrt(fan_in))`` playing
the amplifier's part (``c`` = 2 for relu, 4 for sigmoid, 1 for tanh). Training is Adam
with cross-entropy and a cosine learning-rate decay; the trained network is a
:class:`~circuitsim.network.network.Network`.

Public API
----------
CNNConfig, build_cnn, train_cnn, load_or_train_cnn
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .backprop import backward, forward_trace, softmax_cross_entropy, weight_gradient
from .network_cache import cache_key, cached_network
from .layers import Activation, AvgPool, Conv2d, Dense, Flatten, MaxPool
from .mlp import TERNARY_THRESHOLD
from .network import Network

_TRAINING_VERSION = 1
_log = logging.getLogger("circuitsim")
_INV_RMS = {"binary": 1.0, "ternary": math.sqrt(2.0), "float": math.sqrt(3.0)}
_GAIN_C = {"relu": 2.0, "sigmoid": 4.0, "tanh": 1.0}


@dataclass(frozen=True)
class CNNConfig:
    """Architecture and training settings of a LeNet-5-class network."""

    channels: tuple[int, ...] = (6, 16)
    """Output channels of each convolution (each followed by activation and 2 × 2 pooling)."""
    kernel: int = 5
    """Square kernel size of every convolution, pixels."""
    padding: int = 2
    """Zero padding of the first convolution (2 keeps a 28 × 28 image at 28 × 28)."""
    dense: tuple[int, ...] = (120, 84)
    """Hidden dense widths after the last pooling; a dense layer to the classes follows."""
    pool: str = "max"
    """``"max"`` or ``"avg"`` pooling."""
    activation: str = "relu"
    """``"relu"``, ``"sigmoid"`` or ``"tanh"``."""
    weights: str = "float"
    """``"float"``, ``"binary"`` or ``"ternary"``."""
    epochs: int = 10
    """Passes over the training set."""
    batch_size: int = 50
    """Images per Adam step."""
    learning_rate: float = 0.005
    """Initial Adam step (cosine decay to 1 %)."""
    seed: int = 0
    """Seed of the initialisation and the shuffling."""
    bias: bool = True
    """Whether each crossbar layer has a bias row."""

    def __post_init__(self):
        for name in ("channels", "dense"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(_pos_int(v) for v in value):
                raise ConfigError(f"network.{name} must be a list of positive integers, got {value!r}")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        if not self.channels:
            raise ConfigError("network.channels needs at least one convolution")
        for name in ("kernel", "epochs", "batch_size"):
            if not _pos_int(getattr(self, name)):
                raise ConfigError(f"network.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("padding", "seed"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0):
                raise ConfigError(f"network.{name} must be an integer >= 0, got {value!r}")
        for name, allowed in (("pool", ("max", "avg")), ("activation", tuple(_GAIN_C)), ("weights", tuple(_INV_RMS))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"network.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if isinstance(self.learning_rate, bool) or not (0 < self.learning_rate < math.inf):
            raise ConfigError(f"network.learning_rate must be a positive number, got {self.learning_rate!r}")
        if not isinstance(self.bias, bool):
            raise ConfigError(f"network.bias must be true or false, got {self.bias!r}")

    def to_dict(self) -> dict:
        """Plain data (JSON-compatible)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _pos_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def _quantize(w: np.ndarray, kind: str) -> np.ndarray:
    if kind == "binary":
        return np.where(w >= 0, 1.0, -1.0)
    if kind == "ternary":
        return np.where(np.abs(w) >= TERNARY_THRESHOLD, np.sign(w), 0.0)
    return w


def _shapes(config: CNNConfig, input_shape: tuple[int, int, int], n_classes: int) -> list[tuple]:
    """Weight shapes of the crossbar layers, checking that the image fits the architecture."""
    c, h, w = input_shape
    shapes = []
    for i, out in enumerate(config.channels):
        pad = config.padding if i == 0 else 0
        h, w = h + 2 * pad - config.kernel + 1, w + 2 * pad - config.kernel + 1
        if h < 2 or w < 2:
            raise ConfigError(f"images of {input_shape[1]} × {input_shape[2]} are too small for "
                              f"{len(config.channels)} convolutions of {config.kernel} × {config.kernel}; "
                              "use a larger dataset side or fewer/smaller convolutions")
        shapes.append((out, c, config.kernel, config.kernel))
        c, h, w = out, h // 2, w // 2
    n_in = c * h * w
    for width in config.dense + (n_classes,):
        shapes.append((n_in, width))
        n_in = width
    return shapes


def build_cnn(config: CNNConfig, input_shape, n_classes: int, params: list[np.ndarray] | None = None) -> Network:
    """The :class:`Network` of ``config`` with weights ``params`` (``[W0, b0, W1, ...]``,
    quantized here), or zeros when None (the architecture only)."""
    shapes = _shapes(config, tuple(input_shape), n_classes)
    if params is None:
        params = [p for s in shapes for p in (np.zeros(s), np.zeros(s[0] if len(s) == 4 else s[1]))]
    c_gain = _GAIN_C[config.activation] * _INV_RMS[config.weights]
    layers = []
    n_conv = len(config.channels)
    pool = MaxPool if config.pool == "max" else AvgPool
    for i, shape in enumerate(shapes):
        w = _quantize(params[2 * i], config.weights)
        b = _quantize(params[2 * i + 1], config.weights) if config.bias else None
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        gain = c_gain / math.sqrt(fan_in)
        if i < n_conv:
            layers += [Conv2d(w, b, padding=config.padding if i == 0 else 0, gain=gain),
                       Activation(config.activation), pool((2, 2))]
            if i == n_conv - 1:
                layers.append(Flatten())
        else:
            last = i == len(shapes) - 1
            layers += [Dense(w, b, gain), Activation("softmax" if last else config.activation)]
    return Network(layers, tuple(input_shape), name="cnn")


def _gradients(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[list, float, int]:
    """Cross-entropy gradients of every crossbar layer's weights and bias, summed loss, hits
    (the mean loss's gradients, by :mod:`circuitsim.network.backprop`)."""
    trace = forward_trace(net, x)
    loss, grad, correct = softmax_cross_entropy(trace.output, y)
    grads = backward(net, trace, grad, output_is_softmax_grad=True, input_grad=False)
    flat = [g for k in net.crossbar_layers
            for g in (weight_gradient(net.layers[k], grads.d_weight[k]), grads.d_sums[k].sum(axis=0))]
    return flat, loss, correct


def train_cnn(dataset, config: CNNConfig, progress: bool = False) -> Network:
    """Train a :class:`CNNConfig` network on ``dataset`` (images of ``dataset.image_shape``).

    Parameters
    ----------
    dataset : Dataset
        Training images (flattened, one channel) and labels.
    config : CNNConfig
        Architecture and training settings.
    progress : bool
        Show a progress bar per epoch.
    """
    input_shape = (1,) + tuple(dataset.image_shape)
    x = np.asarray(dataset.x_train, dtype=np.float64).reshape((-1,) + input_shape)
    y = np.asarray(dataset.y_train)
    shapes = _shapes(config, input_shape, dataset.n_classes)
    rng = np.random.default_rng(config.seed)
    params = []
    for s in shapes:
        params += [rng.uniform(-1, 1, s), rng.uniform(-1, 1, s[0] if len(s) == 4 else s[1])]
    if not config.bias:
        params[1::2] = [np.zeros_like(p) for p in params[1::2]]
    trained = range(len(params)) if config.bias else range(0, len(params), 2)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    step, epochs = 0, range(config.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="train CNN", unit="epoch")
    for epoch in epochs:
        lr = config.learning_rate * (0.01 + 0.495 * (1 + math.cos(math.pi * epoch / config.epochs)))
        order = rng.permutation(len(x))
        loss = correct = 0.0
        for start in range(0, len(x), config.batch_size):
            idx = order[start:start + config.batch_size]
            grads, batch_loss, batch_correct = _gradients(build_cnn(config, input_shape, dataset.n_classes, params),
                                                          x[idx], y[idx])
            loss, correct, step = loss + batch_loss, correct + batch_correct, step + 1
            for j in trained:  # Adam; quantized weights pass their gradient straight through
                m, v = moments[j]
                m *= 0.9
                m += 0.1 * grads[j]
                v *= 0.999
                v += 0.001 * grads[j] ** 2
                params[j] -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
                np.clip(params[j], -1.0, 1.0, out=params[j])
        if progress:
            epochs.set_postfix(loss=f"{loss / len(x):.3f}", acc=f"{correct / len(x):.3f}")
    return build_cnn(config, input_shape, dataset.n_classes, [p.copy() for p in params])


def load_or_train_cnn(dataset, config: CNNConfig, cache_dir: str | Path) -> Network:
    """The network :func:`train_cnn` would train, read from ``cache_dir`` when cached.

    The key hashes the training code's version, the configuration, the dataset's name and
    its training arrays; the entry is verified, written atomically and stores the whole key
    (:mod:`circuitsim.network.network_cache`).

    Raises
    ------
    EnvironmentFailure
        The cache folder cannot be created or written (a read-only or full disk): never a
        configuration failure of the point.
    """
    key = cache_key(f"cnn-v{_TRAINING_VERSION}|{dataset.name}|{dataset.image_shape}|{dataset.n_classes}|",
                    config.to_dict(), (dataset.x_train, dataset.y_train))
    return cached_network(cache_dir, "cnn", dataset.name, key, lambda: train_cnn(dataset, config), Network.load,
                          lambda net, path, k: net.save(path, cache_key=k))
