"""Device statistics: programming noise, stuck-at faults, read noise and drift.

A :class:`DeviceStatistics` says how the conductances a cell really has differ from the
target the mapping asks for. All fields default to 0 (exact cells, today's results);
:mod:`circuitsim.network.realization` draws the realized conductances of every tile from
them, deterministically from ``(seed, layer, tile)``.

The model, cell by cell, in the order it is applied:

1. **programming noise**: ``G_prog = max(G_T + σ_prog·N(0, 1), 0)`` with ``σ_prog`` by
   ``programming_noise_model``:

   - ``"state-independent"``: ``σ = programming_noise · (g_max − g_min)``;
   - ``"proportional"``: ``σ = programming_noise · G_T``;
   - ``"pcm"``: aihwkit's calibrated PCM polynomial (documentation page "Inference and
     PCM statistical model"; Nandakumar et al., ICECS 2019; Joshi et al., Nat. Commun.
     11, 2473, 2020): ``σ = programming_noise · max(-1.1731 g² + 1.9650 g + 0.2635, 0)``
     µS with ``g = G_T / g_max``, scaled by ``g_max / 25 µS`` for cells other than
     aihwkit's 25 µS one (``programming_noise = 1`` is the calibrated model, as aihwkit's
     ``prog_noise_scale``). Negative draws are clipped at 0, as aihwkit does.
2. **stuck-at faults**: a fraction ``stuck_at_gmin`` of the cells sits at ``g_min`` and
   ``stuck_at_gmax`` at ``g_max`` whatever their target (no noise, no drift).
3. **drift**: ``G(t) = G_prog · (t / t0)^−ν`` at ``t = t_inference > t0``, ``ν ~
   N(drift_nu, drift_nu_std)`` per cell, clipped at 0; ``drift_compensation = "global"``
   multiplies each tile's outputs by one factor ``α = Σ|W_prog·1| / Σ|W_t·1|``: the
   absolute summed differential outputs of an all-ones reference read right after
   programming over the same read at ``t_inference`` (aihwkit's global drift
   compensation), both reads through the tile's wires.
4. **read noise**: every read (every image) sees ``G(t) + read_noise · G(t) · N(0, 1)``,
   drawn anew per cell and image; the evaluator draws every output from the Gaussian law
   that those draws give it through the wires (:mod:`circuitsim.tile.read_noise`).

Public API
----------
DeviceStatistics, STATISTICS_PRESETS, statistics_preset, PROGRAMMING_NOISE_MODELS,
DRIFT_COMPENSATIONS, STATISTICS_FIELDS
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import ConfigError

ProgrammingNoiseModel = Literal["state-independent", "proportional", "pcm"]
DriftCompensation = Literal["none", "global"]
PROGRAMMING_NOISE_MODELS: tuple[str, ...] = get_args(ProgrammingNoiseModel)
DRIFT_COMPENSATIONS: tuple[str, ...] = get_args(DriftCompensation)

#: aihwkit PCM programming-noise polynomial, µS, in g = G_T / g_max (constant, linear, quadratic)
PCM_PROGRAMMING_COEFFICIENTS = (0.2635, 1.9650, -1.1731)
#: g_max of aihwkit's calibrated PCM model, siemens
PCM_G_MAX = 25e-6


@dataclass(frozen=True)
class DeviceStatistics:
    """How realized cell conductances differ from their targets (see the module docstring)."""

    programming_noise: float = 0.0
    """σ of the programmed conductance: a fraction of ``g_max − g_min`` (state-independent),
    of the target ``G`` (proportional), or the scale of aihwkit's PCM polynomial (pcm)."""
    programming_noise_model: ProgrammingNoiseModel = "state-independent"
    """``"state-independent"``, ``"proportional"`` or ``"pcm"``."""
    stuck_at_gmin: float = 0.0
    """Fraction of cells stuck at ``g_min``."""
    stuck_at_gmax: float = 0.0
    """Fraction of cells stuck at ``g_max``."""
    read_noise: float = 0.0
    """σ of every read, relative to the cell's conductance (drawn anew per image)."""
    drift_nu: float = 0.0
    """Mean drift exponent ν (dimensionless)."""
    drift_nu_std: float = 0.0
    """Standard deviation of ν across cells."""
    t_inference: float = 0.0
    """Time of inference after programming, seconds (no drift while ``t_inference <= t0``)."""
    t0: float = 20.0
    """Reference time of the drift law, seconds (aihwkit: 20 s)."""
    drift_compensation: DriftCompensation = "none"
    """``"none"`` or ``"global"`` (one scale per tile from a reference read)."""
    seed: int = 0
    """Seed of the realization (with the layer and tile indices)."""
    name: str = "custom"
    """Preset name, recorded with results."""

    def __post_init__(self):
        for field in ("programming_noise", "stuck_at_gmin", "stuck_at_gmax", "read_noise",
                      "drift_nu", "drift_nu_std", "t_inference"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
                raise ConfigError(f"device.{field} must be a finite number >= 0, got {value!r}")
        if isinstance(self.t0, bool) or not isinstance(self.t0, (int, float)) or not (0 < self.t0 < math.inf):
            raise ConfigError(f"device.t0 must be a number of seconds > 0, got {self.t0!r}")
        if self.stuck_at_gmin + self.stuck_at_gmax > 1:
            raise ConfigError(f"device.stuck_at_gmin + stuck_at_gmax must be <= 1, got "
                              f"{self.stuck_at_gmin} + {self.stuck_at_gmax}")
        if self.programming_noise_model not in PROGRAMMING_NOISE_MODELS:
            raise ConfigError(f"device.programming_noise_model must be one of "
                              f"{', '.join(PROGRAMMING_NOISE_MODELS)}, got {self.programming_noise_model!r}")
        if self.drift_compensation not in DRIFT_COMPENSATIONS:
            raise ConfigError(f"device.drift_compensation must be one of {', '.join(DRIFT_COMPENSATIONS)}, "
                              f"got {self.drift_compensation!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"device.seed must be an integer >= 0, got {self.seed!r}")

    @property
    def drifts(self) -> bool:
        """Whether the conductances drift at ``t_inference``."""
        return self.t_inference > self.t0 and (self.drift_nu > 0 or self.drift_nu_std > 0)

    @property
    def is_exact(self) -> bool:
        """True when every realized conductance equals its target (no statistics at all)."""
        return (self.programming_noise == 0 and self.stuck_at_gmin == 0 and self.stuck_at_gmax == 0
                and self.read_noise == 0 and not self.drifts)

    def replace(self, **changes) -> "DeviceStatistics":
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


STATISTICS_FIELDS = tuple(f.name for f in dataclasses.fields(DeviceStatistics) if f.name != "name")
"""Fields a spec's ``[device]`` section may set (and sweep as ``device.<field>``)."""

# read noise of aihwkit's PCM model at g_T = 1, t = 3600 s: σ/G = Q_s sqrt(ln((t + t_r) / (2 t_r))),
# Q_s = min(0.0088 / g_T^0.65, 0.2), t_r = 250 ns
_PCM_READ_1H = 0.0088 * math.sqrt(math.log((3600.0 + 250e-9) / (2 * 250e-9)))

STATISTICS_PRESETS = {
    "ideal": DeviceStatistics(name="ideal"),
    # aihwkit's PCM statistical model (documentation "Inference and PCM statistical model";
    # Nandakumar et al. ICECS 2019, Joshi et al. Nat. Commun. 2020), 1 h after programming:
    # calibrated programming-noise polynomial; drift nu ~ N(0.049, 0.008), the calibrated
    # mu_nu = clip(-0.0155 ln g_T + 0.0244, 0.049, 0.1) and sigma_nu = clip(-0.0125 ln g_T - 0.0059,
    # 0.008, 0.045) at g_T = 1 (a binary +1 cell); t0 = 20 s; read noise Q_s sqrt(ln(...)) at
    # g_T = 1, t = 1 h (= 0.0419; the model's growth of Q_s at small g_T is not modelled);
    # global drift compensation.
    "pcm-aihwkit": DeviceStatistics(1.0, "pcm", 0.0, 0.0, round(_PCM_READ_1H, 4), 0.049, 0.008,
                                    3600.0, 20.0, "global", 0, "pcm-aihwkit"),
    # NeuRRAM (Wan et al., "A compute-in-memory chip based on resistive random-access memory",
    # Nature 608, 504, 2022, Extended Data Fig. 3; cubic fit as in CrossSim's RRAMWan model):
    # write-verify sigma_G = 1.05 ... 2.51 uS over a 0 ... 39.26 uS range, i.e. 2.7 ... 6.4 % of the
    # range; 5 % of g_max - g_min state-independent.
    "rram-wan2022": DeviceStatistics(0.05, "state-independent", name="rram-wan2022"),
    # 300 mm SOT-MRAM ("Evaluation of wafer-scale SOT-MRAM for analog crossbar array
    # applications": TMR 150 %, device-to-device variation 10 %, write noise 0.1 %):
    # 10 % proportional programming spread, 0.1 % read-to-read noise.
    "sot-mram-wafer": DeviceStatistics(0.10, "proportional", read_noise=0.001, name="sot-mram-wafer"),
}
"""Named device statistics (sources above each entry)."""


def statistics_preset(name: str) -> DeviceStatistics:
    """Return a named :class:`DeviceStatistics` preset (see :data:`STATISTICS_PRESETS`)."""
    try:
        return STATISTICS_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown device statistics preset {name!r}; choose one of "
                          f"{', '.join(STATISTICS_PRESETS)}") from None
