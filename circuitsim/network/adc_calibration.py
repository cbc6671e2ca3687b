"""ADCs after every tile and DACs before every layer: their ranges set on calibration images.

Every tile output is converted before the partial sums of the horizontal partitions are added.
The ADC's input is the tile's normalized differential sum (1 = one unit weight at full input);
its range is calibrated per tile from the partial sums of a calibration batch: clipped at the
bits' MSE-optimal multiple of their RMS, mid-tread from 2 bits on (:func:`adc_range`). Every
tile's ADC is its own instance of the ADC's statistics: its mismatch and noise are drawn from
``SeedSequence(adc.seed, spawn_key=(crossbar layer, a, c))``, independent of every other tile's
and every other seed's.

Public API
----------
CLIP_SIGMAS, adc_range, dac_full_scale, calibrated_dac, calibrated, convert, Crossbar
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from ..periphery.adc import ADC, ADCConfig
from ..periphery.dac import Cycle, DACConfig, InputDAC
from .network import Network
from .topologies import Block



class Crossbar(Protocol):
    """What calibration reads of a crossbar layer (:class:`~circuitsim.network.crossbar_layer.CrossbarLayer`)."""

    @property
    def index(self) -> int: ...

    @property
    def blocks(self) -> tuple[Block, ...]: ...

    @property
    def scale(self) -> float: ...

    @property
    def n_columns(self) -> int: ...

    @property
    def dac(self) -> InputDAC | None: ...

    def cycles(self, h: np.ndarray) -> list[Cycle]: ...

    def combine(self, sums: np.ndarray) -> np.ndarray: ...


C = TypeVar("C", bound=Crossbar)

#: MSE-optimal clipping of a Gaussian signal, in standard deviations, by ADC bits
#: (Banner et al., "Post-training 4-bit quantization", NeurIPS 2019; 1 bit: 2 E|x| / sigma)
CLIP_SIGMAS = {1: 1.6, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.94, 6: 3.29, 7: 3.61, 8: 3.92}


def adc_range(partial_sums: np.ndarray, bits: int, unipolar: bool = False) -> tuple[float, float]:
    """Input range for a tile's ADC from calibration partial sums.

    The half-range ``a`` clips at ``CLIP_SIGMAS[bits]`` standard deviations (RMS) of
    the partial sums, or at their largest magnitude when that is smaller (or beyond 8
    bits). One bit is a sign decision over ``±a``; from 2 bits on the range is
    mid-tread and symmetric: codes centred on ``-a, ..., 0, ..., +a`` (the top code
    lies beyond ``+a`` and is reached only by clipping). ``unipolar`` (columns read on
    their own, the offset scheme's) with no negative partial sum: codes centred on
    ``0, ..., a`` (``a`` as above, the RMS taken about 0).
    """
    peak = float(np.abs(partial_sums).max(initial=0.0))
    rms = float(np.sqrt(np.mean(np.square(partial_sums)))) if partial_sums.size else 0.0
    half = min(peak, CLIP_SIGMAS[bits] * rms) if bits in CLIP_SIGMAS else peak
    half = half or 1e-12
    if unipolar and bits > 1 and not np.any(partial_sums < 0):
        lsb = half / ((1 << bits) - 1)
        return -0.5 * lsb, half + 0.5 * lsb
    if bits == 1:
        return -half, half
    lsb = half / ((1 << (bits - 1)) - 1)
    return -half - 0.5 * lsb, half + 1.5 * lsb


def dac_full_scale(h: np.ndarray, bits: int) -> float:
    """Full scale (activation units) of a DAC for the calibration activations ``h``: their
    largest magnitude, or ``CLIP_SIGMAS[bits]`` times their RMS when smaller (the ADC's rule,
    :func:`adc_range`), and at least 1 (:mod:`circuitsim.periphery.dac`)."""
    peak = float(np.abs(h).max(initial=0.0))
    rms = float(np.sqrt(np.mean(np.square(h)))) if h.size else 0.0
    full = min(peak, CLIP_SIGMAS[bits] * rms) if bits in CLIP_SIGMAS else peak
    return max(full, 1.0)


def calibrated_dac(config: DACConfig, h: np.ndarray, v_read: float) -> InputDAC:
    """The input stage ``config`` of a layer whose calibration activations are ``h``: signed
    codes when ``h`` has negative values, its full scale by :func:`dac_full_scale`."""
    signed = bool(np.any(h < 0))
    if signed and config.bits < 2:
        raise ConfigError("a 1-bit [dac] cannot drive negative activations (a layer after tanh or a signed "
                          "input); use bits >= 2")
    return InputDAC(config, dac_full_scale(h, config.bits), signed, config.full_scale_volts(v_read))


def convert(adc: ADC, sums: np.ndarray) -> np.ndarray:
    """Column sums through a tile's ADCs, ``adc.config.columns_per_adc`` columns sharing one
    converter (its mismatch), converted one after the other."""
    share = adc.config.columns_per_adc
    if share == 1:
        return adc.quantize(sums)
    n, cols = sums.shape
    padded = np.zeros((n, adc.n_columns * share))
    padded[:, :cols] = sums
    shared = padded.reshape(n, adc.n_columns, share).transpose(0, 2, 1).reshape(n * share, adc.n_columns)
    out = adc.quantize(shared).reshape(n, share, adc.n_columns).transpose(0, 2, 1).reshape(n, -1)
    return out[:, :cols]


def calibrated(net: Network, crossbars: Sequence[C], adc: ADCConfig | None, dac: DACConfig,
               v_read: float, x: ArrayLike,
               forward: Callable[[ArrayLike, Callable[[int, np.ndarray], np.ndarray]], object] | None = None
               ) -> list[C]:
    """Every crossbar layer with its input stage ``dac`` (its full scale set by the layer's
    activations on the batch ``x``) and every tile with an ADC of ``adc`` whose range is set by
    its partial sums (every evaluation's); the network run on the tiles' noiseless analog sums
    by ``forward(x, mac)`` (default :meth:`net.forward <circuitsim.network.network.Network.forward>`;
    a spiking network's pass calls ``mac`` once per layer and time step)."""
    number = {c.index: n for n, c in enumerate(crossbars)}
    by_index = {c.index: c for c in crossbars}
    done: dict[int, C] = {}

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        layer = by_index[k]
        if dac.kind != "none":
            layer = dataclasses.replace(layer, dac=calibrated_dac(dac, rows, v_read))  # type: ignore[type-var]
        cycles = layer.cycles(rows)
        blocks, sums = [], np.zeros((len(rows), layer.n_columns))
        for block in layer.blocks:
            parts = [block.partial_sums(cycle.inputs[:, block.rows]) for cycle in cycles]
            if adc is not None:
                v_min, v_max = adc_range(np.concatenate(parts), adc.bits, unipolar=block.reference is not None)
                block = dataclasses.replace(block, adc=ADC(adc.replace(v_min=v_min, v_max=v_max),
                                                           -(-block.n_columns // adc.columns_per_adc),
                                                           instance=(number[k], *block.tile)))
            blocks.append(block)
            for cycle, part in zip(cycles, map(block.subtract_reference, parts)):
                sums[:, block.outs] += part if cycle.weight == 1.0 else cycle.weight * part
        if layer.dac is not None:
            layer.dac.reset()
        done[k] = dataclasses.replace(layer, blocks=tuple(blocks))  # type: ignore[type-var]
        out = layer.combine(sums)
        return out if layer.scale == 1.0 else layer.scale * out

    (net.forward if forward is None else forward)(x, mac)
    return [done[c.index] for c in crossbars]
