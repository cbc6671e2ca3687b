"""A whole spiking network's transient in one ngspice deck, spike for spike against the evaluator.

:func:`spiking_deck` writes every crossbar layer of a spiking network on its tiles as their
**resistive netlists** — the realized cells the evaluator characterized, each bit line read
at virtual ground by a TIA, a summing difference amplifier per output
(:func:`~circuitsim.study.whole_circuit.layer_sum_lines`, the whole-circuit validation's
own circuit; wire capacitors left out) — and after every output an analog LIF neuron
(:class:`~circuitsim.periphery.lif.LIFCircuit`: membrane capacitor, switched leak,
comparator, latch, reset switch). Its sizes come from the
:class:`~circuitsim.network.spiking.SpikingConfig` as named ``.param`` lines (``cmem``,
``vth``, ``rleak``, ``rreset``, ``isub``, ``gin<k>``, ``tstep``, …).

Word lines are driven by read pulses of ``v_read`` (``t_read`` wide, the circuit's): the
first layer's by ``PWL`` sources holding the encoder's inputs of every step (the same draws
as the evaluator's, :func:`~circuitsim.network.spiking.encode`), the next layers' by the
spikes their predecessor latched in that step, the bias rows' every step. The images run one
after another in one ``tran`` analysis (``time_steps`` steps each; every image's first step
clears the membranes). The amplifier slope of layer ``k`` is chosen so that no sum can reach
the rails (all inputs at 1), and the neuron's transconductance ``gin<k>`` so that one read
adds the evaluator's input ``gain·scale·s`` (membrane units) to the membrane.

:func:`simulate_spiking` runs the deck (errors from ngspice name the kept deck and carry
ngspice's message) and reads every neuron's latch once per step: the spikes of every layer,
step, image and neuron, as :attr:`~circuitsim.network.spiking.SpikingRun.spikes`.
:func:`spike_agreement` compares them with the evaluator's. The deck has no ADCs and draws
no read noise: compare with the evaluator run without ADCs (``use_adc=False``) on tiles
mapped without read noise, and without early stop (the spikes up to a stop are the same).

Public API
----------
SpikingDeck, SpikingCircuitResult, spiking_deck, simulate_spiking, spike_agreement
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..network.mapped import MappedNetwork
from ..network.spiking import SpikingConfig, SpikingNetwork, encode
from ..periphery.lif import LIFCircuit, LIFSchedule
from ..spice.base import run_deck
from ..tile.netlist import format_value as _f
from .whole_circuit import FullCircuitConfig, layer_sum_lines

HEADROOM = 0.9
"""Fraction of the amplifier rails the largest possible sum of a layer reaches."""


@dataclass(frozen=True, eq=False)
class SpikingDeck:
    """An ngspice deck of a whole spiking network and what is needed to read it back."""

    text: str
    """The deck (ends with ``.end``)."""
    schedule: LIFSchedule
    """The clock phases of a step."""
    parameters: dict[str, float]
    """The ``.param`` values (neuron sizes, transconductances ``gin<k>``, step)."""
    widths: tuple[int, ...]
    """Neurons per layer."""
    n_images: int
    """Images, one after another."""
    time_steps: int
    """Steps per image."""
    n_elements: int
    """Element lines in the deck."""

    @property
    def t_stop(self) -> float:
        """End of the transient, seconds."""
        return self.n_images * self.time_steps * self.schedule.t_step

    @property
    def save(self) -> list[str]:
        """Vectors to keep: the latches."""
        return ["time"] + [f"v(s{k}_{o})" for k, w in enumerate(self.widths) for o in range(w)]

    def sample_times(self, k: int) -> np.ndarray:
        """When layer ``k``'s latches hold each step's spikes, ``images × steps`` seconds."""
        start = np.arange(self.n_images * self.time_steps) * self.schedule.t_step
        return (start + self.schedule.hold_time(k)).reshape(self.n_images, self.time_steps)


@dataclass(frozen=True, eq=False)
class SpikingCircuitResult:
    """Every neuron's spikes as ngspice computed them."""

    spikes: tuple[np.ndarray, ...]
    """Per layer: ``time_steps × images × n_out`` booleans."""
    seconds: float
    """Wall time: writing the deck and running ngspice."""
    n_elements: int
    """Element lines of the deck."""
    metadata: dict = field(default_factory=dict)
    """ngspice version and backend, time step, time points."""

    @property
    def counts(self) -> np.ndarray:
        """Output spike counts, ``images × classes``."""
        return self.spikes[-1].sum(axis=0)


def _pulses(values: np.ndarray, schedule: LIFSchedule, v_read: float) -> str | None:
    """``PWL`` points of a word line driven at ``v_read·values[n, t]`` in the first layer's read
    phase of every image ``n`` and step ``t`` (None if it is never driven)."""
    steps = values.shape[1]
    e, w, t0 = schedule.t_edge, schedule.widths["read0"], schedule.starts["read0"]
    points = ["0 0"]
    for n, t in zip(*np.nonzero(values)):
        a = (n * steps + t) * schedule.t_step + t0
        v = _f(v_read * values[n, t])
        points += [f"{_f(a)} 0", f"{_f(a + e)} {v}", f"{_f(a + e + w)} {v}", f"{_f(a + 2 * e + w)} 0"]
    if len(points) == 1:
        return None
    return "\n+ ".join(" ".join(points[i:i + 8]) for i in range(0, len(points), 8))


def spiking_deck(mapped: MappedNetwork, config: SpikingConfig, images, lif: LIFCircuit = LIFCircuit(),
                 full: FullCircuitConfig = FullCircuitConfig()) -> SpikingDeck:
    """Write the transient deck of the spiking network ``config`` on the tiles of ``mapped``.

    Parameters
    ----------
    mapped : MappedNetwork
        A chain of Dense layers on their tiles (:func:`~circuitsim.network.mapped.map_network`).
    config : SpikingConfig
        Steps, neurons (refractory 0, score ``"count"``), encoding.
    images : array_like
        ``(n_images, n_in)`` intensities in [0, 1].
    lif : LIFCircuit
        Neuron sizes and clock timing.
    full : FullCircuitConfig
        TIA gain and amplifier rails (``extra_lines`` are appended).
    """
    LIFCircuit.check(config)
    snn = SpikingNetwork(mapped.network, config)
    x = snn.network.fit_input(images)
    if not len(x):
        raise ConfigError("give at least one image to the spiking deck")
    if (x.min() < 0 or x.max() > 1):
        raise ConfigError(f"the spiking deck takes intensities in [0, 1]; the images range over "
                          f"[{x.min():g}, {x.max():g}]")
    circuit, steps = mapped.circuit, config.time_steps
    crossbars = list(mapped.crossbars)
    schedule = lif.schedule(len(crossbars), circuit.t_read)
    params = lif.parameters(config, schedule)
    encoder = encode(config, x)
    inputs = np.stack([encoder(t) for t in range(steps)], axis=1)  # images × steps × n_in
    lines = [f"circuitsim spiking network: {len(crossbars)} layers, {len(x)} images x {steps} steps",
             f"* v_read = {circuit.v_read} V, t_read = {circuit.t_read} s, device {circuit.device.name}, "
             f"wires {circuit.wires}; neurons {config}"]
    clocks = ["leak"] + [f"{p}{k}" for k in range(len(crossbars)) for p in ("read", "latch", "reset")]
    lines.append("* clocks (0 to 1 V): leak, then per layer read, latch, reset; clear: every image's first leak phase")
    lines += [f"Vph_{name} ph_{name} 0 {schedule.pulse(name)}" for name in clocks]
    lines.append(f"Vph_clear ph_clear 0 {schedule.pulse('leak', steps * schedule.t_step)}")
    lines.append("* first-layer word lines: the encoder's inputs of every step, as read pulses")
    for i in range(inputs.shape[2]):
        points = _pulses(inputs[:, :, i], schedule, circuit.v_read)
        lines.append(f"Vx0_{i} x0_{i} 0 DC 0" if points is None else f"Vx0_{i} x0_{i} 0 PWL(\n+ {points})")
    v_read, widths = _f(circuit.v_read), []
    for k, crossbar in enumerate(crossbars):
        n_out, n_in = crossbar.n_out, crossbar.weights.shape[0] - int(crossbar.bias)
        widths.append(n_out)
        if k > 0 and n_in != widths[k - 1]:
            raise ConfigError(f"layer {k} takes {n_in} inputs but layer {k - 1} has {widths[k - 1]} neurons")
        if crossbar.bias:
            lines.append(f"Bx{k}_{n_in} x{k}_{n_in} 0 V = {v_read}*v(ph_read{k})")
        if k > 0:
            lines.append(f"* layer {k} word lines: layer {k - 1}'s latched spikes as read pulses")
            lines += [f"Bx{k}_{i} x{k}_{i} 0 V = {v_read}*v(ph_read{k})*v(s{k - 1}_{i})/{{vdd}}" for i in range(n_in)]
        bound = float(np.abs(crossbar.weights).sum(axis=0).max())
        slope = HEADROOM * full.v_amp / max(bound, 1e-12)  # volts per unit sum: no sum reaches the rails
        gain = snn.network.layers[crossbar.index].gain * crossbar.scale
        params[f"gin{k}"] = params["volts_per_unit"] * gain * lif.c_mem / (slope * schedule.area(f"read{k}"))
        lines.append(f"* layer {k}: crossbar tiles")
        nodes = layer_sum_lines(mapped, k, slope, full, lines)
        lines.append(f"* layer {k}: LIF neurons")
        for o, node in enumerate(nodes):
            lines += LIFCircuit.lines(f"{k}_{o}", k, node, f"gin{k}", config)
    n_elements = sum(1 for ln in lines[2:] if ln[:1].isalpha())
    head = [lines[0], lines[1], "* neuron sizes, transconductances and step, from the network's neuron fields",
            *(f".param {name} = {_f(value)}" for name, value in params.items())]
    text = "\n".join(head + lines[2:] + list(full.extra_lines) + [".end", ""])
    return SpikingDeck(text, schedule, params, tuple(widths), len(x), steps, n_elements)


def simulate_spiking(mapped: MappedNetwork, config: SpikingConfig, images, lif: LIFCircuit = LIFCircuit(),
                     full: FullCircuitConfig = FullCircuitConfig(), keep_dir: str | Path | None = None,
                     max_step: float | None = None) -> SpikingCircuitResult:
    """Run the whole spiking network's transient (:func:`spiking_deck`) in ngspice.

    Parameters
    ----------
    mapped, config, images, lif, full
        As :func:`spiking_deck`; ngspice runs on ``mapped.circuit.backend``.
    keep_dir : str or Path, optional
        Where a failing deck is kept (a new temporary folder otherwise).
    max_step : float, optional
        Largest time step of the transient, seconds (default: a tenth of ``lif.t_phase``,
        so that the leak's exponential is integrated closely).

    Returns
    -------
    SpikingCircuitResult

    Raises
    ------
    ConvergenceError, SimulationError
        From ngspice, with its message; the message names the file the deck was kept in.
    """
    from ..spice import get_backend

    start = time.perf_counter()
    deck = spiking_deck(mapped, config, images, lif, full)
    backend = get_backend(mapped.circuit.backend)
    tmax = lif.t_phase / 10 if max_step is None else max_step
    command = f"tran {_f(lif.t_edge)} {_f(deck.t_stop)} 0 {_f(tmax)}"
    (r,) = run_deck(deck.text, [[command]], deck.save, backend, keep_dir, "spiking")
    spikes = []
    for k, width in enumerate(deck.widths):
        at = deck.sample_times(k)
        volts = np.stack([np.interp(at, r["time"], r[f"v(s{k}_{o})"]) for o in range(width)], axis=-1)
        spikes.append(np.transpose(volts > 0.5 * lif.v_dd, (1, 0, 2)))  # steps × images × n_out
    meta = {"ngspice_version": backend.version, "ngspice_backend": backend.name, "t_step": deck.schedule.t_step,
            "time_points": len(r["time"]), "crossbars": "resistive netlists"}
    return SpikingCircuitResult(tuple(spikes), time.perf_counter() - start, deck.n_elements, meta)


def spike_agreement(circuit: tuple[np.ndarray, ...], evaluator: tuple[np.ndarray, ...]) -> dict[str, float]:
    """How well two sets of spike trains (per layer ``steps × images × n_out``) agree.

    Returns
    -------
    dict
        ``spikes_circuit`` and ``spikes_evaluator`` (events), ``agreement`` (events in both over
        events in either: 1 when every spike of either is a spike of the other) and
        ``entries_equal`` (fraction of all neuron-steps with the same state).
    """
    if len(circuit) != len(evaluator) or any(a.shape != b.shape for a, b in zip(circuit, evaluator)):
        raise ConfigError("the two sets of spike trains have different layers or shapes")
    both = sum(int(np.sum(a & b)) for a, b in zip(circuit, evaluator))
    either = sum(int(np.sum(a | b)) for a, b in zip(circuit, evaluator))
    equal = sum(int(np.sum(a == b)) for a, b in zip(circuit, evaluator))
    total = sum(a.size for a in circuit)
    return {"spikes_circuit": float(sum(int(a.sum()) for a in circuit)),
            "spikes_evaluator": float(sum(int(b.sum()) for b in evaluator)),
            "agreement": both / either if either else 1.0, "entries_equal": equal / total if total else 1.0}
