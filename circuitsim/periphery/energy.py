"""Energy per ADC conversion as a function of resolution.

An :class:`ADCEnergyTable` lists energy per conversion (J) at a few resolutions;
:meth:`ADCEnergyTable.energy_per_conversion` evaluates it at any resolution and
:func:`adc_energy` multiplies by a number of conversions.

Between and beyond the tabulated resolutions the energy is interpolated linearly
in ``log(energy)`` versus bits, i.e. by a constant factor per bit within each
segment; outside the table the nearest end segment's factor per bit is extended
(ISAAC default: x1.25 per bit below 4 bits, x1.18 per bit above 8 bits). Above
about 10 bits, where converters become thermal-noise limited (about x4 per bit),
this extrapolation is optimistic: supply a measured table for such resolutions.

Default (:data:`ISAAC_32NM`): the 32 nm SAR ADC of ISAAC (A. Shafiee et al.,
"ISAAC: A Convolutional Neural Network Accelerator with In-Situ Analog Arithmetic
in Crossbars", ISCA 2016), 1.67 pJ at 8 bits, and the same ADC scaled to 4 / 5 /
6 bits, 0.79 / 0.99 / 1.20 pJ (values from the ADC table of docs/reference.md).
Other published points for custom tables: BRAHMS two-step SAR, 40 nm, 8 bits,
0.29 pJ; FORMS, 32 nm, 4 bits, 0.23 pJ; Jia et al. (JSSC 2020), 65 nm, 8 bits,
3.56 pJ at 1.2 V and 1.79 pJ at 0.85 V.

Conversion time (:func:`adc_conversion_time`): ISAAC's 8-bit SAR converts at 1.28 GS/s
(0.78 ns per conversion; one ADC serves 128 columns within ISAAC's 100 ns crossbar read); a
SAR resolves one bit per comparator cycle, so other resolutions take ``bits / 8`` of that
(a scaling assumption, not a measurement).

Public API
----------
ADCEnergyTable, ISAAC_32NM, ISAAC_SAMPLE_RATE, adc_energy, adc_conversion_time, check_table, log_linear
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..configs import check_fields
from ..errors import ConfigError


def check_table(bits: Any, values: Any, what: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``(bits, values)`` of a table by resolution as tuples, or one line saying what is wrong.

    ``bits`` must be at least two integers >= 1, strictly increasing; ``values`` as many finite
    numbers > 0 (``what`` names them in the message).
    """
    try:
        b = tuple(int(x) for x in bits)
        v = tuple(float(x) for x in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: bits and values must be sequences of numbers") from None
    if b != tuple(bits):
        raise ConfigError(f"{what}: bits must be integers, got {bits!r}")
    if len(b) < 2 or len(b) != len(v):
        raise ConfigError(f"{what}: a table needs at least two entries and as many values as bits, "
                          f"got {len(b)} bits, {len(v)} values")
    if any(b1 >= b2 for b1, b2 in zip(b, b[1:])) or b[0] < 1:
        raise ConfigError(f"{what}: bits must be >= 1 and strictly increasing, got {b}")
    if not all(np.isfinite(x) and x > 0 for x in v):
        raise ConfigError(f"{what}: values must be finite and > 0, got {v}")
    return b, v


def log_linear(table_bits: tuple[int, ...], values: tuple[float, ...], bits: ArrayLike) -> float | np.ndarray:
    """A table by resolution evaluated at ``bits`` (integer(s) 1 .. 16): log-linear between its
    entries, the end segments' factor per bit beyond them (see the module docstring)."""
    b = np.asarray(bits)
    if (b.dtype.kind not in "iu" and not (b.dtype.kind == "f" and np.all(b == np.round(b)))
            or np.any(b < 1) or np.any(b > 16)):
        raise ConfigError(f"bits must be integers from 1 to 16, got {bits!r}")
    tb = np.asarray(table_bits, float)
    logs = np.log(np.asarray(values))
    seg = np.clip(np.searchsorted(tb, b, side="right") - 1, 0, len(tb) - 2)
    slope = (logs[seg + 1] - logs[seg]) / (tb[seg + 1] - tb[seg])
    out = np.exp(logs[seg] + slope * (b - tb[seg]))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class ADCEnergyTable:
    """Energy per conversion at a few resolutions, with its source."""

    bits: tuple[int, ...] = (4, 5, 6, 8)
    """Tabulated resolutions (bits), strictly increasing, at least two."""
    energy_j: tuple[float, ...] = (0.79e-12, 0.99e-12, 1.20e-12, 1.67e-12)
    """Energy per conversion (J) at each resolution, > 0."""
    source: str = "ISAAC (Shafiee et al., ISCA 2016), 32 nm SAR ADC; 4-6 bits scaled"
    """Where the values come from."""

    def __post_init__(self):
        bits, energy = check_table(self.bits, self.energy_j, "ADCEnergyTable energy_j (joules)")
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "energy_j", energy)

    def energy_per_conversion(self, bits: ArrayLike) -> float | np.ndarray:
        """Energy (J) of one conversion at ``bits`` (integer(s) 1 .. 16).

        Log-linear interpolation between table entries, extrapolation with the end
        segments' factor per bit (see the module docstring).
        """
        return log_linear(self.bits, self.energy_j, bits)

    def to_dict(self) -> dict[str, Any]:
        """Return the table as plain data (TOML/JSON compatible)."""
        return {"bits": list(self.bits), "energy_j": list(self.energy_j), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ADCEnergyTable:
        """Build a table from :meth:`to_dict` output (unknown keys are an error)."""
        check_fields(cls, data)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


ISAAC_32NM = ADCEnergyTable()
"""ISAAC 32 nm SAR ADC: 4/5/6/8 bits at 0.79/0.99/1.20/1.67 pJ per conversion."""


def adc_energy(bits: ArrayLike, conversions: ArrayLike = 1,
               table: ADCEnergyTable = ISAAC_32NM) -> float | np.ndarray:
    """Energy (J) of ``conversions`` conversions at ``bits`` resolution.

    Parameters
    ----------
    bits : int or array_like of int
        ADC resolution, 1 .. 16.
    conversions : float or array_like
        Number of conversions, >= 0 (broadcast against ``bits``).
    table : ADCEnergyTable
        Energy per conversion by resolution (default :data:`ISAAC_32NM`).

    Returns
    -------
    float or numpy.ndarray
        Energy in joules.
    """
    n = np.asarray(conversions, dtype=float)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ConfigError(f"conversions must be finite and >= 0, got {conversions!r}")
    out = np.asarray(table.energy_per_conversion(bits)) * n
    return float(out) if out.ndim == 0 else out


ISAAC_SAMPLE_RATE = 1.28e9
"""Conversions per second of ISAAC's 8-bit SAR ADC (Shafiee et al., ISCA 2016)."""


def adc_conversion_time(bits: int) -> float:
    """Seconds per conversion of a ``bits``-bit SAR ADC: ISAAC's 8-bit time scaled by ``bits / 8``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ConfigError(f"ADC bits must be a positive integer, got {bits!r}")
    return bits / 8 / ISAAC_SAMPLE_RATE
