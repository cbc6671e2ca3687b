"""Device and interconnect presets (values and sources in docs/reference.md).

Every :class:`Device` carries its :class:`~circuitsim.device_statistics.DeviceStatistics`
(``statistics``; exact cells by default).

Public API
----------
Device, Wires, DEVICE_PRESETS, WIRE_PRESETS, device_preset, wire_preset
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .device_statistics import DeviceStatistics
from .errors import ConfigError


@dataclass(frozen=True)
class Device:
    """A resistive memory cell used as a programmable conductance."""

    r_low: float
    """Low-resistance (on) state in ohm; ``g_max = 1 / r_low``."""
    r_high: float
    """High-resistance (off) state in ohm; ``g_min = 1 / r_high``."""
    levels: int = 2
    """Programmable conductance levels between ``g_min`` and ``g_max`` (2 = binary cell)."""
    name: str = "custom"
    """Preset name, recorded with results."""
    statistics: DeviceStatistics = field(default_factory=DeviceStatistics)
    """Programming noise, stuck-at faults, read noise and drift (default: exact cells)."""
    v_read_max: float | None = None
    """Largest read voltage the cell allows across it, volts (a word line above it is refused,
    :mod:`circuitsim.periphery.dac`); None: the preset's source states none."""

    def __post_init__(self):
        if not isinstance(self.statistics, DeviceStatistics):
            raise ConfigError("device statistics must be a circuitsim.device_statistics.DeviceStatistics")
        if not (0 < self.r_low < self.r_high < float("inf")):
            raise ConfigError(
                f"device resistances must satisfy 0 < r_low < r_high, got r_low={self.r_low}, r_high={self.r_high}"
            )
        if int(self.levels) != self.levels or self.levels < 2:
            raise ConfigError(f"device levels must be an integer >= 2, got {self.levels}")
        if self.v_read_max is not None and not (0 < self.v_read_max < float("inf")):
            raise ConfigError(f"device v_read_max must be a positive number of volts, got {self.v_read_max!r}")

    @property
    def g_max(self) -> float:
        """Largest conductance, siemens."""
        return 1.0 / self.r_low

    @property
    def g_min(self) -> float:
        """Smallest conductance, siemens."""
        return 1.0 / self.r_high


@dataclass(frozen=True)
class Wires:
    """Interconnect parasitics per cell segment (the tile's wire fields)."""

    r_row: float = 0.0
    """Word-line (input line) resistance per segment, ohm."""
    r_col: float = 0.0
    """Bit-line (summing line) resistance per segment, ohm."""
    c_row: float = 0.0
    """Word-line capacitance per segment, farad."""
    c_col: float = 0.0
    """Bit-line capacitance per segment, farad."""
    r_driver: float = 0.0
    """Input driver output resistance, ohm."""

    def __post_init__(self):
        for name in ("r_row", "r_col", "c_row", "c_col", "r_driver"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
                raise ConfigError(f"wires.{name} must be a finite number >= 0, got {value!r}")


DEVICE_PRESETS = {
    # Amin, Elbtity, Zand, ISCAS 2022: 50 x 30 nm SOT-MRAM MTJ, RA 10 ohm um^2, TMR 200 %
    "sot-mram-amin2022": Device(8.49e3, 25.46e3, 2, "sot-mram-amin2022"),
    # IMAC-Sim's later default MRAM-like cell
    "mram-imac": Device(5e3, 15e3, 2, "mram-imac"),
    # DNN+NeuroSim default RRAM
    "rram-neurosim": Device(100e3, 1.7e6, 2, "rram-neurosim"),
    # Zhang & Hu, JETC 2020 (1T1M); they read between 0 and 0.4 V, but v_read_max stays unset:
    # examples/pruning.toml (v_read = 0.2 V, ReLU) drives word lines to 0.52 V and would be refused
    # (set [device] v_read_max = 0.4 to hold a study to that range)
    "rram-zhang2020": Device(15e3, 300e3, 2, "rram-zhang2020"),
    # aihwkit's PCM model: g_max = 25 uS; its g_min is 0, taken here as g_max / 1000 (40 Mohm)
    # so that every cell stays a finite resistor in the decks
    "pcm-aihwkit": Device(40e3, 40e6, 2, "pcm-aihwkit"),
}

WIRE_PRESETS = {
    "ideal": Wires(),
    # Amin et al. ISCAS 2022 / IMAC-Sim, 14 nm FinFET: 9.24 ohm input line, 11.55 ohm summing line, ~0.05 fF
    "imac-14nm": Wires(9.24, 11.55, 0.05e-15, 0.05e-15),
    # NeuroSim V1.4, 14 nm, ~0.25 um cell pitch: 19.7 ohm/um -> ~5 ohm, 0.2 fF/um -> 0.05 fF
    "neurosim-14nm": Wires(4.9, 4.9, 0.05e-15, 0.05e-15),
    # IBM aihwkit default
    "aihwkit": Wires(0.35, 0.35),
}


def _lookup(table: dict, kind: str, name: str):
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} preset {name!r}; choose one of {', '.join(table)}") from None


def device_preset(name: str) -> Device:
    """Return a named :class:`Device` preset (see :data:`DEVICE_PRESETS`)."""
    return _lookup(DEVICE_PRESETS, "device", name)


def wire_preset(name: str) -> Wires:
    """Return a named :class:`Wires` preset (see :data:`WIRE_PRESETS`)."""
    return _lookup(WIRE_PRESETS, "wire", name)
