"""What a compensation method is told: :class:`CompensationConfig` and fixed-point formats.

A compensation method wins back accuracy that the circuit loses (IR drop, ADCs, devices):

- ``"none"``: the network as its crossbars compute it;
- ``"affine"``: a per-column affine correction ``y = s·x + o`` of every layer's sums in
  fixed point (Ferro et al.'s near-memory unit: scale unsigned 1 integer + 7 fractional
  bits, offset signed 7 + 1 bits; :mod:`circuitsim.network.compensation.affine`);
- ``"lora"``: low-rank digital adapters ``A·B`` of rank ``rank`` per layer, trained with the
  analog weights frozen (Li et al.; :mod:`circuitsim.network.compensation.adapters`);
- ``"hwa"``: hardware-aware fine-tuning of the network's own weights through its mapped
  tiles (Ghosh et al.'s ADC-aware training, extended to the wires and the devices;
  :mod:`circuitsim.network.compensation.hwa`).

A fixed-point format is ``(integer bits, fractional bits)``; a signed format has one more
(sign) bit. :func:`to_fixed` rounds to the format's step ``2**-fractional`` and saturates
at its ends.

Public API
----------
METHODS, CompensationConfig, to_fixed
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ...configs import check_fields
from ...errors import ConfigError

METHODS = ("none", "affine", "lora", "hwa")
"""Compensation methods."""


@dataclass(frozen=True)
class CompensationConfig:
    """A compensation method and its settings (the ``[compensation]`` section of a spec)."""

    method: str = "none"
    """``"none"``, ``"affine"``, ``"lora"`` or ``"hwa"`` (see the module notes)."""
    rank: int = 1
    """``lora``: rank ``r`` of each layer's adapter ``A·B`` (``A`` rows × r, ``B`` r × outputs)."""
    epochs: int = 10
    """``lora``/``hwa``: passes over the training images."""
    learning_rate: float = 0.003
    """``lora``/``hwa``: Adam step size (constant)."""
    batch_size: int = 50
    """``lora``/``hwa``: images per Adam step."""
    refresh_steps: int = 20
    """``hwa``: steps between refreshes of the effective weights from the tiles' extracted
    ``T`` (0: once per epoch)."""
    latent_scale: float = 0.25
    """``hwa`` on binary or ternary weights: the latent weights start at ``latent_scale ·
    w`` (smaller: the quantized weights can flip sooner)."""
    seed: int = 0
    """Seed of the adapters' initialisation and of the batch order."""
    calibration_images: int = 512
    """``affine``: training images on which the scale and offset are fitted."""
    scale_format: tuple[int, ...] = (1, 7)
    """``affine``: (integer, fractional) bits of the unsigned scale; ``()`` for float."""
    offset_format: tuple[int, ...] = (7, 1)
    """``affine``: (integer, fractional) bits of the signed offset, in units of the normalized
    sums (1 = one unit weight at full input); ``()`` for float."""
    adapter_format: tuple[int, ...] = ()
    """``lora``: (integer, fractional) bits of the signed entries of ``A`` and ``B``; ``()``
    (default) for float."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"compensation.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("rank", "epochs", "batch_size", "calibration_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"compensation.{name} must be a positive integer, got {value!r}")
        if isinstance(self.refresh_steps, bool) or not isinstance(self.refresh_steps, int) or self.refresh_steps < 0:
            raise ConfigError(f"compensation.refresh_steps must be an integer >= 0, got {self.refresh_steps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"compensation.seed must be an integer, got {self.seed!r}")
        for name in ("learning_rate", "latent_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ConfigError(f"compensation.{name} must be a positive number, got {value!r}")
        if self.latent_scale > 1:
            raise ConfigError(f"compensation.latent_scale must be in (0, 1], got {self.latent_scale!r}")
        for name in ("scale_format", "offset_format", "adapter_format"):
            value = tuple(getattr(self, name))
            if value and (len(value) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 24
                                                     for b in value) or sum(value) < 1):
                raise ConfigError(f"compensation.{name} must be [integer bits, fractional bits] (0..24 each, "
                                  f"at least one bit) or [] for float, got {list(value)!r}")
            object.__setattr__(self, name, value)

    @property
    def trains(self) -> bool:
        """Whether the method trains on the training images (``lora``, ``hwa``)."""
        return self.method in ("lora", "hwa")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-compatible plain data."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompensationConfig:
        """Build a configuration from plain data (unknown keys are an error)."""
        check_fields(cls, data)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def replace(self, **changes: Any) -> CompensationConfig:
        """A copy with ``changes``."""
        return replace(self, **changes)


def to_fixed(x, fmt: tuple[int, ...], signed: bool) -> np.ndarray:
    """``x`` rounded to the fixed-point format ``fmt = (integer bits, fractional bits)``.

    The step is ``2**-fractional``; an unsigned format spans ``[0, 2**integer - step]``, a
    signed one (a sign bit more) ``[-2**integer, 2**integer - step]``; values beyond saturate.
    An empty ``fmt`` returns ``x`` unchanged (float).
    """
    x = np.asarray(x, dtype=float)
    if not fmt:
        return x
    integer, fraction = fmt
    step = 2.0 ** -fraction
    high = 2.0 ** integer - step
    low = -(2.0 ** integer) if signed else 0.0
    return np.clip(np.round(x / step) * step, low, high)
