"""A mapped network with its compensation: what a sweep point evaluates.

:func:`compensate` applies one :class:`~.config.CompensationConfig` to a network on its
circuits and returns a :class:`CompensatedNetwork`: for ``"none"`` the mapped network as it
is; for ``"hwa"`` the mapped network of the fine-tuned weights (analog: nothing digital is
added); for ``"affine"`` and ``"lora"`` the mapped network plus the digital correction of
every layer's sums, with its overhead per inference (extra parameters, extra
multiply-accumulates). A correction that classifies the calibration images (the first
``calibration_images`` training images) worse than none is set to change nothing (scale 1,
offset 0, ``B = 0``; its digital unit and overhead remain), and ``hwa`` keeps the best network
it saw (:mod:`.hwa`): no method scores worse than ``none`` on those images.

Public API
----------
CompensatedNetwork, compensate
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError

from ..circuit_config import CircuitConfig
from ..mapped import MappedNetwork, map_network
from ..mlp import MLP
from ..network import Network
from ...tile.tile_cache import TileCache
from .adapters import adapter_overhead, train_adapters
from .affine import affine_overhead, fit_affine
from .config import CompensationConfig
from .hardware import hardware_forward
from .hwa import load_or_finetune


@dataclass(frozen=True, eq=False)
class CompensatedNetwork:
    """A network on its circuits with the digital correction of a compensation method."""

    mapped: MappedNetwork
    """The network as its tiles compute it (for ``hwa``: the fine-tuned network's tiles)."""
    config: CompensationConfig
    """The method and its settings."""
    affine: tuple | None = None
    """``(scale, offset)`` per layer (``affine``), else None."""
    adapters: tuple | None = None
    """``(A, B)`` per layer (``lora``), else None."""
    network: Network | MLP | None = None
    """The network whose weights are on the tiles (for ``hwa`` the fine-tuned one)."""

    @property
    def digital(self) -> bool:
        """Whether a digital correction is added to the analog sums."""
        return self.affine is not None or self.adapters is not None

    def predict(self, x) -> np.ndarray:
        """Predicted classes (through the ADCs when configured, then the correction)."""
        if not self.digital:
            return self.mapped.predict(x)
        probs, _ = hardware_forward(self.mapped, x, adapters=self.adapters, affine=self.affine)
        return np.argmax(probs, axis=-1)

    def accuracy(self, x, y) -> float:
        """Fraction of images classified correctly."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def analog_accuracy(self, x, y) -> float:
        """Accuracy of the same circuit and correction without the ADCs."""
        probs, _ = hardware_forward(self.mapped, x, adapters=self.adapters, affine=self.affine, use_adc=False)
        return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(y)))

    @property
    def overhead(self) -> tuple[int, int]:
        """Extra digital parameters and multiply-accumulates per inference."""
        if self.affine is not None:
            return affine_overhead(self.mapped)
        if self.adapters is not None:
            return adapter_overhead(self.mapped, self.config.rank)
        return 0, 0


def _identity(result: CompensatedNetwork) -> dict:
    """The correction of ``result`` set to change nothing (unit scale, zero offset, ``B = 0``)."""
    if result.affine is not None:
        return {"affine": tuple((np.ones_like(s), np.zeros_like(o)) for s, o in result.affine)}
    return {"adapters": tuple((a, np.zeros_like(b)) for a, b in result.adapters)}


def compensate(net: Network | MLP, mapped: MappedNetwork, config: CompensationConfig, circuit: CircuitConfig,
               cache: TileCache, x_train, y_train, cache_dir: str | Path | None = None,
               name: str = "mlp") -> CompensatedNetwork:
    """Apply ``config``'s method to ``net`` mapped as ``mapped``.

    Parameters
    ----------
    net : Network or MLP
        The trained (digital) network (any network: an MLP, a CNN, an ONNX model).
    mapped : MappedNetwork
        ``net`` on its tiles (``map_network`` with ``circuit``).
    config : CompensationConfig
        Method and settings.
    circuit : CircuitConfig
        The circuit ``mapped`` was built with (``hwa`` maps its fine-tuned networks with it).
    cache : TileCache
        Tile characterizations by content.
    x_train, y_train : array_like
        Training images and labels (calibration, adapter and fine-tuning data).
    cache_dir : str or Path, optional
        Where a fine-tuned network is cached (``hwa``; not cached when None).
    name : str
        Dataset name in the cached file's name.
    """
    if config.method == "hwa" and getattr(net, "conductances", None) is not None:
        raise ConfigError("compensation.method = \"hwa\" fine-tunes programmed weights, and a random network's "
                          "cells are drawn, not programmed; train its mask or use affine or lora")
    x_train = np.asarray(x_train, dtype=float)
    x_cal = x_train[:config.calibration_images]
    if config.method in ("affine", "lora"):
        if config.method == "affine":
            result = CompensatedNetwork(mapped, config, affine=tuple(fit_affine(mapped, net, x_cal, config)),
                                        network=net)
        else:
            result = CompensatedNetwork(mapped, config, adapters=tuple(train_adapters(mapped, x_train, y_train, config)),
                                        network=net)
        y_cal = np.asarray(y_train)[:len(x_cal)]
        if result.accuracy(x_cal, y_cal) < mapped.accuracy(x_cal, y_cal):  # the unit left at identity
            return CompensatedNetwork(mapped, config, network=net, **_identity(result))
        return result
    if config.method == "hwa":
        if cache_dir is None:
            from .hwa import hwa_finetune
            tuned = hwa_finetune(net, mapped.partitions, circuit, cache, x_train, y_train, config)
        else:
            tuned = load_or_finetune(net, mapped.partitions, circuit, cache, x_train, y_train, config,
                                     cache_dir, name)
        remapped = map_network(tuned, mapped.partitions, circuit, cache, x_calibration=x_cal)
        return CompensatedNetwork(remapped, config, network=tuned)
    return CompensatedNetwork(mapped, config, network=net)
