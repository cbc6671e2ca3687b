"""A network as a sequence of layers (with residual sums), its weights file and the MLP.

:class:`Network` runs its layers in order; each layer takes the previous value unless
its ``sources`` entry names others (value 0 is the network input, value ``k + 1`` the
output of layer ``k``), which is how a residual :class:`~circuitsim.network.layers.Add`
reaches back. Today's :class:`~circuitsim.network.mlp.MLP` is one such network
(:meth:`Network.from_mlp`): Dense layers with the MLP's gains, its activation, softmax last.

Weights files (``.npz``) hold a JSON list of the layers and their arrays
(:meth:`Network.save`, :meth:`Network.load`).

Public API
----------
Network, LAYER_TYPES
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError
from ..files import check_array_file
from .layers import (Activation, Add, AvgPool, BatchNorm, Conv2d, Dense, Flatten, GlobalAvgPool,
                     MaxPool, Reshape)
from .tensor_layers import (Binary, Concat, Constant, Embedding, Expand, Gather, LayerNorm, MatMul, Reduce,
                            Slice, Squeeze, Transpose, Unsqueeze)

if TYPE_CHECKING:
    from .onnx_graph import ClassifierTail

LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Conv2d, MaxPool, AvgPool, GlobalAvgPool, Flatten,
                                            Reshape, BatchNorm, Activation, Add, LayerNorm, MatMul, Binary,
                                            Reduce, Transpose, Squeeze, Unsqueeze, Concat, Slice, Gather,
                                            Expand, Embedding, Constant)}
"""Layer classes by name, as written in weights files."""


class Network:
    """A sequence of layers.

    Parameters
    ----------
    layers : sequence
        Layer objects (:mod:`circuitsim.network.layers`).
    input_shape : tuple of int
        Shape of one input without the batch dimension, e.g. ``(1, 28, 28)`` or ``(400,)``.
    sources : sequence of tuple of int, optional
        Values each layer takes (0 = the input, ``k + 1`` = layer ``k``'s output);
        by default each layer takes the previous value.
    name : str
        Free-form name (kept in results).
    """

    classifier: ClassifierTail | None = None
    """A classifier's digital tail (labels of the outputs,
    :class:`~circuitsim.network.onnx_graph.ClassifierTail`) when the network was imported
    from one (skl2onnx), else None."""
    exporter: str | None = None
    """Which PyTorch ONNX exporter wrote the model (``"dynamo"`` or ``"legacy"``) when it
    came from :func:`~circuitsim.network.torch_import.from_torch`, else None."""

    def __init__(self, layers, input_shape, sources=None, name: str = "network"):
        self.layers = tuple(layers)
        if not self.layers:
            raise ConfigError("a network needs at least one layer")
        for k, layer in enumerate(self.layers):
            if type(layer).__name__ not in LAYER_TYPES:
                raise ConfigError(f"layer {k} is a {type(layer).__name__}, not a circuitsim layer")
        self.input_shape = tuple(int(n) for n in input_shape)
        sources = [(k,) for k in range(len(self.layers))] if sources is None else sources
        self.sources = tuple(tuple(int(i) for i in s) for s in sources)
        if len(self.sources) != len(self.layers):
            raise ConfigError(f"{len(self.layers)} layers but {len(self.sources)} sources entries")
        for k, src in enumerate(self.sources):
            if not src or not all(0 <= i <= k for i in src):
                raise ConfigError(f"layer {k} takes values {src}: each must be an earlier value (0..{k})")
        self.name = str(name)

    @property
    def crossbar_layers(self) -> tuple[int, ...]:
        """Indices of the layers mapped onto crossbars (Dense and Conv2d)."""
        return tuple(k for k, layer in enumerate(self.layers) if layer.crossbar)

    def fit_input(self, x) -> np.ndarray:
        """Images ``x`` (flattened or not) in the network's input shape, float64.

        Raises :class:`ConfigError` in one line when the sizes do not match.
        """
        x = np.asarray(x, dtype=np.float64)
        size = math.prod(self.input_shape)
        per_image = math.prod(x.shape[1:]) if x.ndim > 1 else 0
        if per_image != size:
            side = math.isqrt(size // self.input_shape[0]) if len(self.input_shape) == 3 else math.isqrt(size)
            raise ConfigError(f"the images have {per_image} values each but network {self.name!r} expects "
                              f"inputs of shape {self.input_shape}; load the dataset with side = {side}")
        return x.reshape((len(x),) + self.input_shape)

    def forward(self, x, mac: Callable | None = None, batch: int | None = None) -> np.ndarray:
        """Outputs for inputs ``x`` (``(N,) + input_shape``, or flattened images), float64.

        ``mac(k, rows)``, when given, computes crossbar layer ``k``'s sums from its rows
        (the evaluator's tiles); ``batch`` runs the images in groups of that many.
        """
        x = self.fit_input(x)
        if batch and len(x) > batch:
            return np.concatenate([self.forward(x[i:i + batch], mac) for i in range(0, len(x), batch)])
        values = [x]
        for k, (layer, src) in enumerate(zip(self.layers, self.sources)):
            args = [values[i] for i in src]
            if layer.crossbar and mac is not None:
                values.append(layer.apply(args[0], lambda rows, k=k: mac(k, rows)))
            else:
                values.append(layer(*args))
        return values[-1]

    __call__ = forward

    def macs(self) -> dict[str, int]:
        """Multiply-accumulates per image: ``"crossbar"`` (rows × weights of every crossbar layer,
        bias rows included) and ``"digital"`` (the :class:`~circuitsim.network.tensor_layers.MatMul`
        of two computed values, attention's products)."""
        counts = {"crossbar": 0, "digital": 0}

        def mac(k: int, rows: np.ndarray) -> np.ndarray:
            w, b = self.layers[k].matrix()
            counts["crossbar"] += len(rows) * (w.shape[0] + int(b is not None)) * w.shape[1]
            return np.zeros((len(rows), w.shape[1]))

        values = [self.fit_input(np.zeros((1,) + self.input_shape))]
        for k, (layer, src) in enumerate(zip(self.layers, self.sources)):
            args = [values[i] for i in src]
            if isinstance(layer, MatMul):
                counts["digital"] += layer.macs(np.shape(args[0]), np.shape(args[1]))
            values.append(layer.apply(args[0], lambda rows, k=k: mac(k, rows)) if layer.crossbar else layer(*args))
        return counts

    def predict(self, x, batch: int = 1000) -> np.ndarray:
        """Predicted class (argmax of the output) per image, int64."""
        return np.argmax(self.forward(x, batch=batch).reshape(len(x), -1), axis=-1).astype(np.int64)

    def accuracy(self, x, y) -> float:
        """Fraction of images classified as their label ``y``."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def replace_layers(self, changes: dict) -> Network:
        """A copy with layers ``{index: new layer}`` swapped in."""
        layers = [changes.get(k, layer) for k, layer in enumerate(self.layers)]
        return Network(layers, self.input_shape, self.sources, self.name)

    @classmethod
    def from_mlp(cls, mlp) -> Network:
        """The :class:`~circuitsim.network.mlp.MLP` as layers (same outputs, bit for bit).

        Its weights are already in the device's range (scale 1); a random-conductance network's
        Dense layers carry its cells."""
        layers = []
        last = len(mlp.weights) - 1
        cells = getattr(mlp, "conductances", None)  # a random-conductance network's own cells
        for k, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
            layers.append(Dense(w, b if mlp.config.bias else None, mlp.config.gains[k], scale=1.0,
                                cells=None if cells is None else cells[k]))
            layers.append(Activation("softmax" if k == last else mlp.config.activation))
        return cls(layers, (mlp.config.layers[0],), name="mlp")

    # -- weights files ---------------------------------------------------------------

    def _description(self) -> tuple[list, dict]:
        entries, arrays = [], {}
        for k, layer in enumerate(self.layers):
            entry = {"type": type(layer).__name__}
            for f in fields(layer):
                value = getattr(layer, f.name)
                if value is None and f.metadata.get("optional"):
                    continue
                if isinstance(value, np.ndarray):
                    arrays[f"L{k}.{f.name}"] = value
                    entry[f.name] = "@array"
                else:
                    entry[f.name] = list(value) if isinstance(value, tuple) else value
            entries.append(entry)
        return entries, arrays

    def save(self, path: str | Path, cache_key: str = "") -> None:
        """Write the layers and their arrays to an ``.npz`` weights file (with the network cache's
        ``cache_key`` when given, :mod:`circuitsim.network.network_cache`)."""
        entries, arrays = self._description()
        meta = {"format": "circuitsim-network-1", "name": self.name, "input_shape": list(self.input_shape),
                "sources": [list(s) for s in self.sources], "layers": entries}
        if cache_key:
            arrays["cache_key"] = np.array(cache_key)
        np.savez(path, network=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a weights file written by :meth:`save`."""
        try:
            check_array_file(path)  # a header declaring 10¹² values is damage, not a request
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["network"]))
                layers = []
                for k, entry in enumerate(meta["layers"]):
                    entry = dict(entry)
                    kind = LAYER_TYPES[entry.pop("type")]
                    args = {name: (f[f"L{k}.{name}"] if value == "@array" else
                                   tuple(value) if isinstance(value, list) else value)
                            for name, value in entry.items()}
                    layers.append(kind(**args))
                return cls(layers, meta["input_shape"], meta["sources"], meta.get("name", "network"))
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RecursionError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot read network file {path}: {exc}; write it with Network.save") from None

    def content_hash(self) -> str:
        """SHA-256 hex digest of the layers, their arrays and the wiring."""
        entries, arrays = self._description()
        h = hashlib.sha256(json.dumps([entries, self.input_shape, self.sources], sort_keys=True,
                                      default=float).encode())
        for name in sorted(arrays):
            h.update(f"|{name}{arrays[name].shape}|".encode())
            h.update(np.ascontiguousarray(arrays[name], dtype="<f8").tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        kinds = ", ".join(type(layer).__name__ for layer in self.layers)
        return f"Network({self.name!r}, input {self.input_shape}: {kinds})"
