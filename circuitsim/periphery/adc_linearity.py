"""Static linearity tests of an :class:`~circuitsim.periphery.adc.ADC` (IEEE 1241 style).

Two measurements drive one column of a behavioural ADC with a known stimulus and
estimate its transition levels ``T_k`` (k = 1 .. N-1, ``N = 2**bits``) from the
codes alone, as a bench test of a real converter would:

- :func:`code_density_test`: the histogram test. A sine (default) or a ramp
  slightly overdriving the range is converted; with ``H_k`` the fraction of
  samples below code ``k``, a ramp over ``[a, b]`` gives ``T_k = a + (b-a) H_k``
  and a sine ``c + A sin(phi)`` gives ``T_k = c - A cos(pi H_k)`` (the inverse of
  the sine's arcsine distribution). ``coherent=True`` samples equally spaced
  phases (coherent sampling); ``False`` draws random phases.
- :func:`transfer_sweep_test`: a fine ramp (``points_per_code`` steps per LSB,
  each converted ``repeats`` times); ``T_k`` is where the fraction of conversions
  reading ``>= k`` crosses 1/2, linearly interpolated between ramp steps.

Both return a :class:`Linearity`: with the endpoint fit ``LSB' = (T_{N-1} -
T_1)/(N-2)``, ``dnl[k] = (T_{k+1} - T_k)/LSB' - 1`` for the inner codes 1 .. N-2
and ``inl[k] = (T_k - T_1)/LSB' - (k - 1)`` for codes 1 .. N-1; entries without a
definition (``dnl[0]``, ``dnl[N-1]``, ``inl[0]``) are NaN. Input noise averages out
of a ramp histogram (a locally uniform input density makes each code's count
equal to its width whatever the noise) and nearly so for a sine away from its
peaks; the transfer sweep needs ``repeats`` to average it.

Public API
----------
Linearity, linearity_from_transitions, code_density_test, transfer_sweep_test
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .adc import ADC


@dataclass(frozen=True, eq=False)
class Linearity:
    """Measured static linearity of one ADC column."""

    transitions: np.ndarray
    """Transition levels ``T_1 .. T_{N-1}`` in input units, shape ``(N-1,)``."""
    dnl: np.ndarray
    """Differential nonlinearity per code (LSB), shape ``(N,)``; NaN for end codes."""
    inl: np.ndarray
    """Integral nonlinearity per code (LSB, endpoint fit), shape ``(N,)``; NaN for code 0."""
    lsb: float
    """Mean code width of the endpoint fit, in input units."""
    method: str
    """How the transitions were found ("code_density/sine", "transfer_sweep", ...)."""

    @property
    def missing_codes(self) -> np.ndarray:
        """Inner codes that never occur (DNL = -1)."""
        return np.flatnonzero(self.dnl <= -1 + 1e-9)


def linearity_from_transitions(transitions: np.ndarray, method: str = "transitions") -> Linearity:
    """Compute endpoint-fit DNL and INL from transition levels.

    Parameters
    ----------
    transitions : array_like, shape (N-1,)
        Transition levels ``T_1 .. T_{N-1}``, e.g. ``adc.thresholds[c]`` for the
        true linearity of column ``c``.
    method : str
        Label stored in the result.
    """
    t = np.asarray(transitions, dtype=float)
    if t.ndim != 1 or t.size < 3:
        raise ConfigError("linearity needs >= 3 transition levels (an ADC of >= 2 bits)")
    n = t.size + 1
    lsb = (t[-1] - t[0]) / (n - 2)
    if not lsb > 0:
        raise ConfigError("first and last transition levels coincide; the ADC has no range")
    dnl = np.full(n, np.nan)
    inl = np.full(n, np.nan)
    dnl[1:-1] = np.diff(t) / lsb - 1
    inl[1:] = (t - t[0]) / lsb - np.arange(n - 1)
    return Linearity(transitions=t, dnl=dnl, inl=inl, lsb=float(lsb), method=method)


def _stimulus_range(adc: ADC, column: int, overdrive: float) -> tuple[float, float]:
    """Input interval covering the nominal range and this column's levels, plus margin."""
    cfg, th = adc.config, adc.thresholds[column]
    lo, hi = min(cfg.v_min, th[0] - cfg.lsb), max(cfg.v_max, th[-1] + cfg.lsb)
    pad = overdrive * (hi - lo)
    return lo - pad, hi + pad


def _check_adc(adc: ADC, column: int) -> None:
    if not isinstance(adc, ADC):
        raise ConfigError(f"expected an ADC, got {type(adc).__name__}")
    if adc.config.bits < 2:
        raise ConfigError("linearity tests need an ADC of at least 2 bits")
    if not 0 <= column < adc.n_columns:
        raise ConfigError(f"column {column} out of range 0..{adc.n_columns - 1}")


def code_density_test(adc: ADC, n_samples: int = 1 << 22, stimulus: str = "sine",
                      column: int = 0, overdrive: float = 0.02, coherent: bool = True,
                      seed: int = 0) -> Linearity:
    """Histogram (code-density) test of one ADC column.

    Parameters
    ----------
    adc : ADC
        Converter under test (its noise generator is used for its noise).
    n_samples : int
        Number of conversions; the DNL error per code falls as
        ``sqrt(2**bits / n_samples)``.
    stimulus : {"sine", "ramp"}
        Input waveform.
    column : int
        Column to characterise.
    overdrive : float
        Relative margin by which the stimulus exceeds the column's range (end codes
        must be hit).
    coherent : bool
        Equally spaced phases (True) or random phases drawn from ``seed`` (False).
    seed : int
        Seed of the random phases.

    Returns
    -------
    Linearity
    """
    _check_adc(adc, column)
    if stimulus not in ("sine", "ramp"):
        raise ConfigError(f"stimulus must be 'sine' or 'ramp', got {stimulus!r}")
    if n_samples < 16 * adc.config.n_codes:
        raise ConfigError(f"n_samples={n_samples} is too few; use at least "
                          f"{16 * adc.config.n_codes} (16 per code), ideally 10**4 per code")
    a, b = _stimulus_range(adc, column, overdrive)
    n = adc.config.n_codes
    counts = np.zeros(n, np.int64)
    rng = np.random.default_rng(seed)
    for start in range(0, n_samples, 1 << 20):  # chunks bound the memory
        m = min(1 << 20, n_samples - start)
        p = ((np.arange(start, start + m) + 0.5) / n_samples if coherent
             else rng.random(m))
        x = (a + (b - a) * p if stimulus == "ramp"
             else 0.5 * (a + b) + 0.5 * (b - a) * np.sin(2 * np.pi * p))
        counts += np.bincount(adc.convert(x, column=column).ravel(), minlength=n)
    if counts[0] == 0 or counts[-1] == 0:
        raise ConfigError("the stimulus does not reach both end codes; increase overdrive")
    h = np.cumsum(counts)[:-1] / n_samples  # fraction of samples below code k
    t = a + (b - a) * h if stimulus == "ramp" else 0.5 * (a + b) - 0.5 * (b - a) * np.cos(np.pi * h)
    return linearity_from_transitions(t, method=f"code_density/{stimulus}")


def transfer_sweep_test(adc: ADC, points_per_code: int = 64, repeats: int = 1,
                        column: int = 0, overdrive: float = 0.02) -> Linearity:
    """Transfer-sweep test: find each transition on a fine ramp.

    Parameters
    ----------
    adc : ADC
        Converter under test.
    points_per_code : int
        Ramp steps per ideal LSB; the resolution of a noiseless transition is
        half a step.
    repeats : int
        Conversions per ramp step (use many when the ADC is noisy).
    column : int
        Column to characterise.
    overdrive : float
        Relative margin by which the ramp exceeds the column's range.

    Returns
    -------
    Linearity
    """
    _check_adc(adc, column)
    if points_per_code < 1 or repeats < 1:
        raise ConfigError("points_per_code and repeats must be >= 1")
    a, b = _stimulus_range(adc, column, overdrive)
    step = adc.config.lsb / points_per_code
    x = a + step * np.arange(int(np.ceil((b - a) / step)) + 1)
    codes = adc.convert(np.broadcast_to(x, (repeats, x.size)), column=column)
    # code read by at least half the repeats: the (ceil(R/2))-th largest
    med = np.sort(codes, axis=0)[repeats - (repeats + 1) // 2]
    k = np.arange(1, adc.config.n_codes)
    j = np.searchsorted(np.maximum.accumulate(med), k, side="left")  # first step reading >= k
    if j[0] == 0 or j[-1] == x.size:
        raise ConfigError("the ramp does not cover every transition; increase overdrive")
    f1 = (codes[:, j] >= k).mean(axis=0)
    f0 = (codes[:, j - 1] >= k).mean(axis=0)
    t = x[j - 1] + step * (0.5 - f0) / (f1 - f0)
    return linearity_from_transitions(t, method="transfer_sweep")
