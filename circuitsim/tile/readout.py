"""Readout circuits beyond the ideal virtual ground: swing-limited TIAs and sense resistors.

Both readouts reuse the array of :func:`circuitsim.tile.crossbar.build_circuit` (same
node and element names) and replace its outputs:

- :class:`SwingLimitedTIA` keeps the TIA feedback resistor ``Rfb<j>`` but its
  op-amp is a B-source clamp ``Bamp<j>``: ``V(tia<j>) = max(v_out_min,
  min(v_out_max, -gain * V(out<j>)))``. In numpy the same readout is
  ``clip(-r_feedback * gain/(1+gain) * T @ V)`` (:meth:`SwingLimitedTIA.output_voltages`).
  The two agree exactly while no output saturates and on the saturated outputs
  themselves (they sit at the rail); numpy ignores that a saturated column loses its
  virtual ground, which changes its neighbours' currents slightly through the
  word-line resistance.
- A passive sense resistor ends every bit line in ``Rsense<j>`` (``sns<j>`` to ground,
  after the 0 V current probe ``Vsense<j>``); the output is the bit-line voltage
  ``V(sns<j>) = r_sense * I_j``. The bit line rises, so every cell sees less than its
  input voltage. With linear cells the tile stays linear (``V_bl = T @ V``, ``T`` in
  V/V, solvable by the native engine through :func:`sense_resistor_circuit`); with
  sinh cells ``I = G * V0 * sinh(V / V0)`` (``Bcell<i>_<j>``, typical of RRAM/MRAM
  reads) it becomes input-dependent and :func:`characterize_sense_resistor` fits, on
  ngspice operating points, ``V_bl[j] = p_j((T @ V + T3 @ V**3)[j])``: a linear map,
  a cubic term per input (each cell's own ``sinh x ≈ x + x**3/6``) and a per-column
  output polynomial ``p_j`` (the compression by the rising bit line).

Public API
----------
SwingLimitedTIA, SenseFit, array_builder, sinh_cell_lines, sense_resistor_circuit,
readout_deck, simulate_readout, characterize_sense_resistor, check_positive
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .circuit import GROUND, Circuit, CircuitBuilder
from .crossbar import TIA, Tile, build_circuit, input_source_names, sense_source_names
from .netlist import format_value, write_netlist


def check_positive(name: str, value) -> float:
    """Return ``value`` as a float, or raise a one-line ConfigError unless finite and > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite value > 0, got {value!r}")
    return value


@dataclass(frozen=True)
class SwingLimitedTIA:
    """TIA whose output is clamped to ``[v_out_min, v_out_max]`` (an op-amp's swing)."""

    gain: float = 1e5
    """Open-loop voltage gain of the op-amp (V/V), > 0."""
    r_feedback: float = 10e3
    """Feedback resistance in ohm, > 0."""
    v_out_min: float = -1.0
    """Lowest output voltage the op-amp can reach, volts."""
    v_out_max: float = 1.0
    """Highest output voltage the op-amp can reach, volts; > ``v_out_min``."""

    def __post_init__(self):
        check_positive("SwingLimitedTIA gain", self.gain)
        check_positive("SwingLimitedTIA r_feedback", self.r_feedback)
        try:
            lo, hi = float(self.v_out_min), float(self.v_out_max)
        except (TypeError, ValueError):
            lo = hi = float("nan")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(f"SwingLimitedTIA needs finite v_out_min < v_out_max, got {lo!r}, {hi!r}")

    @property
    def tia(self) -> TIA:
        """The unclamped :class:`~circuitsim.tile.crossbar.TIA` with the same gain and feedback."""
        return TIA(gain=self.gain, r_feedback=self.r_feedback)

    def clip(self, v) -> np.ndarray:
        """Clip voltages to the output swing."""
        return np.clip(np.asarray(v, dtype=float), self.v_out_min, self.v_out_max)

    def output_voltages(self, T, V) -> np.ndarray:
        """numpy model: ``clip(-r_feedback * gain / (1 + gain) * V @ T.T)``.

        ``T`` (cols × rows, siemens) is the current-mode transfer matrix of the tile
        with :attr:`tia`; ``V`` has shape ``(rows,)`` or ``(n, rows)``.
        """
        scale = -self.r_feedback * self.gain / (1.0 + self.gain)
        return self.clip(scale * (np.asarray(V, dtype=float) @ np.asarray(T).T))


def array_builder(tile: Tile, inputs=None, drop: tuple[str, ...] = ()) -> CircuitBuilder:
    """A builder holding ``build_circuit(tile, inputs)`` minus some element groups.

    Groups whose first element name starts with a prefix in ``drop`` (e.g.
    ``"Vsense"``, ``"Rcell"``, ``"Eamp"``, ``"Vin"``) are left out; node indices and
    every other element keep their names, so new readout elements can be added.
    """
    circuit = build_circuit(tile, inputs)
    b = CircuitBuilder(circuit.title, list(circuit.header))
    b.nodes(circuit.node_names)
    for g in circuit.groups:
        if not g.names[0].startswith(tuple(drop)):
            b.add(g.kind, g.names, g.nodes, g.values, g.comment)
    return b


def sinh_cell_lines(tile: Tile, v0: float) -> list[str]:
    """B-source lines of sinh cells ``I = G * v0 * sinh(V(wl, bl) / v0)`` (cells with G > 0)."""
    v0 = check_positive("cell_v0", v0)
    circuit = build_circuit(tile)
    names = circuit.node_names
    lines = [f"* nonlinear cells: I = G * V0 * sinh(V / V0), V0 = {format_value(v0)} V"]
    cells = [(n, nodes, r) for g in circuit.group("R") if g.names[0].startswith("Rcell")
             for n, nodes, r in zip(g.names, g.nodes, g.values)]
    for name, (a, b), r in cells:
        amp = format_value(v0 / r)
        lines.append(f"B{name[1:]} {names[a]} {names[b]} I = {amp}*sinh(V({names[a]},{names[b]})/{format_value(v0)})")
    return lines


def sense_resistor_circuit(tile: Tile, r_sense: float, inputs=None, linear_cells: bool = True) -> Circuit:
    """The tile with every bit line ending in ``r_sense`` to ground (node ``sns<j>``).

    With ``linear_cells=False`` the cell resistors are left out (add
    :func:`sinh_cell_lines`); the tile's TIA, if any, is ignored.
    """
    r_sense = check_positive("r_sense", r_sense)
    drop = ("Vsense",) if linear_cells else ("Vsense", "Rcell")
    b = array_builder(tile.with_wires(tia=None), inputs, drop)
    b.header.append(f"readout: passive sense resistor r_sense = {format_value(r_sense)} ohm")
    cols = tile.cols
    end, sense = [f"blend{j}" for j in range(cols)], [f"sns{j}" for j in range(cols)]
    b.add("V", sense_source_names(cols), np.stack([b.nodes(end), b.nodes(sense)], 1), 0.0,
          "output current probes (0 V)")
    b.add("R", [f"Rsense{j}" for j in range(cols)], np.stack([b.nodes(sense), np.zeros(cols)], 1),
          r_sense, "sense resistors (no virtual ground); output = V(sns<j>)")
    return b.build()


def readout_deck(tile: Tile, readout, cell_v0: float | None = None) -> tuple[str, list[str]]:
    """ngspice deck of a tile with a readout, and the output vectors to save.

    Parameters
    ----------
    tile : Tile
        The tile (its own ``tia`` is replaced by ``readout``).
    readout : SwingLimitedTIA or float
        A swing-limited TIA, or a sense resistance in ohm.
    cell_v0 : float, optional
        sinh voltage of the cells in volts; ``None`` for linear cells.

    Returns
    -------
    deck : str
        The deck (DC input sources ``Vin<i>`` at 0 V).
    outputs : list of str
        ``v(tia<j>)`` or ``v(sns<j>)``, volts.
    """
    cols, extra = tile.cols, []
    if cell_v0 is not None:
        extra += sinh_cell_lines(tile, cell_v0)
    if isinstance(readout, SwingLimitedTIA):
        drop = ("Eamp", "Rcell") if cell_v0 is not None else ("Eamp",)
        b = array_builder(tile.with_wires(tia=readout.tia), None, drop)
        b.header.append(f"readout: swing-limited TIA [{readout.v_out_min}, {readout.v_out_max}] V")
        circuit, outputs = b.build(), [f"v(tia{j})" for j in range(cols)]
        lo, hi, gain = (format_value(x) for x in (readout.v_out_min, readout.v_out_max, readout.gain))
        extra.append("* TIA op-amps with output swing limits (B-source clamp)")
        extra += [f"Bamp{j} tia{j} {GROUND} V = max({lo}, min({hi}, -{gain}*V(out{j})))" for j in range(cols)]
    else:
        circuit = sense_resistor_circuit(tile, readout, linear_cells=cell_v0 is None)
        outputs = [f"v(sns{j})" for j in range(cols)]
    return write_netlist(circuit, options=tuple(extra)), outputs


def _inputs(tile: Tile, inputs) -> np.ndarray:
    v = np.asarray(inputs, dtype=float)
    if v.ndim not in (1, 2) or v.shape[-1] != tile.rows:
        raise ConfigError(f"inputs must have shape ({tile.rows},) or (n, {tile.rows}), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ConfigError("input voltages must be finite")
    return v


def simulate_readout(tile: Tile, readout, inputs, cell_v0: float | None = None,
                     backend: str = "shared") -> np.ndarray:
    """Output voltages of a readout for input vectors, from ngspice operating points.

    ``inputs`` (volts) has shape ``(rows,)`` or ``(n, rows)``; the result has shape
    ``(cols,)`` or ``(n, cols)``. All vectors run in one ngspice session (one
    ``op`` per vector, the inputs set with ``alter``).
    """
    from ..spice import get_backend

    v = _inputs(tile, inputs)
    deck, outputs = readout_deck(tile, readout, cell_v0)
    sources = [s.lower() for s in input_source_names(tile.rows)]
    steps = [[f"alter {s} dc = {format_value(x)}" for s, x in zip(sources, row)] + ["op"]
             for row in np.atleast_2d(v)]
    results = get_backend(backend).run(deck, steps, save=outputs)
    out = np.array([[r[name][0] for name in outputs] for r in results])
    return out if v.ndim == 2 else out[0]


@dataclass(frozen=True, eq=False)
class SenseFit:
    """Fitted sense-resistor readout: ``V_bl[j] = sum_k poly[j, k-1] * u[j]**k``, ``u = T @ V + T3 @ V**3``."""

    T: np.ndarray
    """Linear part, V/V, shape ``(cols, rows)`` (least squares on the samples)."""
    T3: np.ndarray
    """Cubic input term, V/V^3, shape ``(cols, rows)``; zero for linear cells."""
    poly: np.ndarray
    """Per-column polynomial coefficients of powers 1..degree, shape ``(cols, degree)``, V^(1-k)."""
    r_sense: float
    """Sense resistance, ohm."""
    max_rel_error: float
    """Largest |model - ngspice| on held-out inputs, relative to each column's largest |output|."""
    rms_rel_error: float
    """RMS of model - ngspice on held-out inputs, relative to the RMS output."""
    metadata: dict = field(default_factory=dict)
    """Engine, ngspice version, samples, seed, input range, cell V0, training errors, seconds."""

    def predict(self, V) -> np.ndarray:
        """Bit-line voltages (volts) for inputs of shape ``(rows,)`` or ``(n, rows)``."""
        V = np.asarray(V, dtype=float)
        u = V @ self.T.T + V**3 @ self.T3.T
        powers = np.arange(1, self.poly.shape[1] + 1)
        return np.sum(self.poly * u[..., None] ** powers, axis=-1)

    def predict_current(self, V) -> np.ndarray:
        """Bit-line currents (amperes): :meth:`predict` divided by ``r_sense``."""
        return self.predict(V) / self.r_sense


def _errors(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    scale = np.abs(ref).max(axis=0)
    scale[scale == 0] = 1.0
    rms = np.sqrt(np.mean(ref**2)) or 1.0
    return float((np.abs(pred - ref) / scale).max()), float(np.sqrt(np.mean((pred - ref) ** 2)) / rms)


def _fit(X: np.ndarray, Y: np.ndarray, degree: int, cubic: bool):
    """Least squares: ``[T, T3]`` on the outputs, then ``p_j`` on ``u = T V + T3 V^3``."""
    F = np.concatenate([X, X**3], 1) if cubic else X
    M = np.linalg.lstsq(F, Y, rcond=None)[0].T
    rows = X.shape[1]
    T, T3 = M[:, :rows], (M[:, rows:] if cubic else np.zeros_like(M))
    U = F @ M.T
    poly = np.zeros((Y.shape[1], degree))
    powers = np.arange(1, degree + 1)
    for j in range(Y.shape[1]):
        s = np.abs(U[:, j]).max() or 1.0
        coef = np.linalg.lstsq((U[:, j, None] / s) ** powers, Y[:, j], rcond=None)[0]
        poly[j] = coef / s**powers
    return T, T3, poly


def characterize_sense_resistor(tile: Tile, r_sense: float, samples: int = 64, seed: int = 0,
                                backend: str = "shared", *, cell_v0: float | None = None,
                                v_max: float = 0.5, degree: int = 3) -> SenseFit:
    """Fit a sense-resistor readout on ngspice operating points of random inputs.

    Parameters
    ----------
    tile : Tile
        The tile (its TIA, if any, is replaced by the sense resistors).
    r_sense : float
        Sense resistance per bit line, ohm.
    samples : int
        Random input vectors for the fit (uniform in ``[0, v_max]``); a quarter as
        many more (at least 8) are held out to measure the errors.
    seed : int
        Seed of the input vectors.
    backend : {"shared", "subprocess"}
        ngspice backend.
    cell_v0 : float, optional
        sinh voltage of the cells, volts; ``None`` for linear cells.
    v_max : float
        Largest input voltage, volts.
    degree : int
        Degree of the per-column output polynomial (>= 1).

    Returns
    -------
    SenseFit
    """
    from ..spice import get_backend

    r_sense, v_max = check_positive("r_sense", r_sense), check_positive("v_max", v_max)
    if int(degree) != degree or degree < 1:
        raise ConfigError(f"degree must be an integer >= 1, got {degree!r}")
    need = 2 * tile.rows + degree
    if int(samples) != samples or samples < need:
        raise ConfigError(f"samples must be an integer >= 2 * rows + degree = {need}, got {samples!r}")
    start = time.perf_counter()
    n_test = max(int(samples) // 4, 8)
    X = np.random.default_rng(seed).uniform(0.0, v_max, (int(samples) + n_test, tile.rows))
    Y = simulate_readout(tile, r_sense, X, cell_v0, backend)
    T, T3, poly = _fit(X[:samples], Y[:samples], int(degree), cubic=cell_v0 is not None)
    fit = SenseFit(T, T3, poly, r_sense, 0.0, 0.0)
    train = _errors(fit.predict(X[:samples]), Y[:samples])
    test = _errors(fit.predict(X[samples:]), Y[samples:])
    runner = get_backend(backend)
    from .._version import __version__

    metadata = {
        "engine": "ngspice", "ngspice_version": runner.version, "ngspice_backend": runner.name,
        "solver": runner.info.solver, "readout": "sense_resistor", "r_sense": r_sense,
        "cell_v0": cell_v0, "samples": int(samples), "held_out": n_test, "seed": seed,
        "v_max": v_max, "degree": int(degree), "train_max_rel_error": train[0],
        "train_rms_rel_error": train[1], "parameters": tile.parameters(),
        "content_hash": tile.content_hash(), "seconds": time.perf_counter() - start,
        "circuitsim_version": __version__,
    }
    return SenseFit(T, T3, poly, r_sense, test[0], test[1], metadata)
