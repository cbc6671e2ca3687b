"""One crossbar layer on its tiles: what its sums, cycles and energy are.

A :class:`CrossbarLayer` holds a mapped Dense or Conv2d layer's tiles
(:class:`~circuitsim.network.topologies.Block`), its effective weights, its read-noise law and
its input stage; :mod:`circuitsim.network.mapped` builds it and runs the network through it
(the module notes there say what a crossbar layer computes).

Public API
----------
CrossbarLayer, energy_summary
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..periphery.dac import Cycle, InputDAC, check_word_lines
from ..periphery.costs import CostTable, shift_add_units
from ..periphery.energy import adc_energy
from ..tile.noise_law import NoiseLaw
from .adc_calibration import convert
from .circuit_config import CircuitConfig
from .topologies import Block, augment, combine_slices


@dataclass(frozen=True, eq=False)
class CrossbarLayer:
    """One Dense or Conv2d layer on its tiles."""

    index: int
    """Position of the layer in the network."""
    blocks: tuple[Block, ...]
    """Its tiles."""
    weights: np.ndarray
    """Effective weights of the layer, ``rows × n_out`` (the bias row last), as the tiles compute them."""
    scale: float
    """Weight scale ``s``: the tiles hold ``W / s``; their sums are multiplied by ``s``."""
    bias: bool
    """Whether the last row is the bias row."""
    positions: int
    """Evaluations per image (output positions of a convolution, 1 for a dense layer)."""
    read_noise: NoiseLaw | None = None
    """The law of the layer's read noise (its tiles' side by side), or None."""
    read_rng: np.random.Generator | None = None
    """The generator of the layer's read noise (advances with every draw), or None."""
    dac: InputDAC | None = None
    """The layer's calibrated input stage (:mod:`circuitsim.periphery.dac`), or None: ``h · v_read``."""
    factors: np.ndarray | None = None
    """Sliced weights: the shift-add factor of each slice (the blocks' outputs are slice
    columns ``o · S + k``), else None."""
    columns: np.ndarray | None = None
    """Sliced weights: the effective weights per slice column, ``rows × n_out S``, else None."""
    v_read: float = 0.8
    """Word-line volts per activation unit without a DAC."""
    v_allowed: float | None = None
    """The device's allowed read voltage (volts), or None."""

    @property
    def n_out(self) -> int:
        """Outputs (columns of differential pairs)."""
        return int(self.weights.shape[1])

    @property
    def n_columns(self) -> int:
        """Columns the blocks' outputs index: slice columns when sliced, else the outputs."""
        return self.n_out if self.columns is None else int(self.columns.shape[1])

    def combine(self, sums: np.ndarray) -> np.ndarray:
        """Sums per column shift-added into sums per output (unchanged without slices)."""
        return sums if self.factors is None else combine_slices(sums, self.factors)

    def inputs(self, h: np.ndarray) -> np.ndarray:
        """Rows ``h`` as the word lines carry them (through the DAC; without one, refused above
        the device's allowed read voltage)."""
        if self.dac is not None:
            return self.dac.quantize(h)
        if self.v_allowed is not None:
            check_word_lines(max(float(np.abs(h).max(initial=0.0)), float(self.bias)), self.v_read,
                             self.v_allowed, self.index)
        return h

    def cycles(self, h: np.ndarray) -> list[Cycle]:
        """The evaluations of the tiles for rows ``h`` (one, or a bit-serial DAC's cycles)."""
        if self.dac is None:
            return [Cycle(augment(self.inputs(h), self.bias), self.v_read, 1.0)]
        return self.dac.cycles(h, self.bias)

    @property
    def n_cycles(self) -> int:
        """Evaluations of the tiles per row (read pulses, conversions per column)."""
        return 1 if self.dac is None else self.dac.n_cycles(self.bias)

    def sums(self, h: np.ndarray, use_adc: bool = True, matrix: np.ndarray | None = None) -> np.ndarray:
        """The layer's normalized sums for its rows ``h`` (without the bias input; before ``s``).

        Every tile's partial sums of ``matrix`` (default: the effective weights, the bias row
        last) with its read noise, through its ADC when ``use_adc`` (every evaluation of a
        bit-serial input converted and shift-added), added over the horizontal partitions and
        the slices shift-added; without ADCs one product with the layer's read-noise law.
        """
        if matrix is not None and self.factors is not None:
            raise ConfigError("compensation with another weight matrix does not take sliced weights yet; "
                              "remove [mapping] weight_bits or the compensation")
        bias, n = self.bias, h.shape[1]
        exact = matrix is None and self.exact
        if not (use_adc and self.blocks[0].adc is not None) and not exact:
            h = self.inputs(h)
            m = (self.weights if self.columns is None else self.columns) if matrix is None else matrix
            weights, offset = (m[:n], m[n]) if bias else (m, 0.0)
            offset = offset + self.offsets
            if self.read_noise is None:
                return self.combine(np.asarray(h @ weights + offset))
            law, sums = self.read_noise, np.empty((len(h), weights.shape[1]))
            for part in law.passes(len(h)):  # each pass's inputs are read from memory once
                np.matmul(h[part], weights, out=sums[part])
                sums[part] += offset
                law.add_noise(sums[part], h[part], self._rng(), bias)
            return self.combine(sums)
        cycles = self.cycles(h)
        sums = np.zeros((len(h), self.n_columns))
        for block in self.blocks:
            for cycle in cycles:
                v = cycle.inputs[:, block.rows]
                part = block.partial_sums(v, None if matrix is None else matrix[block.rows, block.outs])
                if block.read_noise is not None:
                    block.read_noise.add_noise(part, v, self._rng())
                out = block.subtract_reference(convert(block.adc, part) if block.adc is not None and use_adc else part)
                sums[:, block.outs] += out if cycle.weight == 1.0 else cycle.weight * out
        return self.combine(sums)

    @property
    def exact(self) -> bool:
        """Whether the layer's tiles have nonlinear cells, solved exactly per evaluation."""
        return any(b.exact is not None for b in self.blocks)

    def linear_at_read(self) -> "CrossbarLayer":
        """The layer as a linear simulator sees it: every cell its conductance at the read
        voltage (the tiles' ``T``), no exact solve."""
        return dataclasses.replace(self, blocks=tuple(dataclasses.replace(b, exact=None) for b in self.blocks))

    @property
    def offsets(self) -> np.ndarray | float:
        """The tiles' constant normalized sums added over the partitions, ``(n_columns,)``, or 0."""
        blocks = [(b.outs, b.offset) for b in self.blocks if b.offset is not None]
        if not blocks:
            return 0.0
        total = np.zeros(self.n_columns)
        for outs, offset in blocks:
            total[outs] += offset
        return total

    def _rng(self) -> np.random.Generator:
        if self.read_rng is None:
            raise ConfigError("a crossbar layer with read noise needs its generator (read_rng)")
        return self.read_rng

    def energy(self, h: np.ndarray, v_read: float, n_images: int) -> float:
        """Crossbar energy per image (J) of evaluating rows ``h`` (every evaluation's word lines)."""
        cycles = self.cycles(h) if self.dac is not None else [Cycle(augment(h, self.bias), v_read, 1.0)]
        total = 0.0
        for block in self.blocks:
            for cycle in cycles:
                volts = cycle.volts(block.rows)
                if block.exact is not None:  # the supply energy at the exact solution
                    total += block.exact.energy(volts) / n_images
                else:
                    total += float(np.vdot(volts @ block.energy_matrix, volts)) / n_images  # BLAS, not einsum
            total += block.energy_per_read * len(h) * len(cycles) / n_images
        return total


    @property
    def dac_bits(self) -> int:
        """One-bit DACs per word line: an amplitude DAC's ``bits``, 1 bit-serial, 0 without a DAC."""
        return 0 if self.dac is None else 1 if self.dac.config.kind == "bit-serial" else self.dac.config.bits

    @property
    def dac_conversions(self) -> int:
        """One-bit DAC conversions per image: every word line of every tile in every evaluation."""
        lines = sum(int(b.rows.stop - b.rows.start) for b in self.blocks)
        return self.positions * self.n_cycles * self.dac_bits * lines

    def area(self, circuit: CircuitConfig, costs: CostTable) -> dict[str, float]:
        """Area (m²) of the layer's cells, ADCs, DACs and shift-and-add units (:mod:`circuitsim.periphery.costs`)."""
        cells = adcs = lines = 0
        for b in self.blocks:
            rows, outs = b.rows.stop - b.rows.start, b.outs.stop - b.outs.start
            cells += b.conductances.size if b.conductances is not None else 2 * rows * outs
            adcs += -(-b.n_columns // circuit.adc.columns_per_adc) if circuit.adc is not None else 0
            lines += rows
        return {"area_cells": cells * costs.cell_area,
                "area_adc": adcs * costs.adc_area_at(circuit.adc.bits) if circuit.adc is not None else 0.0,
                "area_dac": lines * self.dac_bits * costs.dac_bit_area,
                "area_shift_add": shift_add_units(adcs, costs) * costs.shift_add_area}


def energy_summary(crossbar: float, circuit: CircuitConfig, conversions: float, dac_conversions: float,
                   costs: CostTable) -> dict[str, float]:
    """Energy per image (J) by part and in total (``energy_per_inference``).

    ``crossbar`` is the arrays' supply energy; ``conversions`` the ADC conversions, each also
    shift-added once (``digital_energy``); ``dac_conversions`` the one-bit DAC conversions.
    """
    adc = digital = 0.0
    if circuit.adc is not None:
        adc = float(adc_energy(circuit.adc.bits, conversions, circuit.adc_energy))
        digital = conversions * costs.shift_add_energy
    dac = dac_conversions * costs.dac_bit_energy
    return {"crossbar_energy": crossbar, "adc_energy": adc, "dac_energy": dac, "digital_energy": digital,
            "energy_per_inference": crossbar + adc + dac + digital}
