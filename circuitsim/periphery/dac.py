"""The input stage of a crossbar layer: how activations become word-line voltages.

A :class:`DACConfig` describes it (flat, frozen, TOML ``[dac]``);
:func:`~circuitsim.network.adc_calibration.calibrated_dac` sets its range on a calibration
batch and returns the layer's :class:`InputDAC`, which gives the evaluations (cycles) the
tiles see.

Kinds
-----
``"none"`` (the default)
    No converter: an activation ``h`` drives its word line at ``h · v_read`` and the bias row
    at ``v_read``, as circuitsim always did. A word line above the device's allowed read
    voltage (``device.v_read_max``) is refused, not applied (:func:`check_word_lines`).
``"amplitude"``
    A ``bits``-bit DAC: activations are clipped to the calibrated full scale ``a`` and rounded
    to ``2**bits - 1`` steps (unsigned; ``2**(bits-1) - 1`` steps each way when the calibration
    batch has negative activations), driven at ``code / codes · v_max`` volts. One evaluation.
``"bit-serial"``
    The same codes, one bit per cycle: cycle ``j`` drives every word line whose code has bit
    ``j`` set at ``v_max`` (two's complement for signed codes: the top bit's weight is
    negative), the cycles' ADC outputs are shift-added digitally (``Σ 2**j · step · out_j``).
    ``bits`` cycles, one more for the bias row when the layer has one.

The full scale ``a`` is calibrated like the ADC's range (:func:`~circuitsim.network.adc_calibration.dac_full_scale`):
the activations' largest magnitude, or ``CLIP_SIGMAS[bits]`` times their RMS when smaller,
and at least 1 (one activation unit): the bias row stands for an input of 1 and is driven at
``v_max / a`` with an amplitude DAC, so it never exceeds ``v_max``. Activations beyond the full
scale are clipped and counted (:attr:`InputDAC.clipped`).

Every evaluation is linear in the word-line voltages, so the tiles' normalized sums of the
codes (in activation units) are what the ADC converts; the physical voltages set the
crossbar energy (:meth:`Cycle.volts`). Without ADCs the bit-serial cycles' analog sums add up
to the amplitude DAC's (the same codes), so that path evaluates the codes once; read noise is
then drawn once per row, not per cycle.

Public API
----------
DAC_KINDS, DACConfig, InputDAC, Cycle, check_word_lines, check_dac
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from ..errors import ConfigError

DACKind = Literal["none", "amplitude", "bit-serial"]
DAC_KINDS: tuple[str, ...] = get_args(DACKind)


@dataclass(frozen=True)
class DACConfig:
    """The input stage of every crossbar layer (SI units)."""

    kind: DACKind = "none"
    """``"none"`` (activations drive ``h · v_read``), ``"amplitude"`` or ``"bit-serial"``."""
    bits: int = 8
    """Resolution in bits, 1 .. 16 (signed activations need 2 or more)."""
    v_max: float | None = None
    """Full-scale word-line voltage, volts (at most the device's ``v_read_max``); None: ``v_read``."""

    def __post_init__(self):
        if self.kind not in DAC_KINDS:
            raise ConfigError(f"[dac] kind must be one of {', '.join(DAC_KINDS)}, got {self.kind!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 16:
            raise ConfigError(f"[dac] bits must be an integer 1 .. 16, got {self.bits!r}")
        if self.v_max is not None and not (0 < self.v_max < float("inf")):
            raise ConfigError(f"[dac] v_max must be a positive number of volts, got {self.v_max!r}")

    @classmethod
    def preset(cls, name: str) -> DACConfig:
        """A named input stage: ``"none"``, ``"amplitude-8"`` or ``"bit-serial-8"`` (8 bits, ``v_max = v_read``)."""
        presets = {"none": cls(), "amplitude-8": cls("amplitude", 8), "bit-serial-8": cls("bit-serial", 8)}
        try:
            return presets[name]
        except KeyError:
            raise ConfigError(f"unknown DAC preset {name!r}; choose one of {', '.join(presets)}") from None

    def full_scale_volts(self, v_read: float) -> float:
        """The full-scale word-line voltage: ``v_max``, or ``v_read`` when not given."""
        return v_read if self.v_max is None else float(self.v_max)


def check_word_lines(peak: float, v_read: float, v_allowed: float | None, layer: int) -> None:
    """Refuse (one line) activations whose word lines ``peak · v_read`` exceed ``v_allowed`` volts."""
    if v_allowed is not None and peak * v_read > v_allowed * (1 + 1e-12):
        raise ConfigError(f"network layer {layer} (counted from 0): an activation of {peak:.4g} drives its "
                          f"word line at {peak * v_read:.4g} V, above the device's allowed read voltage {v_allowed:g} V; "
                          "add a [dac] (kind = \"amplitude\" or \"bit-serial\") or lower circuit.v_read")


@dataclass(frozen=True, eq=False)
class Cycle:
    """One evaluation of a layer's tiles: its inputs, their voltage and its digital weight."""

    inputs: np.ndarray
    """Inputs in activation units, ``n × rows`` (the bias row's column included when the layer has one)."""
    volts_per_unit: float
    """Word-line volts per activation unit."""
    weight: float
    """Digital weight of the cycle's converted sums in the shift-add."""

    def volts(self, rows: slice) -> np.ndarray:
        """The word-line voltages of the rows ``rows``."""
        return self.volts_per_unit * self.inputs[:, rows]


@dataclass(frozen=True, eq=False)
class InputDAC:
    """A crossbar layer's calibrated input stage."""

    config: DACConfig
    """Its kind, bits and full-scale voltage."""
    full_scale: float
    """Activation of the top code (activation units, >= 1)."""
    signed: bool
    """Whether the codes are signed (the calibration batch had negative activations)."""
    v_max: float
    """Full-scale word-line voltage, volts."""
    counts: list[int] = field(default_factory=lambda: [0, 0])
    """Activations clipped and activations converted since the last :meth:`reset`."""

    @property
    def codes(self) -> int:
        """Largest code magnitude: ``2**bits - 1`` (unsigned) or ``2**(bits-1) - 1`` (signed)."""
        return (1 << (self.config.bits - 1)) - 1 if self.signed else (1 << self.config.bits) - 1

    @property
    def step(self) -> float:
        """Activation of one code step."""
        return self.full_scale / self.codes

    @property
    def clipped(self) -> float:
        """Fraction of the activations converted since the last reset that were clipped (0 when none)."""
        return self.counts[0] / self.counts[1] if self.counts[1] else 0.0

    def reset(self) -> None:
        """Start counting clipped activations anew."""
        self.counts[:] = [0, 0]

    def code(self, h: np.ndarray) -> np.ndarray:
        """The integer codes of activations ``h`` (clipped ones counted)."""
        low = -self.codes if self.signed else 0
        c = np.rint(h / self.step)
        out = np.clip(c, low, self.codes)
        self.counts[0] += int(np.count_nonzero(out != c))
        self.counts[1] += int(h.size)
        return out

    def quantize(self, h: np.ndarray) -> np.ndarray:
        """Activations as the DAC drives them (activation units)."""
        return self.code(h) * self.step

    def cycles(self, h: np.ndarray, bias: bool) -> list[Cycle]:
        """The evaluations of rows ``h`` (module notes); the bias input is the last column when ``bias``."""
        n = len(h)
        if self.config.kind == "amplitude":
            q = self.quantize(h)
            inputs = np.hstack([q, np.ones((n, 1))]) if bias else q
            return [Cycle(inputs, self.v_max / self.full_scale, 1.0)]
        codes = self.code(h).astype(np.int64)
        bits = self.config.bits
        unsigned = np.where(codes < 0, codes + (1 << bits), codes)  # two's complement
        out = []
        for j in range(bits):
            weight = -(1 << j) if self.signed and j == bits - 1 else (1 << j)
            plane = ((unsigned >> j) & 1).astype(float)
            inputs = np.hstack([plane, np.zeros((n, 1))]) if bias else plane
            out.append(Cycle(inputs, self.v_max, weight * self.step))
        if bias:
            out.append(Cycle(np.hstack([np.zeros_like(h, dtype=float), np.ones((n, 1))]), self.v_max, 1.0))
        return out

    def n_cycles(self, bias: bool) -> int:
        """Evaluations of the tiles per set of rows (read pulses and conversions)."""
        return self.config.bits + int(bias) if self.config.kind == "bit-serial" else 1


def check_dac(config: DACConfig, v_read: float, v_allowed: float | None) -> None:
    """Refuse (one line) a full-scale voltage above the device's allowed read voltage."""
    volts = config.full_scale_volts(v_read)
    if config.kind != "none" and v_allowed is not None and volts > v_allowed:
        what = f"[dac] v_max = {volts:g} V" if config.v_max is not None else f"[dac] v_max (= v_read = {volts:g} V)"
        raise ConfigError(f"{what} is above the device's allowed read voltage {v_allowed:g} V; "
                          f"set [dac] v_max <= {v_allowed:g}")
