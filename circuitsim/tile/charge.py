"""Charge-mode readout: bit-line charge integrated over a window, by ngspice transient.

The array is the one of :func:`circuitsim.tile.crossbar.build_circuit` (same names, the
tile's wire R and C); each bit line ends in the 0 V probe ``Vsense<j>`` followed by

- ``mode="integrator"``: an op-amp integrator, VCVS ``Eamp<j>`` of finite gain
  (``V(int<j>) = -gain * V(out<j>)``) with ``Cint<j> = c_int`` from ``out<j>`` to
  ``int<j>``; the bit line is held near virtual ground;
- ``mode="passive"``: a sampling capacitor ``Csmp<j> = c_int`` from ``smp<j>`` to
  ground; the bit line is not held, so it charges (with its wire capacitance)
  towards the inputs and the cells see less and less voltage.

Reset is the initial condition 0 V on every capacitor (``tran ... uic``).

One evaluation, with edges of ``t_edge``: every input ``Vin<i>`` is a PWL source at
0 V at ``t = 0``. ``encoding="amplitude"``: input ``a`` rises to ``a`` during
``[0, t_edge]``, stays until ``t_int`` and is back at 0 at ``t_int + t_edge``
(area ``a * t_int``). ``encoding="pulse"``: input ``u`` (an equivalent voltage,
``|u| <= v_pulse``) is a pulse of amplitude ``±v_pulse`` and width
``w = t_int * |u| / v_pulse`` between mid-edges (area ``u * t_int``; pulses shorter
than ``t_edge`` become triangles of the same area). Outputs are read at
``t_int + t_edge``, when every input is back at 0 V: ``V_out = Q / c_int`` with
``Q`` the charge delivered through ``Vsense<j>`` (integrator: ``-V(int<j>)``;
passive: ``V(smp<j>)``). With an ideal integrator and a fast tile
``V_out = T_current @ u * t_int / c_int`` in both encodings.

ngspice lands on every PWL corner and restarts with small steps after each (a time
point costs two matrix factorizations), so the edges are resolved whatever the largest
step (:meth:`ChargeReadout.step_for`): by default ``t_int`` for the integrator on fast
wires (:func:`wire_time_constant` <= ``t_int / 500``: the output is then a ramp between
edges, which the trapezoidal rule integrates exactly), else ``t_int / 200``. Energies
integrate ``V * I`` exactly for vectors linear between time points.

:func:`characterize_charge` needs one evaluation per input. ngspice factors the matrix
twice per time point and every unit input walks the same time grid (same corners), so
only the full-scale evaluation runs in ngspice; the unit inputs are replayed natively on
its accepted time points with the same companion models (:mod:`.charge_replay`: one
LU factorization per step shared by all inputs) and kept when the replayed full-scale
outputs match ngspice's within :data:`REPLAY_TOL`; else one ngspice transient per input.

Public API
----------
ChargeReadout, ChargeResult, REPLAY_TOL, wire_time_constant, charge_circuit, charge_deck,
simulate_charge, characterize_charge, charge_characterize_from_args
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .circuit import Circuit
from .crossbar import Tile, input_source_names, sense_source_names
from .extract import Characterization
from .netlist import format_value, write_netlist
from .charge_replay import REPLAY_TOL, replay
from .readout import array_builder, check_positive

MODES = ("integrator", "passive")
ENCODINGS = ("amplitude", "pulse")


@dataclass(frozen=True)
class ChargeReadout:
    """Charge-mode readout of every bit line (see the module docstring for timing)."""

    mode: str = "integrator"
    """``"integrator"`` (op-amp integrator) or ``"passive"`` (sampling capacitor)."""
    encoding: str = "amplitude"
    """``"amplitude"`` (constant voltage during ``t_int``) or ``"pulse"`` (width ∝ input)."""
    t_int: float = 10e-9
    """Integration window, seconds, > 0."""
    c_int: float = 1e-12
    """Integration capacitor (integrator feedback) or sampling capacitor (passive), farad, > 0."""
    gain: float = 1e5
    """Open-loop gain of the integrator op-amp, V/V, > 0."""
    v_pulse: float = 1.0
    """Pulse amplitude of the pulse encoding (the full-width input value), volts, > 0."""
    t_edge: float | None = None
    """Rise and fall time of the inputs, seconds, in (0, t_int); ``None``: ``t_int / 1000``."""
    max_step: float | None = None
    """Largest simulation step, seconds, <= t_int; ``None``: per tile (:meth:`step_for`)."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"unknown charge readout mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"unknown input encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        for name in ("t_int", "c_int", "gain", "v_pulse"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        t_int = self.t_int
        edge = t_int / 1000 if self.t_edge is None else check_positive("t_edge", self.t_edge)
        if edge >= t_int:
            raise ConfigError(f"t_edge = {edge:g} s must be shorter than the window t_int = {t_int:g} s")
        object.__setattr__(self, "t_edge", edge)
        if self.max_step is not None:
            object.__setattr__(self, "max_step", check_positive("max_step", self.max_step))
            if self.max_step > t_int:
                raise ConfigError(f"integration window t_int = {t_int:g} s is shorter than one simulation step "
                                  f"(max_step = {self.max_step:g} s); lengthen t_int or lower max_step")

    def step_for(self, tile: Tile) -> float:
        """Largest simulation step for ``tile``: ``max_step`` if set, else ``t_int`` for the
        integrator on a fast tile (:func:`wire_time_constant` <= ``t_int / 500``), else ``t_int / 200``."""
        if self.max_step is not None:
            return self.max_step
        if self.mode == "integrator" and wire_time_constant(tile) <= self.t_int / 500:
            return self.t_int
        return self.t_int / 200

    @property
    def t_sample(self) -> float:
        """Time at which outputs are read, ``t_int + t_edge``, seconds."""
        return self.t_int + self.t_edge

    def waveform(self, value: float) -> list[float]:
        """PWL corner list ``[t0, v0, t1, v1, ...]`` of one input value."""
        te, t_int, value = self.t_edge, self.t_int, float(value)
        if value == 0:
            return [0.0, 0.0, te, 0.0]
        if self.encoding == "amplitude":
            return [0.0, 0.0, te, value, t_int, value, t_int + te, 0.0]
        amp = np.copysign(self.v_pulse, value)
        width = t_int * abs(value) / self.v_pulse
        if width <= te:
            return [0.0, 0.0, te, amp * width / te, 2 * te, 0.0]
        return [0.0, 0.0, te, amp, width, amp, width + te, 0.0]


@dataclass(frozen=True, eq=False)
class ChargeResult:
    """Outputs and energies of charge-mode evaluations."""

    v_out: np.ndarray
    """Output voltages ``Q / c_int``, volts, shape ``(n, cols)``."""
    energy: np.ndarray
    """Energy delivered by the input sources (``-∫ V·I dt``), joules, shape ``(n,)``."""
    opamp_energy: np.ndarray
    """Energy delivered by the integrator op-amp outputs, joules, shape ``(n,)`` (0 when passive)."""
    input_charge: np.ndarray
    """Charge drawn from the input sources, coulombs, shape ``(n,)``."""


def charge_circuit(tile: Tile, readout: ChargeReadout, inputs: bool = False) -> Circuit:
    """The tile's array with the charge readout; the input sources ``Vin<i>`` (0 V) only with
    ``inputs=True`` (the deck writes them as PWL sources, see :func:`charge_deck`)."""
    b = array_builder(tile.with_wires(tia=None), None, drop=("Vsense",) if inputs else ("Vin", "Vsense"))
    cols = tile.cols
    b.header.append(f"readout: charge {readout.mode}, c_int = {format_value(readout.c_int)} F")
    end = b.nodes([f"blend{j}" for j in range(cols)])
    zeros = np.zeros(cols)
    if readout.mode == "integrator":
        out, amp = b.nodes([f"out{j}" for j in range(cols)]), b.nodes([f"int{j}" for j in range(cols)])
        b.add("V", sense_source_names(cols), np.stack([end, out], 1), 0.0, "bit-line current probes (0 V)")
        b.add("E", [f"Eamp{j}" for j in range(cols)], np.stack([amp, zeros, zeros, out], 1),
              readout.gain, "integrator op-amps (VCVS, inverting input at out<j>)")
        b.add("C", [f"Cint{j}" for j in range(cols)], np.stack([out, amp], 1), readout.c_int,
              "integration capacitors (reset: 0 V initial condition)")
    else:
        smp = b.nodes([f"smp{j}" for j in range(cols)])
        b.add("V", sense_source_names(cols), np.stack([end, smp], 1), 0.0, "bit-line current probes (0 V)")
        b.add("C", [f"Csmp{j}" for j in range(cols)], np.stack([smp, zeros], 1), readout.c_int,
              "sampling capacitors (no virtual ground; reset: 0 V initial condition)")
    return b.build()


def charge_deck(tile: Tile, readout: ChargeReadout) -> str:
    """ngspice deck of :func:`charge_circuit` with PWL input sources ``Vin<i>`` at 0 V."""
    te = format_value(readout.t_edge)
    lines = ["* input sources (PWL; each evaluation sets them with alter)"]
    lines += [f"Vin{i} in{i} 0 DC 0 PWL(0 0 {te} 0)" for i in range(tile.rows)]
    return write_netlist(charge_circuit(tile, readout), options=tuple(lines))


def wire_time_constant(tile: Tile) -> float:
    """Upper bound (s) on the slowest wire time constant, outputs held: the trace of ``R C``,
    ``sum(C * R_path)`` with ``R_path`` along the word line to its source or the bit line to its output."""
    rows, cols = tile.shape
    word = tile.c_row * rows * (cols * tile.r_driver + tile.r_row * cols * (cols + 1) / 2)
    return word + tile.c_col * cols * tile.r_col * rows * (rows + 1) / 2


def _integral(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Trapezoidal integral of samples ``y`` (last axis) over times ``t``."""
    return np.sum((y[..., 1:] + y[..., :-1]) * np.diff(t), axis=-1) / 2


def _product_integral(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integral of ``u * v`` (last axis), both linear between samples (exact for that)."""
    u0, u1, v0, v1 = u[..., :-1], u[..., 1:], v[..., :-1], v[..., 1:]
    return np.sum((u0 * (2 * v0 + v1) + u1 * (v0 + 2 * v1)) * np.diff(t), axis=-1) / 6


def _run(tile: Tile, readout: ChargeReadout, waves, t_stop: float, step: float, backend: str) -> list[dict]:
    """One transient per evaluation; ``waves[n][i]`` is the PWL corner list of input i."""
    from ..spice import get_backend

    rows, cols = tile.shape
    save = ["time"] + [f"v(in{i})" for i in range(rows)] + [f"i({s.lower()})" for s in input_source_names(rows)]
    save += [f"i({s.lower()})" for s in sense_source_names(cols)]
    if readout.mode == "integrator":
        save += [f"v(int{j})" for j in range(cols)] + [f"i(eamp{j})" for j in range(cols)]
    else:
        save += [f"v(smp{j})" for j in range(cols)]
    steps = []
    for wave in waves:
        alters = [f"alter @vin{i}[pwl] = [ {' '.join(map(format_value, w))} ]" for i, w in enumerate(wave)]
        steps.append(alters + [f"tran {format_value(step)} {format_value(t_stop)} 0 {format_value(step)} uic"])
    return get_backend(backend).run(charge_deck(tile, readout), steps, save=save)


def _stack(r: dict, name: str, n: int) -> np.ndarray:
    """Vectors ``name.format(k)`` for ``k < n``, shape ``(n, points)``."""
    return np.array([r[name.format(k)] for k in range(n)])


def _v_out(r: dict, mode: str, cols: int) -> np.ndarray:
    """Output voltages ``Q / c_int`` at the end of the transient."""
    integrator = mode == "integrator"
    return (-1 if integrator else 1) * _stack(r, "v(int{})" if integrator else "v(smp{})", cols)[:, -1]


def _summary(r: dict, tile: Tile, readout: ChargeReadout) -> tuple[np.ndarray, float, float, float]:
    t, rows, cols = r["time"], tile.rows, tile.cols
    currents = _stack(r, "i(vin{})", rows)
    energy = -_product_integral(_stack(r, "v(in{})", rows), currents, t).sum()
    charge = -_integral(currents.sum(0), t)
    op = 0.0
    if readout.mode == "integrator":
        op = -_product_integral(_stack(r, "v(int{})", cols), _stack(r, "i(eamp{})", cols), t).sum()
    return _v_out(r, readout.mode, cols), float(energy), float(op), float(charge)


def simulate_charge(tile: Tile, readout: ChargeReadout, inputs, backend: str = "shared") -> ChargeResult:
    """Charge-mode outputs for input vectors (volts; equivalent volts for pulses).

    ``inputs`` has shape ``(rows,)`` or ``(n, rows)``; one ngspice transient per vector.
    """
    v = np.asarray(inputs, dtype=float)
    if v.ndim not in (1, 2) or v.shape[-1] != tile.rows or not np.all(np.isfinite(v)):
        raise ConfigError(f"inputs must be finite with shape ({tile.rows},) or (n, {tile.rows}), got {v.shape}")
    if readout.encoding == "pulse" and np.abs(v).max() > readout.v_pulse * (1 + 1e-12):
        raise ConfigError(f"pulse inputs must satisfy |u| <= v_pulse = {readout.v_pulse:g} V (a full-width pulse)")
    x = np.atleast_2d(v)
    results = _run(tile, readout, [[readout.waveform(a) for a in row] for row in x],
                   readout.t_sample, readout.step_for(tile), backend)
    out, energy, op, charge = zip(*(_summary(r, tile, readout) for r in results))
    return ChargeResult(np.array(out), np.array(energy), np.array(op), np.array(charge))


def _settling(t: np.ndarray, y: np.ndarray, final: float) -> float:
    """Time after which ``y`` stays within 1 % of ``final`` (interpolated; inf if never)."""
    tol = 0.01 * abs(final)
    err = np.abs(y - final)
    bad = np.nonzero(err > tol)[0]
    if tol == 0 or len(bad) == 0:
        return float(t[0])
    k = bad[-1]
    if k + 1 >= len(t):
        return float("inf")
    return float(t[k] + (t[k + 1] - t[k]) * (err[k] - tol) / (err[k] - err[k + 1]))


def _passive_settling(tile: Tile, readout: ChargeReadout, backend: str) -> float:
    """Settling of the sampling voltages for a held full-scale step on every input."""
    g = tile.conductances.sum(axis=0)
    if not np.any(g > 0):
        return 0.0
    r = 1 / g[g > 0] + tile.r_driver + tile.cols * tile.r_row + tile.rows * tile.r_col
    tau = (readout.c_int + tile.rows * tile.c_col) * r.max()
    t_stop = max(readout.t_sample, 20 * tau)
    (res,) = _run(tile, readout, [[[0.0, 0.0, readout.t_edge, 1.0]] * tile.rows], t_stop,
                  min(readout.step_for(tile) * t_stop / readout.t_sample, t_stop / 200), backend)
    return max(_settling(res["time"], res[f"v(smp{j})"], res[f"v(smp{j})"][-1]) for j in range(tile.cols))


def characterize_charge(tile: Tile, t_int: float, c_int: float, mode: str = "integrator",
                        encoding: str = "amplitude", backend: str = "shared", **options) -> Characterization:
    """Charge-mode transfer matrix ``T`` (V/V, ``V_out = T @ u``, ``V_out = Q / c_int``).

    One ngspice transient, the full-scale evaluation (every input at 1 V, or
    full-width pulses), gives the energy and, for the integrator, the settling time
    of the bit-line currents; the unit inputs (one input at 1, the others 0) are
    replayed natively on its time grid (:func:`~.charge_replay.replay`, one factorization per step
    for all of them), and kept when the replayed full-scale outputs match ngspice's
    within :data:`REPLAY_TOL` (relative), else each unit input runs its own ngspice
    transient (``t_method`` in the metadata says which). The passive readout runs
    one more transient, a held step, for the settling time of the sampling voltages.

    Parameters
    ----------
    tile : Tile
        The tile (its wire R and C are simulated; its TIA, if any, is replaced).
    t_int, c_int : float
        Integration window (s) and integration or sampling capacitance (F).
    mode : {"integrator", "passive"}
    encoding : {"amplitude", "pulse"}
    backend : {"shared", "subprocess"}
    **options
        Other :class:`ChargeReadout` fields (``gain``, ``v_pulse``, ``t_edge``, ``max_step``).

    Returns
    -------
    Characterization
        ``T`` (cols × rows, V/V) and metadata: engine, ngspice version, readout,
        t_int, c_int, settling time (s), energies (J) of the full-scale evaluation,
        ``t_method`` (``"replay"`` or ``"transient per input"``), ``replay_max_rel_diff``
        (replayed against ngspice's full-scale outputs), and for amplitude encoding ``energy_matrix_J`` (``E(u) = u @ M @ u``).
    """
    from .._version import __version__
    from ..spice import get_backend

    readout = ChargeReadout(mode=mode, encoding=encoding, t_int=t_int, c_int=c_int, **options)
    start, rows = time.perf_counter(), tile.rows
    unit = 1.0 if encoding == "amplitude" else readout.v_pulse
    x = np.vstack([np.eye(rows), np.ones((1, rows))]) * unit
    step = readout.step_for(tile)
    waves = [[readout.waveform(a) for a in row] for row in x]
    (full,) = _run(tile, readout, waves[rows:], readout.t_sample, step, backend)
    v_full, energy, op_energy, charge = _summary(full, tile, readout)
    corners = np.reshape(readout.waveform(1.0 if readout.encoding == "amplitude" else readout.v_pulse), (-1, 2))
    v_replay, m = replay(charge_circuit(tile, readout, inputs=True), tile, corners, readout.mode == "integrator",
                         full["time"], x)
    scale = np.abs(v_full).max() or 1.0
    replay_diff = float(np.abs(v_replay[rows] - v_full).max() / scale)
    if replay_diff <= REPLAY_TOL:
        method = "replay"
        T = v_replay[:rows].T / unit
        m = np.array([m[k, k] for k in range(rows)]).T
    else:  # the replay missed ngspice's steps: one ngspice transient per input
        method = "transient per input"
        results = _run(tile, readout, waves[:rows], readout.t_sample, step, backend)
        T = np.array([_v_out(r, mode, tile.cols) for r in results]).T / unit
        m = np.array([-_product_integral(r[f"v(in{k})"], _stack(r, "i(vin{})", rows), r["time"])
                      for k, r in enumerate(results)]).T
    superposition = float(np.abs(v_full - T.sum(1) * unit).max() / scale)
    if mode == "integrator":
        t, window = full["time"], full["time"] <= readout.t_int
        currents = [full[f"i(vsense{j})"] for j in range(tile.cols)]
        settle = max(_settling(t[window], i[window], np.interp(readout.t_int, t, i)) for i in currents)
    else:
        settle = _passive_settling(tile, readout, backend)
    metadata = {
        "engine": "ngspice", "readout": f"charge-{mode}", "encoding": encoding,
        "t_int": readout.t_int, "c_int": readout.c_int, "gain": readout.gain,
        "v_pulse": readout.v_pulse, "t_edge": readout.t_edge, "max_step": step,
        "units": "T in V/V: V_out = Q / c_int", "settling_time_s": settle,
        "energy_J": energy, "energy_opamp_J": op_energy, "input_charge_C": charge,
        "superposition_max_rel_diff": superposition, "t_method": method, "replay_max_rel_diff": replay_diff,
    }
    if encoding == "amplitude":
        metadata["energy_matrix_J"] = ((m + m.T) / 2).tolist()
    runner = get_backend(backend)
    metadata.update(
        ngspice_version=runner.version, ngspice_backend=runner.name, solver=runner.info.solver,
        parameters=tile.parameters(), content_hash=tile.content_hash(),
        seconds=time.perf_counter() - start, circuitsim_version=__version__,
    )
    return Characterization(T, metadata)


def charge_characterize_from_args(tile: Tile, readout: str, t_int: float, c_int: float,
                                  backend: str = "shared", encoding: str = "amplitude") -> Characterization:
    """Command-line entry: ``readout`` is ``"integrator"`` or ``"passive"`` (see :func:`characterize_charge`)."""
    return characterize_charge(tile, t_int, c_int, mode=readout, encoding=encoding, backend=backend)
