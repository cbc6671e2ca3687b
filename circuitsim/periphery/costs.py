"""Area and the energy of the digital periphery around the arrays: sourced cost tables.

A :class:`CostTable` (flat, frozen; named presets in :data:`COST_PRESETS`) gives what a mapped
network's area and its DAC and shift-add energy are computed from
(:meth:`~circuitsim.network.mapped.MappedNetwork.area`,
:meth:`~circuitsim.network.mapped.MappedNetwork.energy_per_inference`). The ADC's energy per
conversion stays in :mod:`circuitsim.periphery.energy` (``CircuitConfig.adc_energy``).

Sources of the default table (``"isaac-32nm"``)
-----------------------------------------------
Component figures of ISAAC's in-situ multiply-accumulate unit (IMA), 32 nm (A. Shafiee et al.,
"ISAAC: A Convolutional Neural Network Accelerator with In-Situ Analog Arithmetic in Crossbars",
ISCA 2016, table of component power and area; one IMA has eight 128 × 128 arrays read in 100 ns,
1,024 one-bit DACs, eight 8-bit ADCs at 1.28 GS/s and four shift-and-add units):

* **ADC area** at 8 bits: 1,200 µm² (9,600 µm² for eight ADCs; the converter of L. Kull et al.,
  ISSCC 2013); at 4-7, 9 and 10 bits the same design scaled (361, 477, 627, 845, 1,828 and
  3,002 µm²; the scaling of the ADC energy table in docs/reference.md). Interpolated and
  extrapolated log-linearly in bits, like the energy table.
* **DAC**: 4 mW and 170 µm² for 1,024 one-bit DACs, so 0.166 µm² per one-bit DAC and
  4 mW / 1,024 × 100 ns = 0.39 pJ per one-bit conversion (one read of the array).
* **Shift-and-add**: 0.2 mW and 240 µm² for four units, which take the outputs of eight ADCs
  at 1.28 GS/s: 60 µm² per unit, 0.2 mW / (8 × 1.28 GS/s) = 0.020 pJ per ADC output added.

Cell area in F² (the feature size squared) is DNN+NeuroSim's default cell layout
(``Param.cpp`` of the NeuroSim repositories): a cross-point cell is 2 F × 2 F = 4 F², a 1T1R
cell 4 F × 12 F = 48 F² (preset ``"isaac-32nm-1t1r"``).

Assumptions (not measurements)
------------------------------
* A ``b``-bit amplitude DAC costs ``b`` one-bit DACs (energy per conversion and area); a
  bit-serial input stage is one one-bit DAC per word line, converting once per cycle.
* Every ADC output is shift-added once (slices, bit-serial cycles and vertical partitions are
  all accumulated there); ISAAC's ratio of one shift-and-add unit per two ADCs sets their number.
* Area counts the cells the tiles hold (a tile's unused rows and columns are not counted), one
  ADC per ``columns_per_adc`` columns of a tile, one DAC per word line of a tile; wires, buffers,
  routers and the digital layers between crossbar layers are not counted.

Public API
----------
CostTable, COST_PRESETS, ISAAC_COSTS, cost_preset, shift_add_units
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from .energy import ISAAC_SAMPLE_RATE, check_table, log_linear

ISAAC_T_READ = 100e-9
"""ISAAC's array read time (s) over which its DAC power is spent."""


@dataclass(frozen=True)
class CostTable:
    """Area (m²) and digital-periphery energy (J) of an architecture around the arrays."""

    feature_size: float = 32e-9
    """Technology node F (m)."""
    cell_area_f2: float = 4.0
    """Area of one cell in F² (4: cross-point cell; 48: NeuroSim's 1T1R cell)."""
    adc_bits: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)
    """Resolutions (bits) of the ADC area table, strictly increasing."""
    adc_area: tuple[float, ...] = (361.04e-12, 476.91e-12, 626.91e-12, 845.18e-12, 1200e-12,
                                   1827.91e-12, 3002.01e-12)
    """Area of one ADC (m²) at each resolution of :attr:`adc_bits`."""
    dac_bit_energy: float = 4e-3 / 1024 * ISAAC_T_READ
    """Energy (J) of one one-bit DAC conversion (one word line driven for one read)."""
    dac_bit_area: float = 170e-12 / 1024
    """Area (m²) of one one-bit DAC."""
    shift_add_energy: float = 0.2e-3 / (8 * ISAAC_SAMPLE_RATE)
    """Energy (J) of adding one ADC output into its sum (shift-and-add)."""
    shift_add_area: float = 60e-12
    """Area (m²) of one shift-and-add unit."""
    adcs_per_shift_add: int = 2
    """ADCs one shift-and-add unit serves."""
    source: str = "ISAAC (Shafiee et al., ISCA 2016) 32 nm components; NeuroSim cell layouts"
    """Where the values come from."""

    def __post_init__(self):
        positive = {"feature_size": self.feature_size, "cell_area_f2": self.cell_area_f2,
                    "dac_bit_energy": self.dac_bit_energy, "dac_bit_area": self.dac_bit_area,
                    "shift_add_energy": self.shift_add_energy, "shift_add_area": self.shift_add_area}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"costs {name} must be a finite number > 0, got {value!r}")
        if isinstance(self.adcs_per_shift_add, bool) or not isinstance(self.adcs_per_shift_add, int) \
                or self.adcs_per_shift_add < 1:
            raise ConfigError(f"costs adcs_per_shift_add must be an integer >= 1, got {self.adcs_per_shift_add!r}")
        bits, area = check_table(self.adc_bits, self.adc_area, "costs adc_area (m²)")
        object.__setattr__(self, "adc_bits", bits)
        object.__setattr__(self, "adc_area", area)

    @property
    def cell_area(self) -> float:
        """Area of one cell (m²)."""
        return self.cell_area_f2 * self.feature_size ** 2

    def adc_area_at(self, bits: int) -> float:
        """Area (m²) of one ``bits``-bit ADC."""
        return float(log_linear(self.adc_bits, self.adc_area, bits))

    def replace(self, **changes) -> CostTable:
        """A copy with ``changes`` applied (validated)."""
        return CostTable(**{**self.__dict__, **changes})


ISAAC_COSTS = CostTable()
"""ISAAC's 32 nm components with cross-point cells (4 F²)."""

COST_PRESETS: dict[str, CostTable] = {
    "isaac-32nm": ISAAC_COSTS,
    "isaac-32nm-1t1r": ISAAC_COSTS.replace(cell_area_f2=48.0),
}
"""Named cost tables."""


def cost_preset(name: str) -> CostTable:
    """The cost table named ``name`` (one of :data:`COST_PRESETS`)."""
    try:
        return COST_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown cost table {name!r}; choose one of {', '.join(COST_PRESETS)}") from None


def shift_add_units(n_adcs: int, costs: CostTable) -> int:
    """Shift-and-add units serving ``n_adcs`` ADCs."""
    return -(-n_adcs // costs.adcs_per_shift_add) if n_adcs else 0

