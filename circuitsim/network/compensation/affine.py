"""Per-column affine correction of every layer's sums, in fixed point (Ferro et al.'s NMPU).

After the analog array (and its ADCs: partial sums of the horizontal partitions added
digitally), a near-memory unit maps each output column's sum ``x`` to ``y = s·x + o``
before the gain and the neuron. The scale ``s`` is unsigned with 1 integer and 7 fractional
bits, the offset ``o`` signed with 7 integer and 1 fractional bit (Ferro et al.; see the
docs/reference.md), both configurable (:class:`~.config.CompensationConfig`), in units
of the normalized sums (1 = one unit weight at full input: a binary network's ideal sums
are integers).

Calibration is least squares, layer after layer, on calibration images: the target of
layer ``k`` is the *digital* network's pre-activation on those images, the input the
hardware's sums of layer ``k`` when the earlier layers are already corrected. The float
solution is rounded to the formats (the offset refitted for the rounded scale, then
rounded); a column whose rounded pair fits worse than leaving it alone (``s = 1, o = 0``,
both exact in the default formats) is left alone, so the correction never fits the
calibration set worse than no correction.

Public API
----------
fit_affine, affine_overhead
"""

from __future__ import annotations

import numpy as np

from ..mapped import MappedNetwork
from ..backprop import forward_trace
from ..mlp import MLP
from ..network import Network
from .config import CompensationConfig, to_fixed


def _fit_column_pairs(x: np.ndarray, t: np.ndarray, config: CompensationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Scale and offset per column minimizing ``|s·x + o - t|²``, rounded to the formats."""
    mean_x, mean_t = x.mean(axis=0), t.mean(axis=0)
    var = ((x - mean_x) ** 2).mean(axis=0)
    cov = ((x - mean_x) * (t - mean_t)).mean(axis=0)
    scale = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 1.0)
    scale = to_fixed(scale, config.scale_format, signed=False)
    offset = to_fixed(mean_t - scale * mean_x, config.offset_format, signed=True)
    fitted = ((scale * x + offset - t) ** 2).mean(axis=0)
    alone = ((x - t) ** 2).mean(axis=0)
    keep = fitted <= alone
    return np.where(keep, scale, 1.0), np.where(keep, offset, 0.0)


def fit_affine(mapped: MappedNetwork, digital: Network | MLP, x_calibration, config: CompensationConfig,
               use_adc: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(scale, offset)`` per crossbar layer, fitted on ``x_calibration`` (see the module notes).

    Parameters
    ----------
    mapped : MappedNetwork
        The network as its tiles (and ADCs) compute it.
    digital : Network or MLP
        The trained network whose crossbar layers' sums are the targets (divided by the
        layers' weight scales, as the tiles' normalized sums are).
    x_calibration : array_like
        Calibration images (training images, never test images).
    config : CompensationConfig
        Fixed-point formats of the scale and offset.
    use_adc : bool
        Calibrate the sums after the tiles' ADCs (when the circuit has them).
    """
    x = np.asarray(x_calibration, dtype=float)
    digital = Network.from_mlp(digital) if isinstance(digital, MLP) else digital
    targets = forward_trace(digital, x).sums
    number = {c.index: n for n, c in enumerate(mapped.crossbars)}
    pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        n = number[k]
        layer = mapped.crossbars[n]
        sums = mapped.layer_sums(n, rows, use_adc)
        target = targets[k] if layer.scale == 1.0 else targets[k] / layer.scale
        scale, offset = _fit_column_pairs(sums, target, config)
        pairs[n] = (scale, offset)
        corrected = scale * sums + offset
        return corrected if layer.scale == 1.0 else layer.scale * corrected

    mapped.network.forward(x, mac)
    return [pairs[n] for n in range(len(mapped.crossbars))]


def affine_overhead(mapped: MappedNetwork) -> tuple[int, int]:
    """Extra parameters (a scale and an offset per output column) and multiply-accumulates
    per inference (one ``s·x + o`` per output column and position) of the correction."""
    outputs = sum(c.n_out for c in mapped.crossbars)
    return 2 * outputs, sum(c.n_out * c.positions for c in mapped.crossbars)
