"""Spiking networks: LIF neurons after every crossbar layer, input encodings, input-aware early stop.

A :class:`SpikingNetwork` is a chain of Dense crossbar layers (a
:class:`~circuitsim.network.network.Network` of Dense and Activation layers; the activations
are replaced by the neurons) run for ``time_steps`` steps. At every step ``t``:

1. the **encoder** turns every image into the first layer's word-line inputs ``h₀[t]``
   (:data:`ENCODINGS`): ``"rate"`` — a Bernoulli spike per pixel and step with probability
   the pixel's intensity, drawn from ``SeedSequence(encoding_seed)``; ``"current"`` — the
   intensities themselves every step (direct current); ``"latency"`` — one spike per pixel,
   at step ``round((1 − p)(T − 1))`` for intensity ``p > 0`` (bright pixels first), none for 0;
2. every crossbar layer ``k`` turns its inputs into currents ``I = gain · (h @ W + b)``:
   spikes drive the word lines as read pulses of ``v_read`` (the bias row at ``v_read``
   every step), so on a :class:`~circuitsim.network.mapped.MappedNetwork` each step's
   product goes through the tiles (their ``T``, device statistics, ADCs) with its read noise
   drawn anew for every step;
3. its **LIF neurons** (:class:`SpikingConfig`) integrate them. A neuron that is not
   refractory updates ``v ← β v + I`` (``β = leak``, or ``exp(−1/tau)`` for a membrane
   time constant of ``tau`` steps; ``β = 1`` is an integrate-and-fire neuron), fires when
   ``v > threshold`` and is reset to 0 (``reset = "zero"``) or by ``v ← v − threshold``
   (``"subtract"``); for ``refractory`` steps after a spike it holds ``v`` and ignores its
   input. Its spikes are the next layer's inputs at the same step.

The **score** of every class is the output layer's spike count so far (``score = "count"``)
or the membrane potential of non-firing output neurons (``"potential"``); the prediction is
its argmax (ties: the lowest class).

**Input-aware early stop** (PRIME; Wang et al., "Topology Optimization of Random Memristors
for Input-Aware Dynamic SNN"): with ``early_stop_margin = m > 0`` an image stops after the
first step at which its leading score exceeds the runner-up's by more than ``m``; its
prediction is then final and its crossbars are not read again. :class:`SpikingRun` reports
the steps used per image, ``steps_mean`` and ``computation_saved`` (the fraction of the
crossbar reads of ``T`` steps that were not done). The encoder draws every image's inputs of
every step whether it stopped or not, so a run with early stop sees the same spikes as one
without.

Public API
----------
SpikingConfig, SPIKING_PRESETS, ENCODINGS, SCORES, RESETS, SPIKING_KEYS, SpikingNetwork, SpikingRun,
encode, evaluate_mapped
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from ..periphery.costs import ISAAC_COSTS, CostTable
from .layers import Activation, Dense
from .crossbar_layer import energy_summary
from .mapped import MappedNetwork
from .network import Network

ENCODINGS = ("rate", "current", "latency")
"""How images become the first layer's inputs (module notes)."""
SCORES = ("count", "potential")
"""What a class's score is: the output neurons' spike counts or their membrane potentials."""
RESETS = ("zero", "subtract")
"""What a spike does to its neuron's membrane potential."""


@dataclass(frozen=True)
class SpikingConfig:
    """Time steps, LIF neurons, input encoding, score and early stop of a spiking network."""

    time_steps: int = 16
    """Steps per inference (≥ 1)."""
    threshold: float = 1.0
    """Membrane potential above which a neuron fires (> 0; in the layer's output units: one
    unit weight times one input at full ``v_read``, times the layer's gain)."""
    leak: float = 1.0
    """Fraction ``β`` of the membrane potential kept per step, in (0, 1] (1: no leak)."""
    tau: float | None = None
    """Membrane time constant in steps (> 0); when given it sets ``β = exp(−1/tau)`` and
    ``leak`` must stay at its default."""
    reset: str = "zero"
    """``"zero"``: a spike sets ``v = 0``; ``"subtract"``: ``v ← v − threshold``."""
    refractory: int = 0
    """Steps after a spike during which the neuron holds ``v`` and ignores its input (≥ 0)."""
    encoding: str = "rate"
    """One of :data:`ENCODINGS`."""
    encoding_seed: int = 0
    """Seed of the rate encoding's Bernoulli draws."""
    score: str = "count"
    """One of :data:`SCORES`."""
    early_stop_margin: float = 0.0
    """Margin ``m`` (≥ 0) by which the leading score must exceed the runner-up's to stop an
    image early; 0: every image runs all steps."""
    surrogate_epochs: int = 0
    """Epochs of surrogate-gradient training through time (:mod:`circuitsim.network.spiking_training`)
    of trained float weights, or of a random network's mask (``training = "mask"``); 0: the
    non-spiking network's weights (or mask) as they are."""

    def __post_init__(self):
        def number(name: str, low: float, high: float, closed_low: bool) -> float:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not ((low <= value) if closed_low else (low < value)) or not value <= high:
                interval = f"{'[' if closed_low else '('}{low:g}, {high:g}]"
                raise ConfigError(f"network.{name} must be a number in {interval}, got {value!r}")
            return float(value)

        for name in ("time_steps", "refractory", "encoding_seed", "surrogate_epochs"):
            value = getattr(self, name)
            low = 1 if name == "time_steps" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"network.{name} must be an integer >= {low}, got {value!r}")
        object.__setattr__(self, "threshold", number("threshold", 0.0, math.inf, False))
        object.__setattr__(self, "leak", number("leak", 0.0, 1.0, False))
        if self.tau is not None:
            object.__setattr__(self, "tau", number("tau", 0.0, math.inf, False))
            if self.leak != 1.0:
                raise ConfigError("give the neurons' leak per step (network.leak) or their time constant "
                                  "(network.tau), not both")
        object.__setattr__(self, "early_stop_margin", number("early_stop_margin", 0.0, math.inf, True))
        for name, allowed in (("reset", RESETS), ("encoding", ENCODINGS), ("score", SCORES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"network.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @property
    def beta(self) -> float:
        """Fraction of the membrane potential kept per step: ``leak``, or ``exp(−1/tau)``."""
        return math.exp(-1.0 / self.tau) if self.tau is not None else self.leak

    def replace(self, **changes) -> SpikingConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def calibration_pass(self, network: Network) -> Callable[[ArrayLike, Callable[[int, np.ndarray], np.ndarray]],
                                                             None]:
        """The pass that sets a tile's ADC range: ``network`` run as this spiking network
        (:meth:`SpikingNetwork.calibration_pass`; ``map_network(..., spiking=config)``)."""
        return SpikingNetwork(network, self).calibration_pass

    @classmethod
    def preset(cls, name: str) -> SpikingConfig:
        """A named configuration of :data:`SPIKING_PRESETS`."""
        if name not in SPIKING_PRESETS:
            raise ConfigError(f"unknown spiking preset {name!r}; choose one of {', '.join(SPIKING_PRESETS)}")
        return SPIKING_PRESETS[name]


SPIKING_PRESETS = {
    "lif": SpikingConfig(tau=4.0, reset="zero"),
    "if": SpikingConfig(leak=1.0, reset="subtract"),
    "if-early-stop": SpikingConfig(leak=1.0, reset="subtract", early_stop_margin=2.0),
}
"""Named configurations: ``"lif"`` (τ = 4 steps, reset to zero), ``"if"`` (integrate-and-fire,
reset by subtraction: the rate of a hidden neuron follows its mean input, as in ANN-to-SNN
conversion) and ``"if-early-stop"`` (that, stopping at a margin of 2 spikes)."""

SPIKING_KEYS = {f.name for f in dataclasses.fields(SpikingConfig)}
"""``[network]`` keys of a spiking network beyond the MLP's (and the random network's)."""


def encode(config: SpikingConfig, x: np.ndarray) -> Callable[[int], np.ndarray]:
    """The encoder of images ``x`` (``N × n_in`` intensities in [0, 1]): a function of the step
    returning every image's first-layer inputs at that step (call it for steps 0, 1, … in order)."""
    if config.encoding == "current":
        return lambda t: x
    if config.encoding == "latency":
        last = config.time_steps - 1
        fire = np.where(x > 0, np.rint((1.0 - np.clip(x, 0.0, 1.0)) * last), -1)
        return lambda t: (fire == t).astype(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(config.encoding_seed))
    return lambda t: (rng.random(x.shape) < x).astype(np.float64)


@dataclass(frozen=True, eq=False)
class SpikingRun:
    """What a spiking network did on a batch of images."""

    scores: np.ndarray
    """``N × classes``: the output layer's spike counts (or membrane potentials) when each
    image stopped."""
    steps: np.ndarray
    """Steps each image ran (``time_steps`` unless it stopped early)."""
    time_steps: int
    """Steps per inference without early stop."""
    spikes: tuple[np.ndarray, ...] | None = None
    """With ``record``: every layer's spikes, ``time_steps × N × n_out`` booleans (none after an
    image stopped; the output layer's none with ``score = "potential"``)."""

    @property
    def predictions(self) -> np.ndarray:
        """The leading class of every image."""
        return np.argmax(self.scores, axis=1)

    @property
    def steps_mean(self) -> float:
        """Mean steps per image."""
        return float(np.mean(self.steps)) if len(self.steps) else 0.0

    @property
    def computation_saved(self) -> float:
        """Fraction of the crossbar reads of ``time_steps`` steps not done (early stop)."""
        return 1.0 - self.steps_mean / self.time_steps

    def accuracy(self, y: ArrayLike) -> float:
        """Fraction of images whose prediction is their label."""
        return float(np.mean(self.predictions == np.asarray(y)))


class SpikingNetwork:
    """A chain of Dense layers with LIF neurons after each, run in time steps (module notes).

    Parameters
    ----------
    network : Network
        Dense layers, each optionally followed by an Activation (replaced by the neurons), on
        flat inputs; an :class:`~circuitsim.network.mlp.MLP` is taken as :meth:`Network.from_mlp`.
    config : SpikingConfig
        Time steps, neurons, encoding, score and early stop.
    """

    def __init__(self, network, config: SpikingConfig):
        network = network if isinstance(network, Network) else Network.from_mlp(network)
        for k, layer in enumerate(network.layers):
            if not isinstance(layer, (Dense, Activation)):
                raise ConfigError(f"layer {k} of {network.name!r} is a {type(layer).__name__}; a spiking network "
                                  "has Dense layers only (their activations become LIF neurons)")
        if len(network.input_shape) != 1 or any(s != (k,) for k, s in enumerate(network.sources)):
            raise ConfigError(f"a spiking network is a chain of Dense layers on flat inputs; {network.name!r} takes "
                              f"inputs of shape {network.input_shape} or has residual connections")
        self.network, self.config = network, config
        self.dense = network.crossbar_layers

    def run(self, x: ArrayLike, mac: Callable[[int, np.ndarray], np.ndarray] | None = None,
            record: bool = False, early_stop: bool = True) -> SpikingRun:
        """Run images ``x`` (intensities in [0, 1]) for the configured steps.

        ``mac(k, rows)``, when given, computes crossbar layer ``k``'s sums for its rows (the
        tiles; :meth:`~circuitsim.network.mapped.MappedNetwork.layer_mac`), called once per layer
        and step with the rows of the images still running; ``record`` keeps every layer's
        spikes; ``early_stop = False`` ignores the configured margin.
        """
        cfg = self.config
        x = self.network.fit_input(x)
        if x.size and (x.min() < 0 or x.max() > 1) and cfg.encoding != "current":
            raise ConfigError(f"the {cfg.encoding} encoding takes intensities in [0, 1]; the images range over "
                              f"[{x.min():g}, {x.max():g}]: scale them, or use encoding = \"current\"")
        n, steps_total = len(x), cfg.time_steps
        layers = [self.network.layers[k] for k in self.dense]
        widths = [layer.weight.shape[1] for layer in layers]
        potential_out = cfg.score == "potential"
        v = [np.zeros((n, w)) for w in widths]
        dead = [np.zeros((n, w), np.int64) for w in widths]  # refractory steps left
        counts = np.zeros((n, widths[-1]))
        steps = np.full(n, steps_total, np.int64)
        spikes = tuple(np.zeros((steps_total, n, w), bool) for w in widths) if record else None
        margin = cfg.early_stop_margin if early_stop else 0.0
        encoder = encode(cfg, x)
        active = np.arange(n)
        for t in range(steps_total):
            h = encoder(t)[active]
            for i, (k, layer) in enumerate(zip(self.dense, layers)):
                current = layer.apply(h, None if mac is None else (lambda rows, k=k: mac(k, rows)))
                if potential_out and i == len(layers) - 1:
                    v[i][active] = cfg.beta * v[i][active] + current
                    break
                fired = self._neurons(v[i], dead[i], active, current)
                if spikes is not None:
                    spikes[i][t, active] = fired
                h = fired.astype(np.float64)
            else:
                counts[active] += h
            if margin > 0 and len(active):
                scores = (v[-1] if potential_out else counts)[active]
                top = np.partition(scores, -2, axis=1)[:, -2:] if scores.shape[1] > 1 else None
                done = (top[:, 1] - top[:, 0] > margin) if top is not None else np.zeros(len(active), bool)
                steps[active[done]] = t + 1
                active = active[~done]
            if not len(active):
                break
        return SpikingRun(v[-1].copy() if potential_out else counts, steps, steps_total, spikes)

    def _neurons(self, v: np.ndarray, dead: np.ndarray, active: np.ndarray, current: np.ndarray) -> np.ndarray:
        """One step of the LIF neurons of the images ``active`` (updates ``v`` and ``dead`` in
        place); their spikes."""
        cfg = self.config
        va, da = v[active], dead[active]
        free = da == 0
        va = np.where(free, cfg.beta * va + current, va)
        fired = free & (va > cfg.threshold)
        if cfg.reset == "zero":
            va[fired] = 0.0
        else:
            va[fired] -= cfg.threshold
        v[active] = va
        dead[active] = np.where(fired, cfg.refractory, np.maximum(da - 1, 0))
        return fired

    def predict(self, x: ArrayLike) -> np.ndarray:
        """The leading class of every image (float weights, early stop as configured)."""
        return self.run(x).predictions

    def accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        """Fraction of images classified as their label (float weights, early stop as configured)."""
        return self.run(x).accuracy(y)

    def calibration_pass(self, x: ArrayLike, mac: Callable[[int, np.ndarray], np.ndarray]) -> None:
        """Call ``mac(k, rows)`` once per crossbar layer with the rows it reads over all steps
        of images ``x`` (the float run's spikes): what sets the ADC ranges of a spiking network."""
        x = self.network.fit_input(x)
        run = self.run(x, record=True, early_stop=False)
        encoder = encode(self.config, x)
        first = np.concatenate([encoder(t) for t in range(self.config.time_steps)])
        inputs = [first] + [s.reshape(-1, s.shape[-1]).astype(np.float64) for s in run.spikes or ()]
        for k, rows in zip(self.dense, inputs):
            mac(k, rows)


def evaluate_mapped(mapped: MappedNetwork, config: SpikingConfig, x: ArrayLike, y: ArrayLike,
                    use_adc: bool = True, costs: CostTable = ISAAC_COSTS) -> dict[str, float]:
    """Accuracy, steps, computation saved and energy per inference of the spiking network
    ``config`` on the tiles of ``mapped`` for images ``x`` with labels ``y``.

    Returns
    -------
    dict
        ``accuracy``, ``steps_mean``, ``computation_saved`` and the energies of
        :func:`~circuitsim.network.crossbar_layer.energy_summary` (J per image: the read pulses of
        the steps each image used, one conversion per tile output and step with ADCs, and the
        DAC conversions of those steps when a DAC is configured; ``costs`` prices DACs and shift-adds).
    """
    snn = SpikingNetwork(mapped.network, config)
    n = len(np.asarray(x))
    joules = [0.0]

    def mac(k: int, rows: np.ndarray) -> np.ndarray:
        joules[0] += mapped.layer_energy(k, rows, n)
        return mapped.layer_mac(k, rows, use_adc)

    run = snn.run(x, mac)
    conversions = mapped.conversions_per_inference * run.steps_mean
    dac_conversions = sum(c.dac_conversions for c in mapped.crossbars) * run.steps_mean
    return {"accuracy": run.accuracy(y), "steps_mean": run.steps_mean, "computation_saved": run.computation_saved,
            **energy_summary(joules[0], mapped.circuit, conversions, dac_conversions, costs)}
