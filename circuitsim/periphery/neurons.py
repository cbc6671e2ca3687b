"""Analog neuron circuits in ngspice, their DC transfer curves, and the amplifier mapping.

Neurons (:class:`Neuron`) sit after a layer's differential amplifier, whose output
``V_amp`` (clipped to its rails ``±v_amp``) drives the neuron through a series offset
source ``Voff`` (``u = V_amp + offset`` is the neuron's own input):

- **sigmoid, transistor** — after the MRAM-based analog sigmoid neuron of Amin et al.
  (GLSVLSI 2022): a CMOS inverter (BSIM4 NMOS/PMOS of :data:`MODEL_CARD`, rails
  ``v_ss = -0.8 V`` and ``v_dd = +0.8 V``) with an input resistor ``r_in`` (8.49 kΩ, an
  MTJ in its parallel state) into its gate and a feedback resistor ``r_feedback``
  (25.46 kΩ, antiparallel state) from its output back to its gate: an inverting amplifier
  of gain ≈ -r_feedback/r_in that saturates softly at the rails, i.e. a (decreasing)
  sigmoid-like curve of ``u``.
- **relu, transistor** — an NMOS source follower (drain at ``v_dd``, bulk at ground) with a
  load resistor ``r_load`` to ground: the output follows ``u - V_th`` above threshold and
  is ≈ 0 V below, up to the rail.
- **behavioural** versions (B-sources) of both: ``mid - amp·tanh((u - centre)/width)`` and
  ``slope·soft·ln(1 + exp((u - knee)/soft))``; the defaults are fitted to the transistor
  versions with the default sizes by least squares over ``u`` in [-1.2, 1.2] V (largest
  deviation there: sigmoid 22 mV of its 1.54 V swing, relu 5 mV; ``tests/test_neurons.py``
  checks 30 mV and 10 mV).

:func:`extract_curve` runs an ngspice ``.dc`` sweep of ``u`` (offset 0) and returns the
transfer curve ``v = f(u)`` (a lookup table, linearly interpolated).
:func:`design_neuron` chooses how the normalized differential sum ``s`` of a layer (the
sum the trained network computes, ``h @ W + b``) reaches the neuron: ``V_amp = clip(k·s,
±v_amp)`` and ``Voff = c``, with ``k`` (V per unit sum) and ``c`` (V) fitted by least
squares so that the neuron's activation ``(f(k·s + c) - v_zero) / (v_one - v_zero)``
matches the trained ``sigmoid(g·s)`` over ``g·s`` in [-5, 5] (relu: ``max(g·s, 0)`` over
[-1, 2]), ``g`` being the layer's trained gain. ``v_zero`` and ``v_one`` are the
neuron's outputs at the amplifier's two rails (sigmoid), or at the lower rail and
``v_unit`` above it (relu); the next layer's input drivers map ``v_zero → 0`` and
``v_one → v_read`` (activation 1).

Public API
----------
MODEL_CARD, model_card, Neuron, NeuronCurve, NeuronDesign, supply_lines, extract_curve,
design_neuron
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.resources import files

import numpy as np

from ..errors import ConfigError
from ..tile.netlist import format_value as _f

MODEL_CARD = "generic_bsim4.lib"
"""File name (in ``circuitsim/models``) of the generic BSIM4 cards ``nch`` and ``pch``."""

KINDS = ("sigmoid", "relu")
MODELS = ("transistor", "behavioural")


def model_card() -> str:
    """Text of the shipped generic BSIM4 (level=54) model cards (not a foundry model)."""
    return (files("circuitsim.periphery") / "models" / MODEL_CARD).read_text()


@dataclass(frozen=True)
class Neuron:
    """One analog neuron circuit (see the module docstring); SI units throughout."""

    kind: str = "sigmoid"
    """``"sigmoid"`` (inverter with resistive input and feedback) or ``"relu"`` (source follower)."""
    model: str = "transistor"
    """``"transistor"`` (BSIM4 MOSFETs) or ``"behavioural"`` (one B-source)."""
    v_dd: float = 0.8
    """Positive supply rail, volts."""
    v_ss: float = -0.8
    """Negative supply rail (sigmoid only; the relu's source side is ground), volts."""
    r_in: float = 8.49e3
    """Sigmoid input resistance, ohm (SOT-MRAM parallel state, Amin et al.)."""
    r_feedback: float = 25.46e3
    """Sigmoid feedback resistance, ohm (SOT-MRAM antiparallel state)."""
    w_n: float = 1e-6
    """NMOS width, metres."""
    w_p: float = 3e-6
    """PMOS width (sigmoid), metres."""
    length: float = 120e-9
    """Channel length of both transistors, metres."""
    r_load: float = 25.46e3
    """Relu load resistance to ground, ohm."""
    offset: float = 0.0
    """Series offset source ``Voff`` between the amplifier and the neuron input, volts."""
    b_mid: float = -0.004912
    """Behavioural sigmoid: output at the centre, volts."""
    b_amp: float = 0.7705
    """Behavioural sigmoid: half swing, volts."""
    b_centre: float = -0.04076
    """Behavioural sigmoid: input at the centre, volts."""
    b_width: float = 0.2884
    """Behavioural sigmoid: tanh width, volts."""
    b_slope: float = 0.7085
    """Behavioural relu: slope above the knee, V/V."""
    b_knee: float = 0.3701
    """Behavioural relu: knee input, volts."""
    b_soft: float = 0.07991
    """Behavioural relu: softness of the knee, volts."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"neuron kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.model not in MODELS:
            raise ConfigError(f"neuron model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("v_dd", "r_in", "r_feedback", "w_n", "w_p", "length", "r_load", "b_amp",
                     "b_width", "b_slope", "b_soft"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ConfigError(f"neuron {name} must be a finite number > 0, got {value!r}")
        if not (isinstance(self.v_ss, (int, float)) and -float("inf") < self.v_ss < 0):
            raise ConfigError(f"neuron v_ss must be a finite negative voltage, got {self.v_ss!r}")

    @property
    def supplies(self) -> dict[str, float]:
        """Supply sources the neuron draws from, ``{source name: volts}`` (none if behavioural)."""
        if self.model == "behavioural":
            return {}
        return {"Vnvdd": self.v_dd} if self.kind == "relu" else {"Vnvdd": self.v_dd, "Vnvss": self.v_ss}

    def lines(self, tag: str, inp: str, out: str) -> list[str]:
        """Element lines of one neuron from amplifier node ``inp`` to output node ``out``.

        Elements and internal nodes carry ``tag`` (e.g. ``"2_17"``): the offset source is
        ``Voff<tag>``; the neuron input node is ``nu<tag>``.
        """
        u = f"nu{tag}"
        lines = [f"Voff{tag} {u} {inp} DC {_f(self.offset)}"]  # V(u) = V(inp) + offset
        if self.model == "behavioural":
            if self.kind == "sigmoid":
                expr = f"{_f(self.b_mid)}-{_f(self.b_amp)}*tanh((v({u})-({_f(self.b_centre)}))/{_f(self.b_width)})"
            else:
                s = _f(self.b_soft)
                expr = f"{_f(self.b_slope)}*{s}*ln(1+exp((v({u})-({_f(self.b_knee)}))/{s}))"
            return lines + [f"Bn{tag} {out} 0 V = {expr}"]
        size = f"L={_f(self.length)} W="
        if self.kind == "sigmoid":
            x = f"nx{tag}"
            return lines + [
                f"Rnin{tag} {u} {x} {_f(self.r_in)}",
                f"Rnfb{tag} {x} {out} {_f(self.r_feedback)}",
                f"Mnp{tag} {out} {x} nvdd nvdd pch {size}{_f(self.w_p)}",
                f"Mnn{tag} {out} {x} nvss nvss nch {size}{_f(self.w_n)}",
            ]
        return lines + [f"Mnf{tag} nvdd {u} {out} 0 nch {size}{_f(self.w_n)}",
                        f"Rnl{tag} {out} 0 {_f(self.r_load)}"]


def supply_lines(*neurons: Neuron) -> list[str]:
    """Supply sources (``Vnvdd``/``Vnvss``) and model cards that the neurons' lines need."""
    supplies = {}
    for neuron in neurons:
        for name, volts in neuron.supplies.items():
            if supplies.setdefault(name, volts) != volts:
                raise ConfigError(f"neurons of one deck must share their supplies; {name} is "
                                  f"{supplies[name]} V and {volts} V")
    if not supplies:
        return []
    return ["* neuron supplies", *(f"{name} {name[1:]} 0 DC {_f(v)}" for name, v in supplies.items()),
            "", model_card()]


@dataclass(frozen=True, eq=False)
class NeuronCurve:
    """DC transfer curve ``v = f(u)`` of a neuron with offset 0, extracted by ngspice."""

    neuron: Neuron
    """The neuron (its ``offset`` is ignored: ``u`` is the neuron's own input)."""
    u: np.ndarray
    """Input voltages, increasing, volts."""
    v: np.ndarray
    """Output voltages, volts."""
    supply_power: np.ndarray
    """Power delivered by the neuron's supplies at each ``u``, watts."""

    def __call__(self, u) -> np.ndarray:
        """Output voltage at input(s) ``u`` (linear interpolation; held beyond the ends)."""
        return np.interp(u, self.u, self.v)


def extract_curve(neuron: Neuron, u_min: float = -1.2, u_max: float = 1.2, step: float = 2e-3,
                  backend: str = "shared") -> NeuronCurve:
    """Sweep the neuron's input with an ngspice ``.dc`` analysis (offset 0).

    Parameters
    ----------
    neuron : Neuron
        The circuit.
    u_min, u_max, step : float
        Sweep range and step of the input ``u``, volts.
    backend : {"shared", "subprocess"}
        ngspice backend.
    """
    from ..spice import get_backend

    if not (u_min < u_max and step > 0):
        raise ConfigError(f"neuron sweep needs u_min < u_max and step > 0, got {u_min}, {u_max}, {step}")
    n = replace(neuron, offset=0.0)
    deck = "\n".join([f"circuitsim neuron {n.kind} {n.model}", "Vamp amp 0 DC 0",
                      *n.lines("0", "amp", "out"), *supply_lines(n),
                      ".options reltol=1e-6 vntol=1e-9", ".end", ""])  # a tight lookup table
    save = ["v(out)", *(f"i({s.lower()})" for s in n.supplies)]
    (r,) = get_backend(backend).run(deck, [[f"dc vamp {_f(u_min)} {_f(u_max)} {_f(step)}"]], save=save)
    v = r["v(out)"]
    power = -sum(volts * r[f"i({s.lower()})"] for s, volts in n.supplies.items()) + np.zeros_like(v)
    u = u_min + step * np.arange(len(v))
    return NeuronCurve(n, u, v, power)


@dataclass(frozen=True, eq=False)
class NeuronDesign:
    """A neuron with its amplifier mapping, fitted to a trained activation (module docstring)."""

    curve: NeuronCurve
    """The neuron's transfer curve (offset 0)."""
    offset: float
    """Offset source value ``c``, volts."""
    volts_per_unit: float
    """Amplifier slope ``k``: ``V_amp = k·s`` for a normalized sum ``s``, volts."""
    v_amp: float
    """Amplifier output rails ``±v_amp``, volts."""
    v_zero: float
    """Neuron output voltage of activation 0, volts."""
    v_one: float
    """Neuron output voltage of activation 1, volts."""
    target: str
    """Activation fitted: ``"sigmoid"`` or ``"relu"``."""
    gain: float
    """Trained gain ``g`` of the layer (``target(g·s)``)."""
    rms_error: float = field(default=0.0)
    """RMS difference between the neuron's activation and the target over the fitted range."""

    @property
    def neuron(self) -> Neuron:
        """The neuron with its offset source set."""
        return replace(self.curve.neuron, offset=self.offset)

    def amplifier_voltage(self, s) -> np.ndarray:
        """Difference-amplifier output for normalized sums ``s``, volts."""
        return np.clip(self.volts_per_unit * np.asarray(s, dtype=float), -self.v_amp, self.v_amp)

    def output_voltage(self, s) -> np.ndarray:
        """Neuron output voltage for normalized sums ``s``, volts."""
        return self.curve(self.amplifier_voltage(s) + self.offset)

    def activation(self, s) -> np.ndarray:
        """Neuron activation (what the next layer's drivers apply, in units of ``v_read``)."""
        return (self.output_voltage(s) - self.v_zero) / (self.v_one - self.v_zero)


def _target(kind: str, z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z)) if kind == "sigmoid" else np.maximum(z, 0.0)


def design_neuron(curve: NeuronCurve, target: str, gain: float, v_amp: float = 0.8,
                  v_unit: float = 0.25) -> NeuronDesign:
    """Fit the amplifier slope and the offset so the neuron approximates ``target(gain·s)``.

    Parameters
    ----------
    curve : NeuronCurve
        Extracted curve; its ``u`` range must cover ``[-v_amp + c, v_amp + c]``.
    target : {"sigmoid", "relu"}
        Trained activation.
    gain : float
        Trained gain of the layer (dimensionless, > 0).
    v_amp : float
        Difference-amplifier rails ``±v_amp``, volts.
    v_unit : float
        Relu only: output volts above ``v_zero`` of activation 1.
    """
    from scipy.optimize import minimize

    if target not in KINDS:
        raise ConfigError(f"target activation must be one of {', '.join(KINDS)}, got {target!r}")
    if not (gain > 0 and v_amp > 0 and v_unit > 0):
        raise ConfigError(f"gain, v_amp and v_unit must be > 0, got {gain}, {v_amp}, {v_unit}")
    z = np.linspace(-5, 5, 201) if target == "sigmoid" else np.linspace(-1, 2, 151)
    want = _target(target, z)
    slopes = np.gradient(curve.v, curve.u)
    if target == "sigmoid":  # start: centres matched, slope 1/4 per unit z at the centre
        centre = int(np.argmin(np.abs(curve.v - 0.5 * (curve.v[0] + curve.v[-1]))))
        start = (abs(curve.v[-1] - curve.v[0]) / (4 * slopes[centre]), curve.u[centre])
    else:  # start: knee at s = 0, slope 1 per unit z above it
        rise = curve.v - curve.v.min()
        knee = int(np.argmax(rise > 0.02 * np.ptp(curve.v)))
        start = (v_unit / slopes[min(knee + 50, len(slopes) - 1)], curve.u[knee])

    def levels(alpha, c):
        """Outputs of activation 0 and 1: the neuron at the amplifier rails (sigmoid)."""
        zero = float(curve(-np.sign(alpha) * v_amp + c))
        if target == "sigmoid":
            return zero, float(curve(np.sign(alpha) * v_amp + c))
        return zero, zero + v_unit * np.sign(alpha * slopes.mean())

    def activation(params, zz):
        alpha, c = params
        zero, one = levels(alpha, c)
        return (curve(np.clip(alpha * zz, -v_amp, v_amp) + c) - zero) / (one - zero)

    res = minimize(lambda p: float(np.mean((activation(p, z) - want) ** 2)), np.array(start, float),
                   method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000})
    alpha, c = (float(v) for v in res.x)
    zero, one = levels(alpha, c)
    rms = float(np.sqrt(np.mean((activation(res.x, z) - want) ** 2)))
    if c - v_amp < curve.u[0] - 1e-9 or c + v_amp > curve.u[-1] + 1e-9:
        raise ConfigError(f"the neuron curve spans u in [{curve.u[0]:g}, {curve.u[-1]:g}] V but the "
                          f"design needs ±{v_amp:g} V around {c:+.3f} V; extract a wider curve")
    return NeuronDesign(curve, c, alpha * gain, v_amp, float(zero), float(one), target, float(gain), rms)
