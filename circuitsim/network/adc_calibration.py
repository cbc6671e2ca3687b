"""ADCs after every tile: their input ranges set on calibration images.

Every tile output is converted before the partial sums of the horizontal partitions are added.
The ADC's input is the tile's normalized differential sum (1 = one unit weight at full input);
its range is calibrated per tile from the partial sums of a calibration batch: clipped at the
bits' MSE-optimal multiple of their RMS, mid-tread from 2 bits on (:func:`adc_range`). Every
tile's ADC is its own instance of the ADC's statistics: its mismatch and noise are drawn from
``SeedSequence(adc.seed, spawn_key=(crossbar layer, a, c))``, independent of every other tile's
and every other seed's.

Public API
----------
CLIP_SIGMAS, adc_range, calibrated_blocks, Crossbar
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from ..periphery.adc import ADC, ADCConfig
from .topologies import Block, augment



class Crossbar(Protocol):
    """What calibration reads of a crossbar layer (:class:`~circuitsim.network.mapped.CrossbarLayer`)."""

    @property
    def index(self) -> int: ...

    @property
    def blocks(self) -> tuple[Block, ...]: ...

    @property
    def scale(self) -> float: ...

    @property
    def bias(self) -> bool: ...

    @property
    def n_out(self) -> int: ...


#: MSE-optimal clipping of a Gaussian signal, in standard deviations, by ADC bits
#: (Banner et al., "Post-training 4-bit quantization", NeurIPS 2019; 1 bit: 2 E|x| / sigma)
CLIP_SIGMAS = {1: 1.6, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.94, 6: 3.29, 7: 3.61, 8: 3.92}


def adc_range(partial_sums: np.ndarray, bits: int) -> tuple[float, float]:
    """Input range for a tile's ADC from calibration partial sums.

    The half-range ``a`` clips at ``CLIP_SIGMAS[bits]`` standard deviations (RMS) of
    the partial sums, or at their largest magnitude when that is smaller (or beyond 8
    bits). One bit is a sign decision over ``±a``; from 2 bits on the range is
    mid-tread and symmetric: codes centred on ``-a, ..., 0, ..., +a`` (the top code
    lies beyond ``+a`` and is reached only by clipping).
    """
    peak = float(np.abs(partial_sums).max(initial=0.0))
    rms = float(np.sqrt(np.mean(np.square(partial_sums)))) if partial_sums.size else 0.0
    half = min(peak, CLIP_SIGMAS[bits] * rms) if bits in CLIP_SIGMAS else peak
    half = half or 1e-12
    if bits == 1:
        return -half, half
    lsb = half / ((1 << (bits - 1)) - 1)
    return -half - 0.5 * lsb, half + 1.5 * lsb


def calibrated_blocks(forward: Callable[[ArrayLike, Callable[[int, np.ndarray], np.ndarray]], object],
                      crossbars: Sequence[Crossbar], config: ADCConfig, x: ArrayLike) -> list[tuple[Block, ...]]:
    """Every crossbar layer's tiles, each with an ADC of ``config`` whose range is set by its
    partial sums on the batch ``x``: ``forward(x, mac)`` runs the network (e.g.
    :meth:`Network.forward <circuitsim.network.network.Network.forward>`) with ``mac``, the
    tiles' noiseless analog sums, called once per crossbar layer."""
    by_index = {c.index: c for c in crossbars}
    number = {c.index: n for n, c in enumerate(crossbars)}
    done: dict[int, tuple[Block, ...]] = {}

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        layer = by_index[k]
        rows_aug = augment(rows, layer.bias)
        blocks, sums = [], np.zeros((len(rows), layer.n_out))
        for block in layer.blocks:
            part = rows_aug[:, block.rows] @ block.weights
            v_min, v_max = adc_range(part, config.bits)
            adc = ADC(config.replace(v_min=v_min, v_max=v_max), block.outs.stop - block.outs.start,
                      instance=(number[k], *block.tile))
            blocks.append(dataclasses.replace(block, adc=adc))
            sums[:, block.outs] += part
        done[k] = tuple(blocks)
        return sums if layer.scale == 1.0 else layer.scale * sums

    forward(x, mac)
    return [done[c.index] for c in crossbars]
