"""A tile of nonlinear cells, the native solve's options and its result.

A :class:`NonlinearTile` is a grid of cells (:mod:`circuitsim.tile.cells`) with word-line
and bit-line segments of ``r_row`` / ``r_col`` ohm (one before every cell, as in
:class:`~circuitsim.tile.crossbar.Tile`), inputs driven by ideal sources and outputs held at
0 V (virtual ground) or ending in sense resistors ``r_sense`` to ground (the bit-line ends are
then free nodes); the output current ``I_j`` flows from bit line ``j`` into its output. It is
solved by :class:`~circuitsim.tile.nonlinear.NonlinearSolver` (native) or in ngspice
(:mod:`circuitsim.tile.nonlinear_run`).

Public API
----------
NonlinearTile, NewtonOptions, NonlinearResult, backtrack
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .cells import CellModel
from .checks import R_MAX, check_range
from .crossbar import TIA, Tile, _check_nonnegative


@dataclass(frozen=True, eq=False)
class NonlinearTile:
    """A crossbar tile of nonlinear cells with wire resistance.

    Parameters
    ----------
    cells : CellModel
        The cells; their parameters broadcast to ``shape``.
    r_row, r_col : float
        Word-line and bit-line resistance per cell segment, ohm, >= 0.
    shape : tuple of int, optional
        ``(rows, cols)``; by default the cells' parameter shape (which must then be 2-D).
    name : str
        What error messages call the tile.
    r_sense : float
        0 (the default): every bit line ends at virtual ground; > 0: every bit line ends in a
        sense resistor of ``r_sense`` ohm to ground (no virtual ground: the bit lines rise with
        the currents), the output current flowing through it.
    """

    cells: CellModel
    r_row: float = 0.0
    r_col: float = 0.0
    shape: tuple[int, int] | None = None
    name: str = "tile"
    r_sense: float = 0.0

    def __post_init__(self):
        if not isinstance(self.cells, CellModel):
            raise ConfigError(f"{self.name}: cells must be a cell model (circuitsim.tile.cells), "
                              f"got {type(self.cells).__name__}")
        shape = self.cells.shape if self.shape is None else tuple(int(n) for n in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ConfigError(f"{self.name}: cells must form a rows x cols grid, got shape {shape}; give "
                              "rows x cols parameter arrays or shape=(rows, cols)")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "cells", self.cells.broadcast(shape))
        for name in ("r_row", "r_col", "r_sense"):
            value = _check_nonnegative(f"{self.name}: {name} (ohm)", getattr(self, name))
            check_range(name, value, R_MAX, unit="ohm")
            object.__setattr__(self, name, value)

    @property
    def rows(self) -> int:
        """Inputs."""
        return self.shape[0]

    @property
    def cols(self) -> int:
        """Outputs."""
        return self.shape[1]

    def describe(self) -> str:
        """``"tile (4x5 sinh cells, r_row 2 ohm, r_col 2 ohm)"``, for messages."""
        sense = f", r_sense {self.r_sense:g} ohm" if self.r_sense > 0 else ""
        return (f"{self.name} ({self.rows}x{self.cols} {self.cells.kind} cells, r_row {self.r_row:g} ohm, "
                f"r_col {self.r_col:g} ohm{sense})")

    def wires(self) -> Tile:
        """The linear tile of the wires (every cell present, conductance 1 S: the grid's pattern;
        with a sense resistor, a TIA stands for it: the bit-line ends are free nodes)."""
        return Tile(np.ones(self.shape), r_row=self.r_row, r_col=self.r_col, tia=TIA() if self.r_sense > 0 else None)

    def check_inputs(self, inputs) -> np.ndarray:
        """Input voltages as ``(vectors, rows)`` floats (a ``ConfigError`` otherwise)."""
        x = np.asarray(inputs, dtype=float) if np.ndim(inputs) else np.array([])
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.rows or x.shape[0] == 0:
            raise ConfigError(f"inputs must be vectors x {self.rows} volts for {self.describe()}, "
                              f"got shape {np.shape(inputs)}")
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"inputs must be finite volts; vector {int(np.argwhere(~np.isfinite(x))[0][0])} is not")
        return x


@dataclass(frozen=True)
class NewtonOptions:
    """Convergence settings of the native nonlinear solve."""

    max_iterations: int = 50
    """Newton iterations before a vector is declared unconverged."""
    step_tol: float = 1e-8
    """Converged when the last Newton step is below ``step_tol`` times the largest node
    voltage (volts/volts) ..."""
    residual_tol: float = 1e-9
    """... and every KCL residual below ``residual_tol`` times the largest cell current."""
    max_halvings: int = 40
    """Line-search halvings of a step before the iteration is declared stuck."""

    def __post_init__(self):
        if self.max_iterations < 1 or self.max_halvings < 0 or not (0 < self.step_tol < 1) \
                or not (0 < self.residual_tol < 1):
            raise ConfigError(f"Newton options out of range: {self}")


@dataclass(frozen=True, eq=False)
class NonlinearResult:
    """Output currents of a batch of input vectors."""

    output_currents: np.ndarray
    """Amperes, ``(vectors, cols)``."""
    iterations: np.ndarray
    """Newton iterations per vector (0 for ngspice)."""
    engine: str
    """``"native"`` or ``"ngspice"``."""
    seconds: float
    """Wall-clock seconds of the solve."""
    input_currents: np.ndarray | None = None
    """Amperes ``(vectors, rows)`` delivered by each input source into the tile (the supply
    power of a vector is ``Σ V_i I_i``), or None."""


def backtrack(active: np.ndarray, x: np.ndarray, state, norm0: np.ndarray, try_step, halvings: int) -> np.ndarray:
    """The damped Newton steps of vectors ``active``: ``t`` (1 at first) halved per vector until
    ``try_step(t)`` lowers its residual norm below ``(1 - 1e-4 t) norm0`` or solves it.

    ``try_step(t)`` returns the trial unknowns ``(len(active), ...)``, the new values of the
    ``state`` arrays there, the residual norms and which are within the tolerance; ``x`` and
    ``state`` (arrays indexed by vector) take the accepted ones in place. Returns which vectors
    found no such ``t``.
    """
    t = np.ones(len(active))
    pending = np.ones(len(active), bool)
    for _ in range(halvings + 1):
        trial, values, norm, solved = try_step(t)
        ok = pending & ((norm <= (1 - 1e-4 * t) * norm0) | solved | (norm0 == 0))
        rows = active[ok]
        x[rows] = trial[ok]
        for array, value in zip(state, values):
            array[rows] = value[ok]
        pending &= ~ok
        if not pending.any():
            break
        t = np.where(pending, t / 2, t)
    return pending
