"""The circuit of one partitioned layer in a chosen topology, solved by either engine.

A layer holds ``n_rows`` input lines (inputs and bias row) and ``n_out`` outputs, each
output a pair of cells (``G+`` on its I+ line, ``G-`` on its I- line). Horizontal
partitions (``row_slices``) cut every summing line into pieces with a readout each;
vertical partitions (``out_slices``) re-drive every input line at the first output of
each piece. Layout (:class:`~circuitsim.tile.topology.TopologyConfig`):

- input line ``i`` starts at source ``Vin<i>`` (node ``in<i>``); with
  ``"shared-node"`` it has one ``r_row`` segment before each output ``o`` of a piece
  (nodes ``wl<i>_<o>``, both cells of ``o`` there); with ``"adjacent-columns"`` one before
  each of the columns ``2o`` (G+) and ``2o + 1`` (G-) (nodes ``wl<i>_<c>``), as in the
  canonical tile;
- summing lines ``bp<i>_<o>`` (I+) and ``bn<i>_<o>`` (I-) run over the rows of a piece
  with one ``r_col`` segment after every cell, the last into the piece's end
  ``ep<a>_<o>`` / ``en<a>_<o>``;
- readout of a piece: ``"virtual-ground"`` 0 V sense sources ``Vsp<a>_<o>`` and
  ``Vsn<a>_<o>`` to ground; ``"tia"`` the same sources into op-amp TIAs; ``"diff-amp"``
  IMAC-Sim's amplifier (``Rinn``/``Rinp``, ``Rfb``, ``Rgnd``, op-amp ``Eamp<a>_<o>`` with
  output ``ao<a>_<o>``), with ``"average"`` tied to the neuron input ``nin<o>`` through
  ``Rtie<a>_<o>``.

The layer's outputs (:func:`layer_outputs`) are, per output, the differential current
``I+ - I-`` of the pieces (current readouts; amperes) or the amplifier voltage (volts),
summed or averaged over the horizontal pieces as the topology says; with a difference
amplifier and ``"average"`` it is the voltage of ``nin<o>`` in the circuit.

Public API
----------
LayerCircuit, build_layer_circuit, output_probes, combine_readings, layer_outputs, solve_layer, layer_transfer,
layer_admittance
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import native
from .circuit import GROUND, Circuit, CircuitBuilder
from .netlist import write_netlist
from .operating_point import OperatingPoint
from .topology import TopologyConfig


@dataclass(frozen=True, eq=False)
class LayerCircuit:
    """A partitioned layer: cell pairs, partitions, wires and topology (no input values)."""

    g_pos: np.ndarray
    """``G+`` of every (row, output), siemens, ``n_rows × n_out``."""
    g_neg: np.ndarray
    """``G-`` of every (row, output), siemens."""
    row_slices: tuple[slice, ...]
    """Rows of each horizontal partition."""
    out_slices: tuple[slice, ...]
    """Outputs of each vertical partition."""
    topology: TopologyConfig
    """Arrangement of cells, wires and readouts."""
    r_row: float = 0.0
    """Input (word) line resistance per segment, ohm."""
    r_col: float = 0.0
    """Summing (bit) line resistance per segment, ohm."""

    def __post_init__(self):
        gp, gn = (np.asarray(g, dtype=float) for g in (self.g_pos, self.g_neg))
        if gp.ndim != 2 or gp.shape != gn.shape or gp.size == 0:
            raise ConfigError(f"G+ and G- must be equal, non-empty 2-D arrays, got {gp.shape} and {gn.shape}")
        if not (np.all(np.isfinite(gp)) and np.all(np.isfinite(gn))) or gp.min() < 0 or gn.min() < 0:
            raise ConfigError("cell conductances must be finite and >= 0")
        object.__setattr__(self, "g_pos", gp)
        object.__setattr__(self, "g_neg", gn)
        for name in ("r_row", "r_col"):
            value = float(getattr(self, name))
            if not (0 <= value < np.inf):
                raise ConfigError(f"{name} must be a finite value >= 0 ohm, got {value!r}")
            object.__setattr__(self, name, value)
        for slices, n, what in ((self.row_slices, gp.shape[0], "rows"), (self.out_slices, gp.shape[1], "outputs")):
            covered = [i for s in slices for i in range(n)[s]]
            if covered != list(range(n)):
                raise ConfigError(f"partition slices must cover the {n} {what} in order, once each")

    @property
    def n_rows(self) -> int:
        """Input lines (inputs and bias row)."""
        return self.g_pos.shape[0]

    @property
    def n_out(self) -> int:
        """Outputs (cell pairs per row)."""
        return self.g_pos.shape[1]

    def input_sources(self) -> list[str]:
        """Names of the input-line sources, row order."""
        return [f"Vin{i}" for i in range(self.n_rows)]


def _grid(fmt: str, rows, cols) -> np.ndarray:
    return np.array([[fmt.format(i, j) for j in cols] for i in rows], dtype=object)


def build_layer_circuit(layer: LayerCircuit, inputs=None, probes: bool = False) -> Circuit:
    """Build the circuit of a layer with DC input-line voltages.

    Parameters
    ----------
    layer : LayerCircuit
        The layer.
    inputs : array_like, optional
        Voltage of every input line (bias row included), volts; zeros by default.
    probes : bool
        Add, for a difference-amplifier readout, a unit-gain VCVS ``Eprobe<o>`` into a
        1 Ω load per output voltage, so that ``-I(Eprobe<o>)`` equals it (used by
        :func:`layer_transfer`; they do not load the circuit).
    """
    topo = layer.topology
    n_rows, n_out = layer.n_rows, layer.n_out
    v = np.zeros(n_rows) if inputs is None else np.asarray(inputs, dtype=float)
    if v.shape != (n_rows,) or not np.all(np.isfinite(v)):
        raise ConfigError(f"inputs must be {n_rows} finite voltages (one per input line), got shape {v.shape}")
    b = CircuitBuilder(f"circuitsim layer {n_rows}x{n_out} ({topo.name} topology)")
    b.header = [f"topology {k} = {val}" for k, val in topo.to_dict().items() if k != "diff_amp"]
    if topo.readout == "diff-amp":
        b.header.append("diff-amp " + ", ".join(f"{k} = {val}" for k, val in vars(topo.diff_amp).items()))
    b.header += [f"r_row = {layer.r_row}", f"r_col = {layer.r_col}",
                 f"partitions h = {len(layer.row_slices)}, v = {len(layer.out_slices)}",
                 "units: ohm, siemens, volt"]
    source = np.array([f"in{i}" for i in range(n_rows)], dtype=object)
    b.add("V", layer.input_sources(), np.stack([b.nodes(source), np.zeros(n_rows)], 1), v,
          "input-line sources (bias row included)")
    rows = np.arange(n_rows)
    shared = topo.pair_layout == "shared-node"
    for outs in layer.out_slices:
        o = np.arange(n_out)[outs]
        cols = o if shared else np.ravel(np.stack([2 * o, 2 * o + 1], 1))
        if layer.r_row > 0:
            wl = _grid("wl{}_{}", rows, cols)
            before = np.concatenate([source[:, None], wl[:, :-1]], axis=1)
            b.add("R", _grid("Rwl{}_{}", rows, cols), np.stack([b.nodes(before), b.nodes(wl)], -1),
                  layer.r_row, f"input-line segments, outputs {o[0]}..{o[-1]} "
                  + ("(one per output)" if shared else "(one before every cell)"))
        else:
            wl = np.repeat(source[:, None], len(cols), axis=1)
        node_pos, node_neg = (wl, wl) if shared else (wl[:, 0::2], wl[:, 1::2])
        for a, rs in enumerate(layer.row_slices):
            r = rows[rs]
            for sign, g, node in (("p", layer.g_pos, node_pos), ("n", layer.g_neg, node_neg)):
                end = np.array([f"e{sign}{a}_{j}" for j in o], dtype=object)
                if layer.r_col > 0:
                    bl = _grid("b" + sign + "{}_{}", r, o)
                    after = np.concatenate([bl[1:], end[None, :]], axis=0)
                    b.add("R", _grid("Rb" + sign + "{}_{}", r, o), np.stack([b.nodes(bl), b.nodes(after)], -1),
                          layer.r_col, f"I{'+' if sign == 'p' else '-'} line segments, piece {a}")
                else:
                    bl = np.repeat(end[None, :], len(r), axis=0)
                cells = g[rs][:, outs]
                on = cells > 0
                names = _grid("Rc" + sign + "{}_{}", r, o)[on]
                b.add("R", names, np.stack([b.nodes(node[rs][on]), b.nodes(bl[on])], -1), 1.0 / cells[on],
                      f"G{'+' if sign == 'p' else '-'} cells, piece {a} (R = 1/G; G = 0 open)")
    _readouts(b, layer, probes)
    return b.build()


def _readouts(b: CircuitBuilder, layer: LayerCircuit, probes: bool) -> None:
    topo, n_out = layer.topology, layer.n_out
    o = np.arange(n_out)
    zeros = np.zeros(n_out)
    for a in range(len(layer.row_slices)):
        ends = {s: np.array([f"e{s}{a}_{j}" for j in o], dtype=object) for s in "pn"}
        if topo.readout in ("virtual-ground", "tia"):
            for s in "pn":
                tia_in = np.array([f"t{s}{a}_{j}" for j in o], dtype=object)
                out = tia_in if topo.readout == "tia" else np.full(n_out, GROUND, dtype=object)
                b.add("V", [f"Vs{s}{a}_{j}" for j in o], np.stack([b.nodes(ends[s]), b.nodes(out)], 1), 0.0,
                      f"I{'+' if s == 'p' else '-'} sense sources, piece {a} (0 V)")
                if topo.readout == "tia":
                    tia_out = np.array([f"to{s}{a}_{j}" for j in o], dtype=object)
                    b.add("E", [f"Et{s}{a}_{j}" for j in o],
                          np.stack([b.nodes(tia_out), zeros, zeros, b.nodes(tia_in)], 1), topo.tia_gain,
                          f"TIA op-amps, piece {a}")
                    b.add("R", [f"Rt{s}{a}_{j}" for j in o], np.stack([b.nodes(tia_in), b.nodes(tia_out)], 1),
                          topo.tia_r_feedback, f"TIA feedback, piece {a}")
            continue
        amp = topo.diff_amp
        n1, n2, ao = ([f"{p}{a}_{j}" for j in o] for p in ("ni", "np", "ao"))
        b.add("R", [f"Rinn{a}_{j}" for j in o], np.stack([b.nodes(ends["n"]), b.nodes(n1)], 1), amp.r_in,
              f"difference amplifiers, piece {a}: I- line to inverting input")
        b.add("R", [f"Rinp{a}_{j}" for j in o], np.stack([b.nodes(ends["p"]), b.nodes(n2)], 1), amp.r_in,
              "I+ line to non-inverting input")
        b.add("R", [f"Rfb{a}_{j}" for j in o], np.stack([b.nodes(n1), b.nodes(ao)], 1), amp.r_feedback, "feedback")
        b.add("R", [f"Rgnd{a}_{j}" for j in o], np.stack([b.nodes(n2), zeros], 1), amp.r_ground,
              "non-inverting input to ground")
        b.add("E", [f"Eamp{a}_{j}" for j in o], np.stack([b.nodes(ao), zeros, b.nodes(n2), b.nodes(n1)], 1),
              amp.opamp_gain, "op-amps (VCVS of finite gain)")
        if topo.combining == "average":
            b.add("R", [f"Rtie{a}_{j}" for j in o],
                  np.stack([b.nodes(ao), b.nodes([f"nin{j}" for j in o])], 1), topo.r_tie,
                  "amplifier outputs tied to the neuron inputs (their mean)")
    if probes and topo.voltage_output:
        nodes = _voltage_nodes(layer)
        probe = [f"pr_{n}" for n in nodes]
        b.add("E", [f"Eprobe_{n}" for n in nodes],
              np.stack([b.nodes(probe), np.zeros(len(nodes)), b.nodes(nodes), np.zeros(len(nodes))], 1),
              1.0, "probes: I(Eprobe) = -V(node) into 1 ohm")
        b.add("R", [f"Rprobe_{n}" for n in nodes], np.stack([b.nodes(probe), np.zeros(len(nodes))], 1), 1.0,
              "probe loads")


def _voltage_nodes(layer: LayerCircuit) -> list[str]:
    """Nodes whose voltages make the outputs of a voltage readout (output-major)."""
    if layer.topology.combining == "average":
        return [f"nin{j}" for j in range(layer.n_out)]
    return [f"ao{a}_{j}" for j in range(layer.n_out) for a in range(len(layer.row_slices))]


def combine_readings(values: np.ndarray, layer: LayerCircuit) -> np.ndarray:
    """Per-output result from raw readings (last axis: output-major raw values, as
    :func:`output_probes` lists them)."""
    h = len(layer.row_slices)
    topo = layer.topology
    if topo.voltage_output:
        if topo.combining == "average":
            return values
        return values.reshape(values.shape[:-1] + (layer.n_out, h)).sum(-1)
    diff = values.reshape(values.shape[:-1] + (layer.n_out, h, 2))
    diff = diff[..., 0] - diff[..., 1]
    return diff.mean(-1) if topo.combining == "average" else diff.sum(-1)


def _readings(layer: LayerCircuit) -> tuple[str, list[str]]:
    """What to read from a solution: ``("v", nodes)`` or ``("i", sense sources)``, output-major."""
    if layer.topology.voltage_output:
        return "v", _voltage_nodes(layer)
    h = len(layer.row_slices)
    return "i", [f"Vs{s}{a}_{j}" for j in range(layer.n_out) for a in range(h) for s in "pn"]


def output_probes(layer: LayerCircuit) -> tuple[list[str], float]:
    """The sources of a circuit built with ``probes=True`` whose branch currents, times the
    sign, are the layer's raw readings (output-major; :func:`combine_readings` makes the
    outputs of them)."""
    kind, names = _readings(layer)
    if kind == "v":  # V(node) = -I(Eprobe) into its 1 ohm load
        return [f"Eprobe_{n}" for n in names], -1.0
    return names, 1.0


def layer_outputs(op: OperatingPoint, layer: LayerCircuit) -> np.ndarray:
    """The layer's outputs from an operating point of its circuit (amperes or volts)."""
    kind, names = _readings(layer)
    raw = op.voltage(names) if kind == "v" else op.current(names)
    return combine_readings(np.asarray(raw), layer)


def solve_layer(layer: LayerCircuit, inputs, engine: str = "native", backend: str = "shared") -> np.ndarray:
    """Outputs of the layer for input-line voltage vectors.

    Parameters
    ----------
    layer : LayerCircuit
        The layer.
    inputs : array_like
        ``vectors × n_rows`` volts (bias row included).
    engine : {"native", "ngspice"}
        ``"native"``: :func:`~circuitsim.tile.native.operating_point` per vector;
        ``"ngspice"``: the deck of :func:`build_layer_circuit`, one ``op`` per vector.
    backend : {"shared", "subprocess"}
        ngspice backend.

    Returns
    -------
    numpy.ndarray
        ``vectors × n_out`` (amperes for current readouts, volts for the difference amplifier).
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if x.ndim != 2 or x.shape[1] != layer.n_rows:
        raise ConfigError(f"inputs must be vectors x {layer.n_rows} voltages, got shape {np.shape(inputs)}")
    if engine == "native":
        return np.array([layer_outputs(native.operating_point(build_layer_circuit(layer, row)), layer)
                         for row in x])
    if engine != "ngspice":
        raise ConfigError(f"unknown engine {engine!r}; choose native or ngspice")
    from ..spice import get_backend

    kind, names = _readings(layer)
    save = [f"{kind}({n.lower()})" for n in names]
    sources = [s.lower() for s in layer.input_sources()]
    steps = [[f"alter {s} dc = {value:.15g}" for s, value in zip(sources, row)] + ["op"] for row in x]
    results = get_backend(backend).run(write_netlist(build_layer_circuit(layer)), steps, save=save)
    raw = np.array([[r[name][0] for name in save] for r in results])
    return combine_readings(raw, layer)


def layer_transfer(layer: LayerCircuit) -> np.ndarray:
    """Exact linear map ``A`` (``n_out × n_rows``) with ``outputs = A @ v`` (native engine).

    The circuit is linear and has no other sources, so ``A`` comes from one factorization
    (:func:`~circuitsim.tile.native.transfer_matrix`), reading voltages through the
    unit-gain probes of :func:`build_layer_circuit`.
    """
    sources, sign = output_probes(layer)
    raw = sign * native.transfer_matrix(build_layer_circuit(layer, probes=True), layer.input_sources(), sources)
    return combine_readings(raw.T, layer).T


def layer_admittance(layer: LayerCircuit) -> np.ndarray:
    """``Y`` (``n_rows × n_rows``, siemens): the input-line sources deliver ``v @ Y @ v`` watts.

    ``Y = -dI_source/dv`` from the sources' branch currents (the amplifiers' own supplies
    are not included).
    """
    sources = layer.input_sources()
    return -native.transfer_matrix(build_layer_circuit(layer), sources, sources)
