"""An analog leaky integrate-and-fire neuron in ngspice, clocked in the evaluator's time steps.

One neuron ``<tag>`` of layer ``k`` (nodes ``m<tag>`` membrane, ``c<tag>`` comparator,
``s<tag>`` latched spike), driven by its layer's summing-amplifier node ``d`` at
``V_d = k_d·s`` volts for the layer's normalized sum ``s``:

- **membrane capacitor** ``Cm`` (``c_mem``), with a hold resistor ``r_hold`` to ground (its
  leakage; negligible over a run, it gives the node a DC path);
- **input transconductor** ``Gi`` (VCCS): ``g_in,k·V_d`` into the membrane while the layer's
  read pulse is on (the crossbar is resistive, so ``V_d`` is a pulse of the read pulse's
  shape): one read delivers ``ΔV = g_in,k·V_d·t_area/c_mem``, ``t_area`` the pulse's area;
- **leak** ``Bk``: a conductance ``1/r_leak`` to ground switched on by the leak clock (one
  phase per step, before the reads): ``V ← β·V`` with ``β = exp(−t_area/(r_leak·c_mem))``;
  none when ``β = 1``;
- **comparator** ``Bc``: ``v_dd·u(V − v_threshold)`` (fires strictly above);
- **latch** (sample and hold) ``Cs``/``Bl``: a capacitor ``c_latch`` charged towards the
  comparator through ``g_latch`` while the layer's latch clock is on, holding it otherwise —
  the spike of the step, driving the next layer's word lines and the reset;
- **reset switch** ``Bz``, on during the layer's reset clock when the latch holds a spike:
  to zero, a conductance ``1/r_reset`` to ground (``r_reset·c_mem`` a ``settle``-th of the
  phase: ``V → e^−settle·V``); by subtraction, a current ``c_mem·v_threshold/t_area``
  (removes exactly ``v_threshold``);
- a **clear** of the membrane (through ``r_reset``) in the leak phase of every image's first
  step, so that images run one after the other in one transient.

Clocks (``PULSE`` sources from 0 to 1 V, period ``t_step``; every phase rises and falls in
``t_edge`` after a gap of ``t_edge``): the leak, then per layer its read (``t_read`` wide),
latch and reset (``t_phase`` wide). A layer reads the spikes its predecessor latched in the
same step, as the evaluator's layers do (:mod:`circuitsim.network.spiking`).

The membrane voltage is ``v_threshold / threshold`` volts per unit of the evaluator's
membrane potential, so :class:`LIFCircuit` and a :class:`~circuitsim.network.spiking.SpikingConfig`
give every element value (:meth:`LIFCircuit.parameters`; the deck's ``.param`` lines).
Refractory steps and the ``"potential"`` score have no circuit here.

Public API
----------
LIFCircuit, LIFSchedule
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..tile.netlist import format_value as _f


@dataclass(frozen=True)
class LIFSchedule:
    """Where the clock phases of one time step lie (seconds from the step's start)."""

    starts: dict[str, float]
    """Start of every phase's rise: ``"leak"``, ``"read<k>"``, ``"latch<k>"``, ``"reset<k>"``."""
    widths: dict[str, float]
    """Flat top of every phase."""
    t_edge: float
    """Rise and fall time of every phase."""
    t_step: float
    """Duration of one time step."""

    def area(self, phase: str) -> float:
        """``∫ clock dt`` of one phase (flat top plus one edge), seconds."""
        return self.widths[phase] + self.t_edge

    def pulse(self, phase: str, period: float | None = None) -> str:
        """The ``PULSE(...)`` of a clock of that phase, period ``t_step`` (or ``period``)."""
        return (f"PULSE(0 1 {_f(self.starts[phase])} {_f(self.t_edge)} {_f(self.t_edge)} {_f(self.widths[phase])} "
                f"{_f(period or self.t_step)})")

    def hold_time(self, k: int) -> float:
        """A moment (from the step's start) when layer ``k``'s latch holds the step's spikes."""
        return self.starts[f"reset{k}"] + 0.5 * self.widths[f"reset{k}"]


@dataclass(frozen=True)
class LIFCircuit:
    """Element sizes and clock timing of the analog LIF neuron (module notes); SI units."""

    c_mem: float = 100e-15
    """Membrane capacitance, farads."""
    v_threshold: float = 0.5
    """Comparator threshold, volts (the configured threshold of the membrane potential)."""
    v_dd: float = 0.8
    """Comparator and latch high level, volts (a spike)."""
    t_phase: float = 5e-9
    """Flat top of the leak, latch and reset phases, seconds."""
    t_edge: float = 0.1e-9
    """Rise and fall of every clock phase (and the gap before it), seconds."""
    c_latch: float = 10e-15
    """Latch (sample-and-hold) capacitance, farads."""
    settle: float = 40.0
    """Time constants of the latch and the reset to zero per phase (their settling: ``e^−settle``)."""
    r_hold: float = 1e15
    """Leakage resistance of the membrane and latch capacitors to ground, ohms."""

    def __post_init__(self):
        for name in ("c_mem", "v_threshold", "v_dd", "t_phase", "t_edge", "c_latch", "settle", "r_hold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(f"LIF circuit {name} must be a finite number > 0, got {value!r}")

    def schedule(self, layers: int, t_read: float) -> LIFSchedule:
        """The clock phases of a step of ``layers`` layers whose read pulses are ``t_read`` wide."""
        if not (layers >= 1 and 0 < t_read < math.inf):
            raise ConfigError(f"a LIF schedule needs >= 1 layer and t_read > 0, got {layers} and {t_read!r}")
        phases = [("leak", self.t_phase)]
        for k in range(layers):
            phases += [(f"read{k}", t_read), (f"latch{k}", self.t_phase), (f"reset{k}", self.t_phase)]
        starts, widths, t = {}, {}, 0.0
        for name, width in phases:
            starts[name], widths[name] = t + self.t_edge, width
            t += width + 3 * self.t_edge
        return LIFSchedule(starts, widths, self.t_edge, t)

    def parameters(self, config, schedule: LIFSchedule) -> dict[str, float]:
        """The named element values (the deck's ``.param`` lines) of the neurons of ``config``
        (a :class:`~circuitsim.network.spiking.SpikingConfig`: its leak, threshold and reset)
        clocked by ``schedule``: ``cmem``, ``vth``, ``vdd``, ``rleak`` (none when β = 1),
        ``rreset``, ``isub``, ``clatch``, ``glatch``, ``rhold``, ``tstep`` and ``volts_per_unit``
        (membrane volts per unit of potential)."""
        phase = schedule.area("latch0")
        values = {"cmem": self.c_mem, "vth": self.v_threshold, "vdd": self.v_dd,
                  "rreset": phase / (self.settle * self.c_mem),
                  "isub": self.c_mem * self.v_threshold / schedule.area("reset0"),
                  "clatch": self.c_latch, "glatch": self.settle * self.c_latch / phase, "rhold": self.r_hold,
                  "tstep": schedule.t_step, "volts_per_unit": self.v_threshold / config.threshold}
        if config.beta < 1.0:
            values["rleak"] = schedule.area("leak") / (self.c_mem * -math.log(config.beta))
        return values

    @staticmethod
    def check(config) -> None:
        """Refuse, in one line, what the circuit does not model."""
        if config.refractory:
            raise ConfigError(f"the LIF neuron circuit has no refractory period; set network.refractory = 0 "
                              f"(got {config.refractory})")
        if config.score != "count":
            raise ConfigError("the LIF neuron circuit reads spikes; set network.score = \"count\" "
                              f"(got {config.score!r})")

    @staticmethod
    def lines(tag: str, k: int, inp: str, gin: str, config) -> list[str]:
        """Element lines of neuron ``tag`` of layer ``k`` fed by amplifier node ``inp`` through the
        transconductance parameter ``gin`` (clock nodes ``ph_leak``, ``ph_clear``,
        ``ph_latch<k>``, ``ph_reset<k>``; parameters of :meth:`parameters`)."""
        m, c, s = f"m{tag}", f"c{tag}", f"s{tag}"
        leak = "v(ph_leak)/{rleak}+" if config.beta < 1.0 else ""
        reset = (f"v({m})/{{rreset}}" if config.reset == "zero" else "{isub}")
        return [f"Cm{tag} {m} 0 {{cmem}}", f"Rh{tag} {m} 0 {{rhold}}",
                f"Gi{tag} 0 {m} {inp} 0 {{{gin}}}",
                f"Bk{tag} {m} 0 I = v({m})*({leak}v(ph_clear)/{{rreset}})",
                f"Bc{tag} {c} 0 V = {{vdd}}*u(v({m})-{{vth}})",
                f"Cs{tag} {s} 0 {{clatch}}", f"Rs{tag} {s} 0 {{rhold}}",
                f"Bl{tag} 0 {s} I = {{glatch}}*v(ph_latch{k})*(v({c})-v({s}))",
                f"Bz{tag} {m} 0 I = v(ph_reset{k})*v({s})/{{vdd}}*{reset}"]
