"""Crossbar cell models as data: one description gives the native current law and the ngspice deck.

A cell sits between its word-line node ``a`` and its bit-line node ``b``; its current ``I`` flows
from ``a`` to ``b``. Every model is a frozen dataclass of per-cell parameters (arrays of the
tile's ``rows × cols`` shape, or scalars broadcast to it) and is a series chain of at most two
elements (``a → m → b``, ``m`` an internal node):

``linear`` (:class:`LinearCell`)
    ``I = g V``.
``sinh`` (:class:`SinhCell`)
    Filamentary RRAM: a junction ``I = i0 sinh(V_d / v0)`` in series with the filament's
    ``r_series`` (``V = V_d + I r_series``).
``1s1r`` (:class:`SelectorCell`)
    A selector of two antiparallel diodes, ``I = i_s (exp(V_s/(n v_t)) - exp(-V_s/(n v_t)))``,
    in series with the memory conductance ``g``.
``1t1r`` (:class:`TransistorCell`)
    An n-channel access transistor (drain on the word line, gate at ``v_gate``, the word line's
    select voltage; bulk on its source) in series with the memory conductance ``g``. The
    transistor is ngspice's level-1 MOSFET (Shichman-Hodges, ``mos1load.c``) with ``GAMMA = 0``,
    no overlap or junction currents (``IS = 0``): the same equations in both engines,
    drain and source swapped when ``V_ds < 0`` as ngspice does.
``mtj`` (:class:`MTJCell`)
    A magnetic tunnel junction of parallel conductance ``g_p``; in the antiparallel state
    (``antiparallel = 1``) its magnetoresistance falls with bias, ``TMR(V) = tmr0 / (1 + (V/v_h)²)``,
    so ``I = g_p V / (1 + TMR(V))``.

Native engine: :meth:`CellModel.branch` gives ``I`` and ``∂I/∂V_a``, ``∂I/∂V_b`` of every cell,
eliminating the internal node by a bracketed Newton solve to rounding (the chain's current is
monotone). ngspice: :meth:`CellModel.spice_lines` writes B-sources (the same formulas),
resistors, and level-1 MOSFETs with their model cards.

Mapping a target conductance (:func:`~circuitsim.tile.cell_mapping.map_conductance`): the model's *state* parameter (``g``
of ``linear``, ``1s1r``, ``1t1r``; ``i0`` of ``sinh``; ``g_p`` of ``mtj``) is set so that
the cell alone, biased at the read voltage ``v_read`` (``V_a = v_read``, ``V_b = 0``), carries
``I = G_target · v_read``; the other parameters are kept. A target the chain cannot carry (the
series resistance, selector or transistor alone drops more than ``v_read``) is refused.

Public API
----------
CellModel, LinearCell, SinhCell, SelectorCell, TransistorCell, MTJCell, CELL_MODELS,
cell_model (and :func:`~circuitsim.tile.cell_mapping.map_conductance`)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from .cell_laws import mos_level1, resistor, series, sinh_law, two_terminal
from .netlist import format_value

THERMAL_VOLTAGE = 0.025852
"""``k T / q`` at 300 K, volts (the default ``v_t`` of the selector)."""

def _f(x) -> str:
    return format_value(float(x))


@dataclass(frozen=True, eq=False)
class CellModel:
    """Base of the cell models: per-cell parameters (arrays or scalars), checked when made.

    Subclasses declare ``kind``, ``STATE`` (the parameter mapping sets), ``POSITIVE`` and
    ``NONNEGATIVE`` (parameters that must be > 0 / >= 0) and ``UNITS``.
    """

    kind: ClassVar[str] = ""
    STATE: ClassVar[str] = ""
    POSITIVE: ClassVar[tuple[str, ...]] = ()
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ()
    UNITS: ClassVar[dict[str, str]] = {}

    def __post_init__(self):
        for name in self.parameter_names():
            value = getattr(self, name)
            try:
                arr = np.array(value, dtype=float)
            except (TypeError, ValueError):
                raise ConfigError(f"{self.kind} cells: {name} must be numbers, got {value!r}") from None
            unit = self.UNITS.get(name, "")
            bad = ~np.isfinite(arr)
            rule = "finite"
            if not bad.any() and name in self.POSITIVE:
                bad, rule = arr <= 0, "> 0"
            elif not bad.any() and name in self.NONNEGATIVE:
                bad, rule = arr < 0, ">= 0"
            if bad.any():
                where = tuple(int(k) for k in np.argwhere(bad)[0]) if arr.ndim else ()
                cell = f" of cell {where}" if where else ""
                raise ConfigError(f"{self.kind} cells: {name}{cell} = {arr[where] if where else arr:g}"
                                  f"{' ' + unit if unit else ''} is not physical; give {name} {rule}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        try:
            np.broadcast_shapes(*(getattr(self, n).shape for n in self.parameter_names()))
        except ValueError:
            shapes = ", ".join(f"{n} {getattr(self, n).shape}" for n in self.parameter_names())
            raise ConfigError(f"{self.kind} cells: parameter shapes do not broadcast ({shapes}); give rows x cols "
                              "arrays or scalars") from None

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The model's parameters, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @property
    def shape(self) -> tuple[int, ...]:
        """Broadcast shape of the parameters (``()`` when all are scalars)."""
        return np.broadcast_shapes(*(getattr(self, n).shape for n in self.parameter_names()))

    def broadcast(self, shape: tuple[int, int]) -> "CellModel":
        """The same cells with every parameter a ``shape`` array (a ``ConfigError`` when they do not fit)."""
        try:
            values = {n: np.broadcast_to(getattr(self, n), shape).copy() for n in self.parameter_names()}
        except ValueError:
            raise ConfigError(f"{self.kind} cells: parameters of shape {self.shape} do not fit a tile of "
                              f"{shape[0]} x {shape[1]} cells") from None
        return type(self)(**values)

    def flat(self, name: str) -> np.ndarray:
        """Parameter ``name`` at every cell, raveled (row-major)."""
        return np.broadcast_to(getattr(self, name), self.shape).ravel()

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"model": kind, parameter: array}`` as in a cells file."""
        return {"model": np.array(self.kind), **{n: getattr(self, n) for n in self.parameter_names()}}

    # -- the elements of the chain (native) -----------------------------------------------------

    def elements(self, select=slice(None)):
        """The chain's element laws ``f(v_first, v_second) -> (I, ∂I/∂v_first, ∂I/∂v_second)``
        for the flat cells ``select``: one element, or two in series (``a → m``, ``m → b``)."""
        raise NotImplementedError

    def series(self) -> np.ndarray:
        """Which flat cells are two elements in series (an internal node)."""
        return np.full(int(np.prod(self.shape)), len(self.elements(slice(0, 1))) == 2)

    def series_resistance(self) -> np.ndarray | None:
        """Ohm of the resistor behind the first element of every flat cell (0 where the cell is
        one element), or None when the second element is not a resistor: with it, a cell is
        its first element, a two-terminal law of its own voltage, in series with a resistor."""
        return np.zeros(int(np.prod(self.shape))) if not self.series().any() else None

    def branch(self, va: np.ndarray, vb: np.ndarray, m: np.ndarray | None = None):
        """Current of every cell and its derivatives, for terminal voltages ``(..., cells)``.

        Parameters
        ----------
        va, vb : numpy.ndarray
            Word-line and bit-line terminal voltages, volts, shape ``(..., n_cells)`` with the
            flat cells (after :meth:`broadcast`) last.
        m : numpy.ndarray, optional
            Internal node voltages to start from (a previous solution), volts.

        Returns
        -------
        tuple
            ``(I, ∂I/∂V_a, ∂I/∂V_b, m)``: amperes, siemens, siemens and the internal node (volts;
            equal to ``vb`` for a one-element cell).
        """
        va, vb = np.broadcast_arrays(np.asarray(va, float), np.asarray(vb, float))
        shape = va.shape
        va, vb = va.ravel(), vb.ravel()
        cell = np.broadcast_to(np.arange(shape[-1]), shape).ravel()
        two = self.series()[cell]
        out = [np.empty(va.size) for _ in range(3)] + [vb.copy()]
        if (~two).any():
            (law,) = self.elements(cell[~two])
            for o, x in zip(out, law(va[~two], vb[~two])):
                o[~two] = x
        if two.any():
            m0 = None if m is None else np.asarray(m, float).ravel()[two]
            for o, x in zip(out, series(self, cell[two], va[two], vb[two], m0)):
                o[two] = x
        return tuple(o.reshape(shape) for o in out)

    def current(self, v) -> np.ndarray:
        """Current of every cell at the voltage ``v`` across it (``V_a = v``, ``V_b = 0``), amperes,
        shape of ``v`` broadcast with the parameters."""
        v = np.asarray(v, dtype=float)
        shape = np.broadcast_shapes(self.shape, v.shape)
        flat = (1, int(np.prod(shape)))
        cells = self.broadcast(shape if len(shape) == 2 else flat)
        va = np.broadcast_to(v, shape).ravel()
        return cells.branch(va, np.zeros_like(va))[0].reshape(shape)

    def chord_conductance(self, v: float) -> np.ndarray:
        """``I(v) / v`` of every cell (``v ≠ 0``), siemens: the linear stand-in at ``v``."""
        return self.current(float(v)) / v

    # -- ngspice ---------------------------------------------------------------------------------

    def spice_lines(self, a, b, names) -> list[str]:
        """Deck lines of the flat cells between nodes ``a[k]`` and ``b[k]`` (names ``names[k]``,
        e.g. ``"3_4"``), after :meth:`broadcast`; model cards included."""
        raise NotImplementedError


# -- the models --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LinearCell(CellModel):
    """A linear cell, ``I = g V`` (the cells of :class:`~circuitsim.tile.crossbar.Tile`)."""

    g: np.ndarray
    """Conductance, siemens, >= 0."""

    kind: ClassVar[str] = "linear"
    STATE: ClassVar[str] = "g"
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ("g",)
    UNITS: ClassVar[dict[str, str]] = {"g": "S"}

    def elements(self, select=slice(None)):
        return [resistor(self.flat("g")[select])]

    def spice_lines(self, a, b, names) -> list[str]:
        g = self.flat("g")
        return [f"Rcell{n} {p} {q} {_f(1 / gk)}" for n, p, q, gk in zip(names, a, b, g) if gk > 0]


@dataclass(frozen=True, eq=False)
class SinhCell(CellModel):
    """Filamentary RRAM: ``I = i0 sinh(V_d / v0)`` behind the filament's ``r_series``."""

    i0: np.ndarray
    """Current scale, amperes, > 0 (the state: ``G ≈ i0 / v0`` at small bias)."""
    v0: np.ndarray
    """Voltage scale, volts, > 0 (small: strongly nonlinear)."""
    r_series: np.ndarray = dataclasses.field(default_factory=lambda: np.array(0.0))
    """Series resistance, ohm, >= 0."""

    kind: ClassVar[str] = "sinh"
    STATE: ClassVar[str] = "i0"
    POSITIVE: ClassVar[tuple[str, ...]] = ("i0", "v0")
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ("r_series",)
    UNITS: ClassVar[dict[str, str]] = {"i0": "A", "v0": "V", "r_series": "ohm"}

    def elements(self, select=slice(None)):
        junction = sinh_law(self.flat("i0")[select], self.flat("v0")[select])
        r = self.flat("r_series")[select]
        if not np.any(r > 0):
            return [junction]
        return [junction, resistor(1 / np.maximum(r, 1e-300))]

    def series(self) -> np.ndarray:
        return self.flat("r_series") > 0

    def series_resistance(self) -> np.ndarray | None:
        return self.flat("r_series")

    def spice_lines(self, a, b, names) -> list[str]:
        lines = []
        for n, p, q, i0, v0, r in zip(names, a, b, self.flat("i0"), self.flat("v0"), self.flat("r_series")):
            mid = f"cm{n}" if r > 0 else q
            lines.append(f"Bcell{n} {p} {mid} I={_f(i0)}*sinh(V({p},{mid})/{_f(v0)})")
            if r > 0:
                lines.append(f"Rcs{n} {mid} {q} {_f(r)}")
        return lines


@dataclass(frozen=True, eq=False)
class SelectorCell(CellModel):
    """1S1R: antiparallel-diode selector ``I = i_s (e^{V_s/(n v_t)} - e^{-V_s/(n v_t)})`` in
    series with the memory conductance ``g``."""

    g: np.ndarray
    """Memory conductance, siemens, > 0 (the state)."""
    i_s: np.ndarray = dataclasses.field(default_factory=lambda: np.array(1e-6))
    """Selector saturation current, amperes, > 0."""
    n: np.ndarray = dataclasses.field(default_factory=lambda: np.array(2.0))
    """Selector ideality factor, > 0."""
    v_t: np.ndarray = dataclasses.field(default_factory=lambda: np.array(THERMAL_VOLTAGE))
    """Thermal voltage, volts, > 0."""

    kind: ClassVar[str] = "1s1r"
    STATE: ClassVar[str] = "g"
    POSITIVE: ClassVar[tuple[str, ...]] = ("g", "i_s", "n", "v_t")
    UNITS: ClassVar[dict[str, str]] = {"g": "S", "i_s": "A", "v_t": "V"}

    def elements(self, select=slice(None)):
        i_s, nvt = self.flat("i_s")[select], (self.flat("n") * self.flat("v_t"))[select]
        return [sinh_law(2 * i_s, nvt), resistor(self.flat("g")[select])]

    def series_resistance(self) -> np.ndarray | None:
        return 1 / self.flat("g")

    def spice_lines(self, a, b, names) -> list[str]:
        lines = []
        for n, p, q, g, i_s, nn, vt in zip(names, a, b, *(self.flat(k) for k in ("g", "i_s", "n", "v_t"))):
            nvt, mid = _f(nn * vt), f"cm{n}"
            lines.append(f"Bsel{n} {p} {mid} I={_f(i_s)}*(exp(V({p},{mid})/{nvt})-exp(-V({p},{mid})/{nvt}))")
            lines.append(f"Rmem{n} {mid} {q} {_f(1 / g)}")
        return lines


@dataclass(frozen=True, eq=False)
class TransistorCell(CellModel):
    """1T1R: a level-1 n-MOSFET (drain on the word line, gate at ``v_gate``) in series with the
    memory conductance ``g`` to the bit line."""

    g: np.ndarray
    """Memory conductance, siemens, > 0 (the state)."""
    v_gate: np.ndarray = dataclasses.field(default_factory=lambda: np.array(1.8))
    """Gate voltage (the word line's select voltage), volts."""
    vto: np.ndarray = dataclasses.field(default_factory=lambda: np.array(0.5))
    """Threshold voltage ``VTO``, volts."""
    kp: np.ndarray = dataclasses.field(default_factory=lambda: np.array(2e-5))
    """Transconductance parameter ``KP``, A/V², > 0."""
    w: np.ndarray = dataclasses.field(default_factory=lambda: np.array(10e-6))
    """Channel width, metres, > 0."""
    l: np.ndarray = dataclasses.field(default_factory=lambda: np.array(1e-6))  # noqa: E741 - SPICE's name
    """Channel length, metres, > 0."""
    lam: np.ndarray = dataclasses.field(default_factory=lambda: np.array(0.0))
    """Channel-length modulation ``LAMBDA``, 1/V, >= 0."""

    kind: ClassVar[str] = "1t1r"
    STATE: ClassVar[str] = "g"
    POSITIVE: ClassVar[tuple[str, ...]] = ("g", "kp", "w", "l")
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ("lam",)
    UNITS: ClassVar[dict[str, str]] = {"g": "S", "v_gate": "V", "vto": "V", "kp": "A/V^2", "w": "m", "l": "m",
                                       "lam": "1/V"}

    def elements(self, select=slice(None)):
        vg, vto, lam = (self.flat(k)[select] for k in ("v_gate", "vto", "lam"))
        beta = (self.flat("kp") * self.flat("w") / self.flat("l"))[select]
        return [lambda v1, v2: mos_level1(vg, v1, v2, vto, beta, lam), resistor(self.flat("g")[select])]

    def spice_lines(self, a, b, names) -> list[str]:
        lines, cards, gates = [], {}, {}
        for n, p, q, g, vg, vto, kp, w, ll, lam in zip(
                names, a, b, *(self.flat(k) for k in ("g", "v_gate", "vto", "kp", "w", "l", "lam"))):
            card = cards.setdefault((vto, kp, lam), f"nmos1t{len(cards)}")
            gate = gates.setdefault(vg, f"gate{len(gates)}")
            mid = f"cm{n}"
            lines.append(f"Mcell{n} {p} {gate} {mid} {mid} {card} W={_f(w)} L={_f(ll)}")
            lines.append(f"Rmem{n} {mid} {q} {_f(1 / g)}")
        lines += [f"Vgs{name} {name} 0 DC {_f(v)}" for v, name in gates.items()]
        lines += [f".model {name} nmos level=1 vto={_f(vto)} kp={_f(kp)} lambda={_f(lam)} gamma=0 is=0 js=0"
                  for (vto, kp, lam), name in cards.items()]
        return lines


@dataclass(frozen=True, eq=False)
class MTJCell(CellModel):
    """A magnetic tunnel junction: ``I = g_p V`` (parallel) or ``g_p V / (1 + TMR(V))``
    (antiparallel), ``TMR(V) = tmr0 / (1 + (V / v_h)²)``."""

    g_p: np.ndarray
    """Parallel-state conductance, siemens, > 0 (the state)."""
    antiparallel: np.ndarray = dataclasses.field(default_factory=lambda: np.array(1.0))
    """1 for the antiparallel state, 0 for parallel."""
    tmr0: np.ndarray = dataclasses.field(default_factory=lambda: np.array(1.5))
    """Zero-bias tunnel magnetoresistance ratio, >= 0."""
    v_h: np.ndarray = dataclasses.field(default_factory=lambda: np.array(0.5))
    """Bias at which the TMR halves, volts, > 0."""

    kind: ClassVar[str] = "mtj"
    STATE: ClassVar[str] = "g_p"
    POSITIVE: ClassVar[tuple[str, ...]] = ("g_p", "v_h")
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ("tmr0", "antiparallel")
    UNITS: ClassVar[dict[str, str]] = {"g_p": "S", "v_h": "V"}

    def __post_init__(self):
        super().__post_init__()
        bad = ~np.isin(self.antiparallel, (0.0, 1.0))
        if bad.any():
            raise ConfigError(f"mtj cells: antiparallel = {np.asarray(self.antiparallel)[bad].ravel()[0]:g} is not a "
                              "state; give 1 (antiparallel) or 0 (parallel)")

    def elements(self, select=slice(None)):
        g_p, vh = self.flat("g_p")[select], self.flat("v_h")[select]
        t = (self.flat("tmr0") * self.flat("antiparallel"))[select]

        def law(v):
            s = 1 + (v / vh) ** 2
            return g_p * v * s / (s + t), g_p * (s / (s + t) + 2 * (v / vh) ** 2 * t / (s + t) ** 2)
        return [two_terminal(law)]

    def spice_lines(self, a, b, names) -> list[str]:
        lines = []
        for n, p, q, g_p, ap, t, vh in zip(names, a, b, *(self.flat(k) for k in ("g_p", "antiparallel", "tmr0", "v_h"))):
            if ap and t > 0:
                lines.append(f"Bmtj{n} {p} {q} I={_f(g_p)}*V({p},{q})/(1+{_f(t)}/(1+(V({p},{q})/{_f(vh)})^2))")
            else:
                lines.append(f"Rmtj{n} {p} {q} {_f(1 / g_p)}")
        return lines


CELL_MODELS: dict[str, type[CellModel]] = {
    c.kind: c for c in (LinearCell, SinhCell, SelectorCell, TransistorCell, MTJCell)}
"""Cell models by ``kind``."""


def cell_model(kind: str, **parameters) -> CellModel:
    """The cells of model ``kind`` with named parameters (a ``ConfigError`` naming what is wrong)."""
    cls = CELL_MODELS.get(str(kind))
    if cls is None:
        raise ConfigError(f"unknown cell model {kind!r}; choose one of {', '.join(CELL_MODELS)}")
    names = cls.parameter_names()
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise ConfigError(f"{kind} cells have no parameter {unknown[0]!r}; their parameters are {', '.join(names)}")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in parameters]
    if missing:
        raise ConfigError(f"{kind} cells need the parameter {missing[0]!r} ({cls.UNITS.get(missing[0], 'no unit')})")
    return cls(**parameters)
