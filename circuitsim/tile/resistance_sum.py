"""The resistance-sum MRAM column: cells in series, read as one resistance.

Source: S. Jung et al., "A crossbar array of magnetoresistive memory devices for in-memory
computing", Nature 601, 211–216 (2022), doi:10.1038/s41586-021-04196-6. Taken from the stored
copy of the article's abstract (nature.com/articles/s41586-021-04196-6) and its Extended Data
Fig. 1 caption: MRAM's low resistance makes a *current*-sum crossbar draw large currents, so the
64 × 64 STT-MRAM array *sums resistances* for its analogue multiply–accumulate; readout
electronics in 28 nm CMOS; a two-layer perceptron classified the 10,000 MNIST test digits at
93.23 % (software 95.24 %), an emulated VGG-8 with the measured errors 98.86 % (software
99.28 %), one layer of a ten-layer network detected faces at 93.4 %. The press release (Samsung,
13 Jan 2022) says the same: the "current-sum" architecture replaced by a "resistance-sum" one.

The stored copies hold neither the article's figures nor its methods, so the cell and readout
below are circuitsim's model of the issue's description ("two transistors and two MTJs per cell,
each cell's contribution set by its input and its stored weight, the cells of a column in
series, the column's total resistance read out"), with every value a named parameter:

- **cell** (:class:`StringCell`): two FET–MTJ pairs in series along the column; in each pair the
  FET is in parallel with (bypasses) its MTJ. Input ``x = +1`` turns on FET A (gate ``IN``),
  ``x = -1`` FET B (gate ``INB``); the weight is stored as complementary MTJ states,
  ``w = +1``: MTJ A antiparallel, MTJ B parallel; ``w = -1`` the reverse. So the cell shows the
  parallel resistance ``R_P`` when ``x w = +1`` and ``R_AP`` when ``x w = -1`` (an XNOR),
  up to the FETs' on and off resistances, which the model keeps (``r_on``, ``r_off``).
- **string**: ``n`` cells in series per column, one wire segment ``r_wire`` before every cell,
  a read voltage ``v_read`` at the top, the bottom into a 0 V sense source (``Vsense<j>``).
- **readout** (:class:`StringReadout`, behavioural): the column's resistance
  ``R = v_read / I`` and the multiply–accumulate estimate
  ``MAC = (n (R_lo + R_hi) / 2 - R) / ((R_hi - R_lo) / 2)``, where ``R_lo``, ``R_hi`` are the
  nominal resistances of a cell (its wire segment included) for ``x w = +1`` and ``-1``; then an
  ADC of ``bits`` over the MAC range ``[-n_max, n_max]`` of the longest string it takes.

Every element is a resistor, so for a fixed input the string is linear: both engines solve
the same :class:`~circuitsim.tile.circuit.Circuit` (the native MNA and the ngspice deck of
:func:`~circuitsim.tile.netlist.write_netlist`). Because the cells are in series, the
resistance reading is exactly affine in the binary inputs, ``R = sum_i f_i(x_i)`` with
``f_i(x) = (f_i(+1) + f_i(-1)) / 2 + x (f_i(+1) - f_i(-1)) / 2``, so a string is characterized
by effective weights and an offset (:func:`string_affine`), which the network path uses.

Node names in decks: ``vdd`` (read source ``Vread``), ``t<i>_<j>`` (top of cell ``i`` of string
``j``, after its wire segment), ``m<i>_<j>`` (between its pairs), ``b<i>_<j>`` (its bottom),
``e<j>`` (end of string ``j``: the last cell's bottom, into ``Vsense<j>``).
Elements: ``Rw`` wire segments, ``Rma``/``Rmb`` MTJs, ``Rfa``/``Rfb`` FETs.

Public API
----------
StringCell, StringReadout, mtj_states, string_circuit, string_currents, string_affine,
check_binary
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import native
from .checks import R_MAX, R_MIN, check_range
from .circuit import GROUND, Circuit, CircuitBuilder
from .netlist import write_netlist
from .topology import _positive

STRING_MAX = 64
"""Cells per string of the paper's array (64 × 64), the default readout range."""


def _resistance(name: str, value) -> float:
    return check_range(name, _positive(name, value), R_MAX, R_MIN, "ohm", zero_ok=False)


@dataclass(frozen=True)
class StringCell:
    """The two-FET, two-MTJ cell and its string's wire (module notes)."""

    r_p: float = 5e3
    """MTJ resistance in the parallel state, ohm (not in the stored copy of the paper; chosen)."""
    r_ap: float = 10e3
    """MTJ resistance in the antiparallel state, ohm (``TMR = r_ap / r_p - 1``; chosen: 100 %)."""
    r_on: float = 500.0
    """On resistance of a bypass FET, ohm (chosen)."""
    r_off: float = 1e9
    """Off resistance of a bypass FET, ohm (chosen: leakage-free to 1e-5 of ``r_p``)."""
    r_wire: float = 0.0
    """Wire segment before every cell of a string, ohm (0: none)."""

    def __post_init__(self):
        for name in ("r_p", "r_ap", "r_on", "r_off"):
            object.__setattr__(self, name, _resistance(f"cell {name}", getattr(self, name)))
        if self.r_wire != 0:
            object.__setattr__(self, "r_wire", _resistance("cell r_wire", self.r_wire))
        if not self.r_ap > self.r_p:
            raise ConfigError(f"cell r_ap ({self.r_ap:g} ohm) must exceed r_p ({self.r_p:g} ohm): TMR > 0")

    @property
    def tmr(self) -> float:
        """Tunnel magnetoresistance ratio ``r_ap / r_p - 1``."""
        return self.r_ap / self.r_p - 1.0

    def cell_resistance(self, r_a, r_b, x) -> np.ndarray:
        """Resistance of cells with MTJs ``r_a``, ``r_b`` (ohm) at inputs ``x`` (±1), wire included."""
        x = np.asarray(x, dtype=float)
        on_a = np.where(x > 0, self.r_on, self.r_off)
        on_b = np.where(x > 0, self.r_off, self.r_on)
        return _parallel(r_a, on_a) + _parallel(r_b, on_b) + self.r_wire

    @property
    def r_lo(self) -> float:
        """Nominal cell resistance (wire included) for ``x w = +1``, ohm."""
        a, b = mtj_states(np.ones(1), self)
        return float(self.cell_resistance(a, b, 1.0)[0])

    @property
    def r_hi(self) -> float:
        """Nominal cell resistance (wire included) for ``x w = -1``, ohm."""
        a, b = mtj_states(-np.ones(1), self)
        return float(self.cell_resistance(a, b, 1.0)[0])


def _parallel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a * b / (a + b)


def check_binary(what: str, values, allowed=(-1.0, 1.0), fix: str = "") -> np.ndarray:
    """``values`` as floats when every one is in ``allowed``; else one :class:`ConfigError` line."""
    v = np.asarray(values, dtype=float)
    bad = ~np.isin(v, allowed)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(f"the resistance-sum cell stores and reads only {' and '.join(f'{a:g}' for a in allowed)}: "
                          f"{what}{list(where)} is {float(v[where]):g}{'; ' + fix if fix else ''}")
    return v


def mtj_states(weights, cell: StringCell) -> tuple[np.ndarray, np.ndarray]:
    """Nominal MTJ resistances ``(r_a, r_b)`` (ohm) storing binary ``weights`` (±1)."""
    w = check_binary("weight", weights, fix="binarize the weights (sign) before mapping")
    return np.where(w > 0, cell.r_ap, cell.r_p), np.where(w > 0, cell.r_p, cell.r_ap)


def _check_string(r_a, r_b, x, n_max: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r_a, r_b = np.atleast_2d(np.asarray(r_a, dtype=float)), np.atleast_2d(np.asarray(r_b, dtype=float))
    if r_a.shape != r_b.shape or r_a.ndim != 2 or r_a.size == 0:
        raise ConfigError(f"MTJ arrays must be equal non-empty (cells × strings) arrays, got {r_a.shape} and {r_b.shape}")
    if not (np.all(np.isfinite(r_a)) and np.all(np.isfinite(r_b))) or min(r_a.min(), r_b.min()) < R_MIN:
        raise ConfigError(f"MTJ resistances must be finite and >= {R_MIN:g} ohm")
    if n_max is not None and r_a.shape[0] > n_max:
        raise ConfigError(f"a string of {r_a.shape[0]} cells is longer than the readout's range of {n_max}; "
                          f"cut the rows into partitions of at most {n_max}")
    x = check_binary("input", x, fix="binarize the inputs (IN high = +1, low = -1)")
    if x.shape[-1:] != r_a.shape[:1]:
        raise ConfigError(f"inputs must have {r_a.shape[0]} values per vector (one per cell), got shape {x.shape}")
    return r_a, r_b, x


def string_circuit(r_a, r_b, x, cell: StringCell, v_read: float = 0.2, n_max: int | None = STRING_MAX) -> Circuit:
    """The strings of one tile at one input vector, as a :class:`Circuit` (module notes).

    Parameters
    ----------
    r_a, r_b : array_like
        MTJ resistances of pairs A and B, ohm, ``cells × strings``.
    x : array_like
        Input of every cell row, ±1, ``(cells,)``.
    cell : StringCell
        FETs and wire.
    v_read : float
        Read voltage across every string, volts.
    n_max : int or None
        Longest string the readout takes (None: no limit).
    """
    r_a, r_b, x = _check_string(r_a, r_b, x, n_max)
    if x.ndim != 1:
        raise ConfigError(f"one input vector per circuit, got shape {x.shape}")
    n, m = r_a.shape
    b = CircuitBuilder("resistance-sum strings")
    b.header.extend([f"{n} cells x {m} strings; v_read = {v_read:g} V; r_on = {cell.r_on:g}, "
                     f"r_off = {cell.r_off:g}, r_wire = {cell.r_wire:g} ohm",
                     "inputs " + " ".join(f"{v:+.0f}" for v in x)])
    jj = np.arange(m)
    vdd, gnd = b.nodes(["vdd"]), b.nodes([GROUND])
    b.add("V", ["Vread"], np.concatenate([vdd, gnd]), [v_read], "read voltage")
    above = np.repeat(vdd, m)
    wires, mtj_a, mtj_b, fet_a, fet_b = [], [], [], [], []
    for i in range(n):
        top = b.nodes([f"t{i}_{j}" for j in jj]) if cell.r_wire > 0 else above
        if cell.r_wire > 0:
            wires.append((above, top))
        mid = b.nodes([f"m{i}_{j}" for j in jj])
        bottom = b.nodes([f"b{i}_{j}" if i + 1 < n else f"e{j}" for j in jj])
        mtj_a.append((top, mid, r_a[i]))
        mtj_b.append((mid, bottom, r_b[i]))
        fet_a.append((top, mid, np.full(m, cell.r_on if x[i] > 0 else cell.r_off)))
        fet_b.append((mid, bottom, np.full(m, cell.r_off if x[i] > 0 else cell.r_on)))
        above = bottom
    names = [f"{i}_{j}" for i in range(n) for j in jj]
    if wires:
        b.add("R", [f"Rw{s}" for s in names], np.stack([np.concatenate([p for p, _ in wires]),
                                                        np.concatenate([q for _, q in wires])], 1),
              [cell.r_wire], "wire segments")
    for prefix, parts, comment in (("Rma", mtj_a, "MTJ A"), ("Rmb", mtj_b, "MTJ B"),
                                   ("Rfa", fet_a, "FET A (gate IN)"), ("Rfb", fet_b, "FET B (gate INB)")):
        b.add("R", [f"{prefix}{s}" for s in names],
              np.stack([np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])], 1),
              np.concatenate([p[2] for p in parts]), comment)
    ends = b.nodes([f"e{j}" for j in jj])
    b.add("V", [f"Vsense{j}" for j in jj], np.stack([ends, np.repeat(gnd, m)], 1), [0.0], "sense (0 V)")
    return b.build()


def string_currents(r_a, r_b, inputs, cell: StringCell, v_read: float = 0.2, engine: str = "native",
                    backend: str = "shared", n_max: int | None = STRING_MAX) -> np.ndarray:
    """String currents (amperes, ``vectors × strings``) for input vectors (±1, ``vectors × cells``).

    ``engine = "native"`` solves each vector's :func:`string_circuit` by MNA; ``"ngspice"``
    runs the same circuit's deck, one ``op`` per vector.
    """
    r_a, r_b, x = _check_string(r_a, r_b, inputs, n_max)
    x = np.atleast_2d(x)
    names = [f"vsense{j}" for j in range(r_a.shape[1])]
    circuits = [string_circuit(r_a, r_b, row, cell, v_read, n_max) for row in x]
    if engine == "native":
        return np.array([native.operating_point(c).current(names) for c in circuits])
    if engine != "ngspice":
        raise ConfigError(f"unknown engine {engine!r}; choose native or ngspice")
    from ..spice import get_backend

    run = get_backend(backend).run
    save = [f"i({n})" for n in names]
    results = [run(write_netlist(c), [["op"]], save=save)[0] for c in circuits]
    return np.array([[r[s][0] for s in save] for r in results])


def string_affine(r_a, r_b, cell: StringCell, n_max: int | None = STRING_MAX,
                  reference: StringCell | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Effective weights ``W`` (``cells × strings``) and offsets ``o`` (``(strings,)``) with
    ``MAC(x) = x @ W + o`` exactly, the readout's estimate for ±1 inputs ``x``.

    The readout is calibrated on ``reference`` (default ``cell``: its nominal ``R_lo``, ``R_hi``).
    """
    r_a, r_b, _ = _check_string(r_a, r_b, np.ones(np.shape(np.atleast_2d(r_a))[0]), n_max)
    ref = cell if reference is None else reference
    plus, minus = cell.cell_resistance(r_a, r_b, 1.0), cell.cell_resistance(r_a, r_b, -1.0)
    half = 0.5 * (ref.r_hi - ref.r_lo)
    weights = (minus - plus) / (2 * half)
    # per cell, so that nominal cells give exactly 0 (a MAC of 0 is a tie the next step decides)
    offset = (0.5 * (ref.r_lo + ref.r_hi) - 0.5 * (plus + minus)).sum(0) / half
    return weights, offset


@dataclass(frozen=True)
class StringReadout:
    """The behavioural readout of a string: resistance from the current, MAC, then the ADC."""

    cell: StringCell
    """Nominal cell the readout is calibrated on (``R_lo``, ``R_hi``)."""
    v_read: float = 0.2
    """Read voltage across the string, volts."""
    n_max: int = STRING_MAX
    """Longest string the readout takes (its MAC range is ``[-n_max, n_max]``)."""
    bits: int | None = None
    """ADC resolution over ``[-n_max, n_max]`` (uniform, mid-tread, clipping); None: no ADC."""

    def __post_init__(self):
        if not (0 < float(self.v_read) < np.inf):
            raise ConfigError(f"readout v_read must be > 0 volts, got {self.v_read!r}")
        if int(self.n_max) != self.n_max or self.n_max < 1:
            raise ConfigError(f"readout n_max must be a positive integer, got {self.n_max!r}")
        if self.bits is not None and (int(self.bits) != self.bits or not 1 <= self.bits <= 16):
            raise ConfigError(f"readout bits must be 1..16 or None, got {self.bits!r}")

    def resistance(self, currents) -> np.ndarray:
        """String resistances ``v_read / I``, ohm."""
        return self.v_read / np.asarray(currents, dtype=float)

    def mac(self, currents, n: int) -> np.ndarray:
        """Analog MAC estimates of strings of ``n`` cells from their currents."""
        if n > self.n_max:
            raise ConfigError(f"a string of {n} cells is longer than the readout's range of {self.n_max}; "
                              f"cut the rows into partitions of at most {self.n_max}")
        lo, hi = self.cell.r_lo, self.cell.r_hi
        return (n * 0.5 * (lo + hi) - self.resistance(currents)) / (0.5 * (hi - lo))

    def digitize(self, mac) -> np.ndarray:
        """The ADC: nearest of ``2^bits`` uniform levels over ``[-n_max, n_max]`` (identity without bits)."""
        mac = np.asarray(mac, dtype=float)
        if self.bits is None:
            return mac
        step = 2.0 * self.n_max / ((1 << self.bits) - 1)
        return np.clip(np.round((mac + self.n_max) / step) * step - self.n_max, -self.n_max, self.n_max)

    def read(self, currents, n: int) -> np.ndarray:
        """Digitized MAC of strings of ``n`` cells from their currents."""
        return self.digitize(self.mac(currents, n))
