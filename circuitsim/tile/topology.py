"""Topologies of a partitioned layer: circuitsim's canonical one and IMAC-Sim's.

A :class:`TopologyConfig` says how the cells, wires and readout of one layer are
arranged, independently of the cell values and wire resistances:

- ``pair_layout`` — ``"adjacent-columns"`` (canonical: the G+ and G- cells of an output
  are two columns, each with its own word-line segment before it) or ``"shared-node"``
  (IMAC-Sim: both cells hang from the same input-line node; one input-line segment per
  *output*).
- ``combining`` — how horizontal partitions meet: ``"sum"`` (partial sums added) or
  ``"average"`` (IMAC-Sim: the partition amplifiers' outputs tied to the neuron input by
  ``r_tie`` = 1 mΩ resistors, so the neuron sees their mean).
- ``readout`` — what ends each partition's two summing lines: ``"virtual-ground"``
  (ideal 0 V sense sources), ``"tia"`` (op-amp transimpedance amplifier per line) or
  ``"diff-amp"`` (IMAC-Sim's loaded difference amplifier, :class:`DiffAmp`). The passive
  sense resistor and the charge readouts of a single tile live in
  :mod:`~circuitsim.tile.readout` and :mod:`~circuitsim.tile.charge`.
- ``bias_row`` — where the bias row sits: ``"last"`` (nearest the outputs, both tools)
  or ``"first"``.
- ``rounding`` — how ``n`` rows or outputs are cut into ``parts`` pieces
  (:func:`partition_slices`): ``"nearest"`` (canonical: edges at ``round(k n / parts)``,
  21 rows in 2 → 10, 11) or ``"imac-sim"`` (IMAC-Sim's generator: 21 in 2 → 11, 10).
- ``zero_weight`` — the cell pair of a weight 0: ``"g-min"`` (canonical, both cells at
  ``g_min``) or ``"g-max"`` (IMAC-Sim: both at ``R_low``).

:meth:`TopologyConfig.canonical` is the canonical tile of docs/design.md (the default
everywhere); :meth:`TopologyConfig.imac_sim` selects every convention of IMAC-Sim
(iCAS-Lab/IMAC-Sim, ``mapLayer.py``, ``mapWB.py``, ``spice/diff1.sp``) at once.
Everything is linear, so transfer characteristics stay exact.

Public API
----------
DiffAmp, TopologyConfig, TOPOLOGIES, topology_preset, partition_slices
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ConfigError

PAIR_LAYOUTS = ("adjacent-columns", "shared-node")
COMBININGS = ("sum", "average")
LAYER_READOUTS = ("virtual-ground", "tia", "diff-amp")
BIAS_ROWS = ("last", "first")
ROUNDINGS = ("nearest", "imac-sim")
ZERO_WEIGHTS = ("g-min", "g-max")


def _positive(what: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not (0 < value < math.inf):
        raise ConfigError(f"{what} must be a finite number > 0, got {value!r}")
    return value


@dataclass(frozen=True)
class DiffAmp:
    """IMAC-Sim's loaded difference amplifier (``spice/diff1.sp``), one per partition output.

    ``r_in`` runs from the I- line to the inverting input ``n1`` and from the I+ line to
    the non-inverting input ``n2``; ``r_feedback`` from ``n1`` to the output, ``r_ground``
    from ``n2`` to ground. The op-amp is a VCVS ``V_out = opamp_gain · (V(n2) - V(n1))``.
    With an ideal op-amp ``V_out = (r_feedback / r_in) (V+ - V-)``; the I+ line sees
    ``r_in + r_ground`` to ground and the I- line ``r_in`` to a node at ``V(n2)``, so the
    summing lines are not at virtual ground.
    """

    r_in: float = 1e3
    """Input resistors, ohm (IMAC-Sim: 1 kΩ)."""
    r_feedback: float = 30e3
    """Feedback resistor ``n1 → out``, ohm (IMAC-Sim's first layer: 30 kΩ, gain 30)."""
    r_ground: float = 30e3
    """Resistor ``n2 → ground``, ohm (equal to ``r_feedback`` in IMAC-Sim)."""
    opamp_gain: float = 1e6
    """Open-loop gain of the op-amp, V/V. IMAC-Sim uses an ideal op-amp; 1e6 stands in for
    it: the closed-loop output then differs from the ideal one by about
    ``(1 + r_feedback/r_in) / opamp_gain`` ≈ 3e-5 (relative) at gain 30."""

    def __post_init__(self):
        for name in ("r_in", "r_feedback", "r_ground", "opamp_gain"):
            object.__setattr__(self, name, _positive(f"diff-amp {name}", getattr(self, name)))

    @classmethod
    def with_gain(cls, gain: float = 30.0, opamp_gain: float = 1e6, r_in: float = 1e3) -> "DiffAmp":
        """IMAC-Sim's amplifier of closed-loop gain ``gain`` (``r_feedback = r_ground = gain · r_in``)."""
        gain = _positive("amplifier gain", gain)
        return cls(r_in, gain * r_in, gain * r_in, opamp_gain)

    @property
    def gain(self) -> float:
        """Ideal closed-loop differential gain ``r_feedback / r_in``."""
        return self.r_feedback / self.r_in


@dataclass(frozen=True)
class TopologyConfig:
    """How the cells, wires and readouts of a partitioned layer are arranged."""

    name: str = "canonical"
    """Preset name, recorded with results."""
    pair_layout: str = "adjacent-columns"
    """``"adjacent-columns"`` (a segment before every cell) or ``"shared-node"`` (G+ and G- of
    an output on one input-line node, a segment per output)."""
    combining: str = "sum"
    """``"sum"`` or ``"average"`` of the horizontal partitions' outputs."""
    readout: str = "virtual-ground"
    """``"virtual-ground"``, ``"tia"`` or ``"diff-amp"``."""
    bias_row: str = "last"
    """``"last"`` (nearest the outputs) or ``"first"``."""
    rounding: str = "nearest"
    """Partition sizes: ``"nearest"`` or ``"imac-sim"`` (see :func:`partition_slices`)."""
    zero_weight: str = "g-min"
    """Cell pair of a weight 0: ``"g-min"`` or ``"g-max"`` (both cells at ``R_low``)."""
    diff_amp: DiffAmp = field(default_factory=DiffAmp)
    """The difference amplifier (with ``readout == "diff-amp"``)."""
    tia_gain: float = 1e5
    """Op-amp gain of the TIAs (with ``readout == "tia"``), V/V."""
    tia_r_feedback: float = 10e3
    """TIA feedback resistance, ohm."""
    r_tie: float = 1e-3
    """Resistors tying partition amplifier outputs to the neuron input (``"average"`` with a
    voltage readout), ohm (IMAC-Sim: 1 mΩ)."""

    def __post_init__(self):
        for name, allowed in (("pair_layout", PAIR_LAYOUTS), ("combining", COMBININGS),
                              ("readout", LAYER_READOUTS), ("bias_row", BIAS_ROWS),
                              ("rounding", ROUNDINGS), ("zero_weight", ZERO_WEIGHTS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"topology {name} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")
        if not isinstance(self.diff_amp, DiffAmp):
            raise ConfigError("topology diff_amp must be a DiffAmp")
        for name in ("tia_gain", "tia_r_feedback", "r_tie"):
            object.__setattr__(self, name, _positive(f"topology {name}", getattr(self, name)))

    @property
    def voltage_output(self) -> bool:
        """True when the outputs are amplifier voltages (difference amplifier); TIAs only hold
        the summing lines near 0 V and the outputs stay their sense currents."""
        return self.readout == "diff-amp"

    @classmethod
    def canonical(cls) -> "TopologyConfig":
        """The canonical tile of docs/design.md, partial sums added (circuitsim's default)."""
        return cls()

    @classmethod
    def imac_sim(cls, amp_gain: float = 30.0, opamp_gain: float = 1e6) -> "TopologyConfig":
        """Every convention of IMAC-Sim's layer generator (amplifier gain 30: its first layer)."""
        return cls("imac-sim", "shared-node", "average", "diff-amp", "last", "imac-sim", "g-max",
                   DiffAmp.with_gain(amp_gain, opamp_gain))

    def replace(self, **changes) -> "TopologyConfig":
        """Return a copy with some fields replaced."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        fields.update(changes)
        return TopologyConfig(**fields)

    def to_dict(self) -> dict:
        """Plain-data form (JSON/TOML)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TopologyConfig":
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown topology field(s) {', '.join(sorted(unknown))}")
        amp = data.pop("diff_amp", None)
        if isinstance(amp, dict):
            amp = DiffAmp(**amp)
        return cls(**data, **({"diff_amp": amp} if amp is not None else {}))


TOPOLOGIES = {"canonical": TopologyConfig.canonical, "imac-sim": TopologyConfig.imac_sim}
"""Named topology presets."""


def topology_preset(name: str) -> TopologyConfig:
    """Return a named topology (``"canonical"`` or ``"imac-sim"``)."""
    try:
        return TOPOLOGIES[name]()
    except KeyError:
        raise ConfigError(f"unknown topology {name!r}; choose one of {', '.join(TOPOLOGIES)}") from None


def partition_slices(n: int, parts: int, rounding: str = "nearest") -> tuple[slice, ...]:
    """Cut ``range(n)`` into ``parts`` contiguous pieces.

    ``"nearest"``: piece ``k`` ends at ``round(k n / parts)`` (numpy rounding, half to
    even; circuitsim's mapping). ``"imac-sim"``: piece ``k`` ends at
    ``floor(k n / parts + min((n mod parts) / k, 1))`` (the last index of a piece in
    IMAC-Sim's ``mapLayer.py``, plus one), which puts the larger pieces first when the
    division is not exact (21 in 2 → 11, 10; 10 in 4 → 3, 3, 2, 2).
    """
    if int(parts) != parts or parts < 1 or parts > n:
        raise ConfigError(f"cannot cut {n} rows/outputs into {parts} pieces; give 1..{n}")
    if rounding == "nearest":
        edges = np.linspace(0, n, parts + 1).round().astype(int)
    elif rounding == "imac-sim":
        edges = [0] + [int(math.floor(n * k / parts + min((n % parts) / k, 1))) for k in range(1, parts + 1)]
        edges[-1] = n
    else:
        raise ConfigError(f"partition rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    edges = [int(e) for e in edges]
    if any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ConfigError(f"{rounding} rounding of {n} into {parts} pieces gives an empty piece; "
                          "use fewer partitions")
    return tuple(slice(a, b) for a, b in zip(edges[:-1], edges[1:]))
