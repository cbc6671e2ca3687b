"""The canonical crossbar tile of docs/design.md and its circuit.

A :class:`Tile` has ``rows`` inputs and ``cols`` outputs. Input ``i`` is an ideal
source ``V_i`` followed by an optional driver resistance and ``cols`` word-line
segments of ``r_row`` ohm (one before every cell); cell ``(i, j)`` is the
conductance ``G[i, j]`` from word-line node ``(i, j)`` to bit-line node ``(i, j)``;
bit line ``j`` runs from row 0 down to the output with ``rows`` segments of
``r_col`` ohm. Outputs sit at virtual ground: an ideal 0 V source, or a
transimpedance amplifier (:class:`TIA`). The output current ``I_j`` is the
current of the sense source ``Vsense<j>``, flowing from the bit line into the
output node.

Node names in decks: ``in<i>`` (source), ``drv<i>`` (after the driver),
``wl<i>_<j>`` and ``bl<i>_<j>`` (cell terminals), ``blend<j>`` (bit-line end),
``out<j>`` (TIA input) and ``tia<j>`` (TIA output). A wire of zero resistance
merges its nodes instead of writing a zero-ohm resistor.

Public API
----------
TIA, Tile, build_circuit, input_source_names, sense_source_names
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .checks import C_MAX, G_MAX, R_MAX, R_MIN, check_array, check_range
from .circuit import GROUND, Circuit, CircuitBuilder


def _check_nonnegative(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite value >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class TIA:
    """Transimpedance amplifier holding an output at virtual ground.

    The op-amp is a voltage-controlled voltage source of finite open-loop gain
    (``V_tia = -gain * V_out``) with a feedback resistor from its inverting input
    to its output, so ``V_tia ≈ -r_feedback * I`` for large gains.
    """

    gain: float = 1e5
    """Open-loop voltage gain of the op-amp (V/V), > 0."""
    r_feedback: float = 10e3
    """Feedback resistance in ohm, > 0."""

    def __post_init__(self):
        for name in ("gain", "r_feedback"):
            if _check_nonnegative(f"TIA {name}", getattr(self, name)) == 0:
                raise ConfigError(f"TIA {name} must be > 0")
        check_range("TIA r_feedback", float(self.r_feedback), R_MAX, R_MIN, "ohm", zero_ok=False)
        check_range("TIA gain", float(self.gain), 1e12, 1e-3, "V/V", zero_ok=False)

    @classmethod
    def sense_resistor(cls, r_sense: float) -> "TIA":
        """The port that a passive sense resistor of ``r_sense`` ohm to ground presents to its bit line.

        A TIA's input is the conductance ``(1 + gain) / r_feedback`` to ground, and the bit line's
        current flows into it through the sense source; gain 1 and ``r_feedback = 2 r_sense``
        make it ``1 / r_sense`` exactly (a factor of two is exact in floating point). A tile with
        this port is the tile whose bit lines end in the resistor: its ``T`` (siemens) gives the
        currents through the resistors (the bit-line ends at ``r_sense · I``) and its ``Y`` the
        power the inputs deliver; its "TIA output" voltage is not the sense voltage (decks that
        show the resistor: :func:`circuitsim.tile.readout.sense_resistor_circuit`).
        """
        r_sense = _check_nonnegative("r_sense", r_sense)
        if not 0 < r_sense <= R_MAX / 2:
            raise ConfigError(f"r_sense must be > 0 and <= {R_MAX / 2:g} ohm, got {r_sense!r}")
        return cls(gain=1.0, r_feedback=2.0 * r_sense)


@dataclass(frozen=True, eq=False)
class Tile:
    """A crossbar tile with wire parasitics (the contract of docs/design.md).

    Construct with a ``rows × cols`` conductance array; the array is copied and
    made read-only.
    """

    conductances: np.ndarray
    """Cell conductances ``G[i, j]`` in siemens, shape ``(rows, cols)``, finite, >= 0."""
    r_row: float = 0.0
    """Word-line resistance per cell segment, ohm."""
    r_col: float = 0.0
    """Bit-line resistance per cell segment, ohm."""
    c_row: float = 0.0
    """Word-line capacitance to ground per cell node, farad."""
    c_col: float = 0.0
    """Bit-line capacitance to ground per cell node, farad."""
    r_driver: float = 0.0
    """Output resistance of each input driver, ohm."""
    tia: TIA | None = None
    """Readout amplifier; ``None`` holds outputs at 0 V with ideal sources."""
    _hash: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        g = check_array("conductances", self.conductances)
        if g.ndim != 2:
            raise ConfigError(
                f"conductances must be a 2-D array (rows x cols), got shape {g.shape}"
            )
        if g.size == 0:
            raise ConfigError(f"conductances must not be empty, got shape {g.shape}")
        if not (g.min() >= 0 and g.max() <= G_MAX):  # NaN fails too: then say which cell is wrong
            if not np.all(np.isfinite(g)):
                i, j = np.argwhere(~np.isfinite(g))[0]
                raise ConfigError(f"conductance G[{i}, {j}] is {g[i, j]}; all must be finite")
            if np.any(g < 0):
                i, j = np.argwhere(g < 0)[0]
                raise ConfigError(f"conductance G[{i}, {j}] = {g[i, j]:g} S is negative; all must be >= 0")
            i, j = np.argwhere(g > G_MAX)[0]
            check_range(f"conductance G[{i}, {j}]", g[i, j], G_MAX, unit="S")
        g.setflags(write=False)
        object.__setattr__(self, "conductances", g)
        for name in ("r_row", "r_col", "c_row", "c_col", "r_driver"):
            value = _check_nonnegative(name, getattr(self, name))
            if name.startswith("c_"):
                check_range(name, value, C_MAX, unit="F")
            else:
                check_range(name, value, R_MAX, R_MIN, "ohm")
            object.__setattr__(self, name, value)
        if self.tia is not None and not isinstance(self.tia, TIA):
            raise ConfigError("tia must be a circuitsim.TIA or None")

    @property
    def rows(self) -> int:
        """Number of inputs (word lines)."""
        return self.conductances.shape[0]

    @property
    def cols(self) -> int:
        """Number of outputs (bit lines)."""
        return self.conductances.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self.conductances.shape

    def parameters(self) -> dict:
        """Return the scalar parameters (everything but the conductances) as a dict."""
        params = {
            "rows": self.rows,
            "cols": self.cols,
            "r_row": self.r_row,
            "r_col": self.r_col,
            "c_row": self.c_row,
            "c_col": self.c_col,
            "r_driver": self.r_driver,
            "readout": "tia" if self.tia else "ideal",
        }
        if self.tia:
            params.update(tia_gain=self.tia.gain, tia_r_feedback=self.tia.r_feedback)
        return params

    def content_hash(self) -> str:
        """SHA-256 of the conductances and parameters (hex), stable across runs."""
        if not self._hash:
            h = hashlib.sha256()
            h.update(json.dumps(self.parameters(), sort_keys=True).encode())
            h.update(np.ascontiguousarray(self.conductances, dtype="<f8").tobytes())
            object.__setattr__(self, "_hash", h.hexdigest())
        return self._hash

    def with_wires(self, **changes) -> "Tile":
        """Return a copy with some scalar fields replaced (e.g. ``r_row=2.5``)."""
        fields = dict(
            r_row=self.r_row, r_col=self.r_col, c_row=self.c_row, c_col=self.c_col,
            r_driver=self.r_driver, tia=self.tia,
        )
        fields.update(changes)
        return Tile(self.conductances, **fields)


def input_source_names(rows: int) -> list[str]:
    """Names of the input voltage sources of a tile with ``rows`` inputs."""
    return [f"Vin{i}" for i in range(rows)]


def sense_source_names(cols: int) -> list[str]:
    """Names of the 0 V sense sources whose currents are the tile outputs."""
    return [f"Vsense{j}" for j in range(cols)]


def _grid_names(prefix: str, rows: int, cols: int) -> np.ndarray:
    return np.array([[f"{prefix}{i}_{j}" for j in range(cols)] for i in range(rows)], dtype=object)


def build_circuit(tile: Tile, inputs=None) -> Circuit:
    """Build the circuit of a tile with DC input voltages.

    Parameters
    ----------
    tile : Tile
        The tile.
    inputs : array_like, optional
        Input voltages in volts, shape ``(rows,)``; zeros by default.

    Returns
    -------
    Circuit
        Elements named as in the module docstring.
    """
    rows, cols = tile.shape
    v_in = np.zeros(rows) if inputs is None else np.asarray(inputs, dtype=float)
    if v_in.shape != (rows,):
        raise ConfigError(f"inputs must have shape ({rows},), got {v_in.shape}")
    if not np.all(np.isfinite(v_in)):
        raise ConfigError("input voltages must be finite")

    b = CircuitBuilder(f"circuitsim crossbar tile {rows}x{cols}")
    b.header = [f"{k} = {v}" for k, v in tile.parameters().items()]
    b.header.append("units: ohm, farad, siemens, volt; outputs = currents of Vsense<j>")
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")

    source = np.array([f"in{i}" for i in range(rows)], dtype=object)
    b.add("V", input_source_names(rows), np.stack([b.nodes(source), np.zeros(rows)], 1),
          v_in, "input sources")

    driven = source
    if tile.r_driver > 0:
        driven = np.array([f"drv{i}" for i in range(rows)], dtype=object)
        b.add("R", [f"Rdrv{i}" for i in range(rows)],
              np.stack([b.nodes(source), b.nodes(driven)], 1), tile.r_driver, "input drivers")

    if tile.r_row > 0:
        wl = _grid_names("wl", rows, cols)
        before = np.concatenate([driven[:, None], wl[:, :-1]], axis=1)
        b.add("R", _grid_names("Rwl", rows, cols),
              np.stack([b.nodes(before), b.nodes(wl)], -1), tile.r_row,
              "word-line segments (one before every cell)")
    else:
        wl = np.repeat(driven[:, None], cols, axis=1)

    end = np.array([f"blend{j}" for j in range(cols)], dtype=object)
    if tile.r_col > 0:
        bl = _grid_names("bl", rows, cols)
        after = np.concatenate([bl[1:, :], end[None, :]], axis=0)
        b.add("R", _grid_names("Rbl", rows, cols),
              np.stack([b.nodes(bl), b.nodes(after)], -1), tile.r_col,
              "bit-line segments (between cells and to the output)")
    else:
        bl = np.repeat(end[None, :], rows, axis=0)

    g = tile.conductances
    on = g > 0
    cell_names = np.array([f"Rcell{i}_{j}" for i, j in zip(ii[on], jj[on])], dtype=object)
    b.add("R", cell_names, np.stack([b.nodes(wl[on]), b.nodes(bl[on])], -1),
          1.0 / g[on], "cells (R = 1/G; cells with G = 0 are open)")

    if tile.c_row > 0:
        b.add("C", _grid_names("Cwl", rows, cols),
              np.stack([b.nodes(wl), np.zeros((rows, cols))], -1), tile.c_row,
              "word-line capacitance")
    if tile.c_col > 0:
        b.add("C", _grid_names("Cbl", rows, cols),
              np.stack([b.nodes(bl), np.zeros((rows, cols))], -1), tile.c_col,
              "bit-line capacitance")

    if tile.tia is None:
        out = np.full(cols, GROUND, dtype=object)
    else:
        out = np.array([f"out{j}" for j in range(cols)], dtype=object)
    b.add("V", sense_source_names(cols), np.stack([b.nodes(end), b.nodes(out)], 1), 0.0,
          "output current sense (0 V); output held at virtual ground")

    if tile.tia is not None:
        tia_out = np.array([f"tia{j}" for j in range(cols)], dtype=object)
        zeros = np.zeros(cols)
        # V(tia) = gain * (V(0) - V(out)): inverting amplifier
        b.add("E", [f"Eamp{j}" for j in range(cols)],
              np.stack([b.nodes(tia_out), zeros, zeros, b.nodes(out)], 1), tile.tia.gain,
              "TIA op-amps (VCVS, inverting input at out<j>)")
        b.add("R", [f"Rfb{j}" for j in range(cols)],
              np.stack([b.nodes(out), b.nodes(tia_out)], 1), tile.tia.r_feedback,
              "TIA feedback resistors")
    return b.build()
