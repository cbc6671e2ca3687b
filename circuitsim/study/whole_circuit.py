"""Whole-circuit decks: every tile of a layer with its amplifiers and neurons, in ngspice.

A layer ``k`` of the deck holds, for inputs ``x<k>_<i>`` (node voltages ``v_read·h``):

- every tile of the layer (:func:`circuitsim.tile.crossbar.build_circuit`, the same circuit
  whose ``T`` the evaluator uses; wire capacitors are left out: they are open at DC; nonlinear
  cells as the tiles' own decks write them, :func:`~circuitsim.tile.nonlinear_run.cell_lines`), each
  bit line read at virtual ground by a TIA (VCVS op-amp of gain ``tia_gain`` and feedback
  ``r_tia = v_amp / (rows · v_read · g_max)``, so that with inputs up to ``v_read`` no TIA
  output exceeds ``±v_amp``), or with ``circuit.readout = "sense"`` ending in its sense resistor
  ``Rsense<j>`` (``circuit.r_sense`` to ground, :func:`~circuitsim.tile.readout.sense_resistor_circuit`);
- per output ``o`` a summing difference amplifier ``Bd<k>_<o>`` (B-source) adding the
  ``V_tia- - V_tia+`` (or ``V_sns+ - V_sns-``) of every horizontal partition: ``V_amp = clip(A·Σ, ±v_amp)`` with
  ``A`` such that ``V_amp = k·s`` for the normalized sum ``s`` (:mod:`circuitsim.periphery.neurons`);
- the neuron (:class:`~circuitsim.periphery.neurons.Neuron`) with its offset source;
- the next layer's input drivers ``Ex<k+1>_<o>`` (VCVS): ``v_read·(V_o - v_zero)/(v_one -
  v_zero)``, and a bias row held at ``v_read``.

The first layer's inputs are B-sources ``pwl(v(idx), ...)`` of a dummy source ``Vidx``:
image ``n`` is applied at ``V(idx) = n``, so one ``.dc`` sweep of ``Vidx`` over ``0 … N-1``
gives one DC operating point per image, each starting from the previous image's solution.
``analysis="op"`` instead alters ``Vidx`` and runs one ``op`` per image (same deck, same
points within the Newton tolerance), for small circuits only: ngspice 46 tears the circuit
down before every further analysis, deleting each branch equation by a linear search of
the node list — O(sources × nodes), minutes per image for the decks of
``examples/amin2022.toml``. ``scope="network"`` puts every layer in one deck (the
default: one ngspice run per configuration); ``scope="layer"`` runs one deck per layer,
driven by the previous deck's neuron outputs (through the same driver map).

Power per image: crossbars ``Σ -V·I`` of every word-line driver (inputs, bias rows, next-
layer drivers); neurons ``Σ -V·I`` of their supplies and offset sources; amplifiers (TIAs
and difference amplifiers, behavioural) ``v_amp·Σ|I_out|`` — each output current drawn
from the rail on its side, no quiescent current. A TIA's output current is its bit line's
current, and every bit-line current flows from word lines at ``>= 0 V`` into a virtual
ground, so their sum is the drivers' total current (KCL; sense resistors draw nothing from the
rails: their power is the drivers'); a difference amplifier's output current is its neuron's
offset-source current. Only those source currents are saved:
ngspice 46 looks every saved vector up by a linear search over all nodes when an analysis
starts, so thousands of saved TIA currents would cost minutes. Energy = power × ``t_read``.

Public API
----------
FullCircuitConfig, Deck, FullCircuitResult, network_deck, simulate_network, layer_sum_lines
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SimulationError
from ..network.mapped import MappedNetwork
from ..periphery.neurons import NeuronDesign, supply_lines
from ..spice.base import kept_deck, run_deck
from ..tile.crossbar import TIA, Tile, build_circuit
from ..tile.netlist import format_value as _f
from ..tile.nonlinear_run import cell_lines, tile_wires
from ..tile.readout import sense_resistor_circuit
from .layer_decks import circuit_lines, imac_layer_lines, node_namer


@dataclass(frozen=True)
class FullCircuitConfig:
    """How the whole circuit is simulated."""

    tia_gain: float = 1e5
    """Open-loop gain of the TIA op-amps (VCVS), V/V."""
    v_amp: float = 0.8
    """Rails of the amplifiers (TIAs, difference amplifiers), ``±v_amp`` volts."""
    scope: str = "network"
    """``"network"``: one deck for the whole network; ``"layer"``: one deck per layer."""
    analysis: str = "dc"
    """``"dc"``: one ``.dc`` sweep over the images; ``"op"``: ``alter`` + ``op`` per image."""
    extra_lines: tuple[str, ...] = ()
    """Extra lines appended to every deck (e.g. ``".options reltol=1e-4"``, or elements)."""

    def __post_init__(self):
        if self.scope not in ("network", "layer"):
            raise ConfigError(f"scope must be 'network' or 'layer', got {self.scope!r}")
        if self.analysis not in ("dc", "op"):
            raise ConfigError(f"analysis must be 'dc' or 'op', got {self.analysis!r}")
        for name in ("tia_gain", "v_amp"):
            if not (0 < getattr(self, name) < float("inf")):
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True, eq=False)
class Deck:
    """An ngspice deck of one or more layers and the names needed to read it back."""

    text: str
    """The deck (ends with ``.end``)."""
    outputs: dict[int, list[str]]
    """Neuron output nodes by layer."""
    drivers: list[tuple[str, object]]
    """Word-line drivers ``(source name, voltage)``; the voltage is a number, a column of
    the inputs (``("input", i)``) or a neuron output through a driver (``("neuron", k, o)``)."""
    inputs: np.ndarray
    """First-layer input voltages, ``(n_images, n_in)``."""
    driver_maps: dict[int, tuple[float, float]]
    """Per layer ``k``: ``(gain, v_zero)`` of the drivers it feeds (``gain·(V_o - v_zero)``)."""
    neuron_sources: dict[str, float]
    """Neuron supplies and offset sources (offsets: the difference-amplifier output
    currents), with their DC voltages."""
    n_elements: int
    """Element lines in the deck."""
    tias: bool = True
    """Whether TIAs read the bit lines (their currents drawn from the rails); False: sense resistors."""

    @property
    def save(self) -> list[str]:
        """Vectors to keep."""
        names = [f"v({n})" for nodes in self.outputs.values() for n in nodes]
        sources = [s for s, _ in self.drivers] + list(self.neuron_sources)
        return names + [f"i({s.lower()})" for s in sources]


def _pwl(name: str, node: str, values: np.ndarray) -> str:
    if np.all(values == values[0]):
        return f"{name.replace('B', 'V', 1)} {node} 0 DC {_f(values[0])}"
    change = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change - 1, [len(values) - 1]])
    pts = []
    for s, e in zip(starts, ends):
        pts += [f"{s}, {_f(values[s])}"] + ([f"{e}, {_f(values[e])}"] if e > s else [])
    body = ",\n+ ".join(", ".join(pts[i:i + 8]) for i in range(0, len(pts), 8))
    return f"{name} {node} 0 V = pwl(v(idx),\n+ {body})"


def _mlp(mapped: MappedNetwork):
    """The mapped network's MLP, whose whole circuit is written (one line if it has none)."""
    if mapped.mlp is None:
        raise ConfigError("a whole-circuit deck is written for multilayer perceptrons (their neurons are circuits); "
                          "validate a CNN or ONNX network layer by layer (--scope layer)")
    return mapped.mlp


def network_deck(mapped: MappedNetwork, designs: tuple[NeuronDesign, ...], inputs: np.ndarray,
                 config: FullCircuitConfig = FullCircuitConfig(), layers=None) -> Deck:
    """Write the deck of ``layers`` (all by default) driven by ``inputs`` (one row per image).

    Parameters
    ----------
    mapped : MappedNetwork
        An MLP on its tiles (:func:`~circuitsim.network.mapped.map_network`): the deck holds the
        very cells that were characterized (device statistics drawn; drift compensation
        factors), its partitions, device, wires and ``v_read``.
    designs : tuple of NeuronDesign
        One per layer.
    inputs : ndarray
        ``(n_images, n_in)`` input voltages of the first layer of the deck, volts.
    config : FullCircuitConfig
        TIA, rails, extra lines.
    layers : sequence of int, optional
        Consecutive layer indices.

    Returns
    -------
    Deck
        The deck text and what :func:`simulate_network` needs to read it back.
    """
    net, circuit = _mlp(mapped), mapped.circuit
    layers = list(range(len(net.weights))) if layers is None else list(layers)
    inputs = np.asarray(inputs, dtype=float)
    device, wires, v_read = circuit.device, circuit.wires, circuit.v_read
    first = layers[0]
    lines = [f"circuitsim whole circuit: layers {layers} of {net.config.layers}, {len(inputs)} images",
             f"* v_read = {v_read} V, device {device.name}, wires {wires}", "Vidx idx 0 DC 0",
             "* first-layer inputs: image n at V(idx) = n"]
    drivers, maps, outputs, sources = [], {}, {}, {}
    for i in range(inputs.shape[1]):
        line = _pwl(f"Bx{first}_{i}", f"x{first}_{i}", inputs[:, i])
        drivers.append((line.split()[0], ("input", i)))
        lines.append(line)
    for k in layers:
        w, design = net.weights[k], designs[k]
        n_in, n_out = w.shape
        if net.config.bias:
            lines.append(f"Vx{k}_{n_in} x{k}_{n_in} 0 DC {_f(v_read)}")
            drivers.append((f"Vx{k}_{n_in}", v_read))
        outputs[k] = [f"o{k}_{o}" for o in range(n_out)]
        lines.append(f"* layer {k}: crossbar tiles")
        sums = layer_sum_lines(mapped, k, design.volts_per_unit, config, lines)
        lines.append(f"* layer {k}: neurons")
        for o, node in enumerate(sums):
            lines.extend(design.neuron.lines(f"{k}_{o}", node, f"o{k}_{o}"))
            sources[f"Voff{k}_{o}"] = design.offset
        _driver_lines(k, n_out, layers, design, v_read, maps, drivers, lines)
    for k in layers:
        sources.update(designs[k].neuron.supplies)
    lines += supply_lines(*(designs[k].neuron for k in layers))
    lines += list(config.extra_lines) + [".end", ""]
    n_elements = sum(1 for ln in lines if ln[:1].isalpha() and not ln.startswith("circuitsim"))
    return Deck("\n".join(lines), outputs, drivers, inputs, maps, sources, n_elements, circuit.readout != "sense")


def layer_sum_lines(mapped: MappedNetwork, k: int, volts_per_unit: float, config: FullCircuitConfig,
                    lines: list[str]) -> list[str]:
    """Append crossbar layer ``k``'s tiles and summing amplifiers (either topology) to ``lines``:
    the realized cells the evaluator characterized on input nodes ``x<k>_<i>`` (bias row last)
    and per output ``o`` a node ``d<k>_<o>`` at ``clip(volts_per_unit·s, ±v_amp)`` volts for the
    layer's normalized sum ``s`` (module notes; ``volts_per_unit`` in volts).

    Returns
    -------
    list of str
        The ``d<k>_<o>`` node names.
    """
    circuit, crossbar = mapped.circuit, mapped.crossbars[k]
    n_out, vmax = crossbar.n_out, _f(config.v_amp)
    if circuit.topology != "canonical":
        imac_layer_lines(mapped, k, volts_per_unit, config.v_amp, lines)
        return [f"d{k}_{o}" for o in range(n_out)]
    device, wires, v_read, sense = circuit.device, circuit.wires, circuit.v_read, circuit.readout == "sense"
    rows = max(b.rows.stop - b.rows.start for b in crossbar.blocks)
    r_tia = config.v_amp / (rows * v_read * device.g_max)
    tia = None if sense else TIA(config.tia_gain, r_tia)
    # volts per ampere of a bit line at its output node, and which column of a pair is added: TIAs invert
    # (V_tia- - V_tia+), sense resistors do not (V_sns+ - V_sns-)
    r_out, node, plus = (circuit.r_sense, "sns", 0) if sense else (r_tia * config.tia_gain / (1 + config.tia_gain), "tia", 1)
    terms: list[list[str]] = [[] for _ in range(n_out)]
    for block in crossbar.blocks:  # the realized cells the evaluator characterized
        rs, os_, alpha = block.rows, block.outs, block.drift_scale
        prefix = f"{k}_{block.tile[0]}_{block.tile[1]}_"
        inputs, exact = [f"x{k}_{i}" for i in range(rs.start, rs.stop)], block.exact
        tile = (tile_wires(exact.tile, tia=tia) if exact is not None else
                Tile(block.conductances, r_row=wires.r_row, r_col=wires.r_col, r_driver=wires.r_driver, tia=tia))
        circuit_lines(sense_resistor_circuit(tile, circuit.r_sense) if sense else build_circuit(tile), prefix, inputs,
                      lines)
        if exact is not None:  # nonlinear cells between the wires' nodes, as the tile's own deck writes them
            lines.extend(cell_lines(exact.tile, node_namer(prefix, inputs), prefix, held=lines))
        for j, o in enumerate(range(os_.start, os_.stop)):
            term = f"v({prefix}{node}{2 * j + plus})-v({prefix}{node}{2 * j + 1 - plus})"
            terms[o].append(term if alpha == 1.0 else f"{_f(alpha)}*({term})")
    scale = volts_per_unit / (r_out * v_read * (device.g_max - device.g_min))
    lines.append(f"* layer {k}: difference amplifiers (V = k*s, clipped at the rails)")
    for o in range(n_out):
        total = "\n+ +".join("+".join(terms[o][i:i + 4]) for i in range(0, len(terms[o]), 4))
        lines.append(f"Bd{k}_{o} d{k}_{o} 0 V = max(-{vmax}, min({vmax}, {_f(scale)}*(\n+ {total})))")
    return [f"d{k}_{o}" for o in range(n_out)]


def _driver_lines(k, n_out, layers, design, v_read, maps, drivers, lines) -> None:
    """The next layer's input drivers behind the neurons of layer ``k``."""
    if k + 1 not in layers:
        return
    gain = v_read / (design.v_one - design.v_zero)
    maps[k] = (gain, design.v_zero)
    lines += [f"* layer {k + 1} input drivers: v_read*(V(o) - v_zero)/(v_one - v_zero)",
              f"Vz{k} z{k} 0 DC {_f(design.v_zero)}"]
    for o in range(n_out):
        lines.append(f"Ex{k + 1}_{o} x{k + 1}_{o} 0 o{k}_{o} z{k} {_f(gain)}")
        drivers.append((f"Ex{k + 1}_{o}", ("neuron", k, o)))


@dataclass(frozen=True, eq=False)
class FullCircuitResult:
    """Outputs and power of the whole circuit over a batch of images."""

    outputs: dict[int, np.ndarray]
    """Neuron output voltages by layer, ``(n_images, n_out)``, volts."""
    power: dict[str, np.ndarray]
    """``crossbar``, ``amplifiers``, ``neurons`` and ``total`` power per image, watts."""
    seconds: float
    """Wall time: writing decks and running ngspice."""
    n_elements: int
    """Element lines over all decks."""
    metadata: dict = field(default_factory=dict)
    """ngspice version and backend, analysis, scope."""


def _run(deck: Deck, n: int, config: FullCircuitConfig, backend, keep_dir: Path | None, tag: str):
    steps = ([[f"dc vidx 0 {n - 1} 1"]] if config.analysis == "dc"
             else [[f"alter vidx dc = {i}", "op"] for i in range(n)])
    results = run_deck(deck.text, steps, deck.save, backend, keep_dir, tag)
    vectors = {k: np.concatenate([r[k] for r in results]) for k in results[0]}
    if any(len(v) != n for v in vectors.values()):
        raise kept_deck(SimulationError(f"ngspice returned {len(next(iter(vectors.values())))} points for "
                                    f"{n} images", deck.text), deck.text, keep_dir, tag)
    return vectors


def _power(deck: Deck, r: dict, v_amp: float) -> dict[str, np.ndarray]:
    def cur(name):
        return r[f"i({name.lower()})"]

    def volts(spec):
        if not isinstance(spec, tuple):
            return spec
        if spec[0] == "input":
            return deck.inputs[:, spec[1]]
        gain, zero = deck.driver_maps[spec[1]]
        return gain * (r[f"v(o{spec[1]}_{spec[2]})"] - zero)

    crossbar = -sum(volts(v) * cur(s) for s, v in deck.drivers)
    tias = -sum(cur(s) for s, _ in deck.drivers) if deck.tias else 0.0  # = sum of the bit-line currents (all >= 0)
    amps = v_amp * (np.abs(tias) + sum(np.abs(cur(s)) for s in deck.neuron_sources if s.startswith("Voff")))
    neurons = -sum((v * cur(s) for s, v in deck.neuron_sources.items()), np.zeros_like(crossbar))
    return {"crossbar": crossbar, "amplifiers": amps, "neurons": neurons, "total": crossbar + amps + neurons}


def simulate_network(mapped: MappedNetwork, designs: tuple[NeuronDesign, ...], images,
                     config: FullCircuitConfig = FullCircuitConfig(), keep_dir=None) -> FullCircuitResult:
    """Run the whole circuit on ``images`` (activations in [0, 1], one row per image).

    Parameters
    ----------
    mapped : MappedNetwork
        An MLP on its tiles (:func:`~circuitsim.network.mapped.map_network`; its circuit gives
        ``v_read`` and the ngspice ``backend``).
    designs : tuple of NeuronDesign
        One per layer (:func:`circuitsim.study.validation.design_network`).
    images : array_like
        ``(n_images, n_in)`` activations; the inputs are ``v_read`` times these.
    config : FullCircuitConfig
        Scope, analysis, TIA and rails.
    keep_dir : str or Path, optional
        Where a failing deck is kept (a new temporary folder otherwise).

    Returns
    -------
    FullCircuitResult

    Raises
    ------
    ConvergenceError
        When ngspice does not converge; the message names the file the deck was kept in.
    SimulationError
        For other ngspice failures (deck kept likewise).
    """
    from ..spice import get_backend

    net, circuit = _mlp(mapped), mapped.circuit
    x = np.asarray(images, dtype=float)
    if x.ndim != 2 or x.shape[1] != net.weights[0].shape[0] or not len(x):
        raise ConfigError(f"images must have shape (n, {net.weights[0].shape[0]}), got {x.shape}")
    if len(designs) != len(net.weights):
        raise ConfigError(f"give one neuron design per layer ({len(net.weights)}), got {len(designs)}")
    start = time.perf_counter()
    backend = get_backend(circuit.backend)
    groups = [list(range(len(net.weights)))] if config.scope == "network" else [[k] for k in range(len(net.weights))]
    volts = x * circuit.v_read
    outputs, power, n_elements = {}, {}, 0
    for layers in groups:
        deck = network_deck(mapped, designs, volts, config, layers)
        n_elements += deck.n_elements
        r = _run(deck, len(x), config, backend, keep_dir, f"layers-{'-'.join(map(str, layers))}")
        for k, nodes in deck.outputs.items():
            outputs[k] = np.stack([r[f"v({n})"] for n in nodes], axis=1)
        for key, value in _power(deck, r, config.v_amp).items():
            power[key] = power.get(key, 0.0) + value
        d = designs[layers[-1]]
        volts = circuit.v_read * (outputs[layers[-1]] - d.v_zero) / (d.v_one - d.v_zero)
    meta = {"ngspice_version": backend.version, "ngspice_backend": backend.name, "solver": backend.info.solver,
            "analysis": config.analysis, "scope": config.scope}
    return FullCircuitResult(outputs, power, time.perf_counter() - start, n_elements, meta)
