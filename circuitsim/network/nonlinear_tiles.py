"""Canonical tiles of nonlinear cells in a network: solved exactly for every image.

A tile of nonlinear cells (``circuit.cells``, :mod:`circuitsim.tile.cells`) has no transfer
matrix. Its cells are the realized conductances of the canonical tile (device statistics
drawn, drifted) mapped onto the model's state at the read voltage
(:func:`~circuitsim.tile.cell_mapping.map_conductance`: each cell alone at ``v_read`` carries
``G · v_read``), so a linear simulator, which takes every cell as its conductance at the read
voltage, sees the very tile of linear cells whose ``T`` the canonical topology characterizes.
The evaluator instead solves the tile (wires included, bit lines at virtual ground, or ending in
``circuit.r_sense`` to ground with ``circuit.readout = "sense"``) for the
word-line voltages ``h · v_read`` of every image and output position: the batched Newton
solve of :class:`~circuitsim.tile.nonlinear.NonlinearSolver` (``circuit.engine = "native"``)
or one ngspice operating point per image (``"ngspice"``). Its normalized partial sums are
``α (I+ - I-) / (v_read (g_max - g_min))`` (``α`` the tile's drift compensation), as the
linear tile's ``(T+ - T-)`` gives; its energy per evaluation is ``t_read Σ V_i I_i`` of the
input sources at the solution.

Public API
----------
ExactTile, exact_tile, mapped_cells, distinct_rows
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, ConvergenceError
from ..tile.cell_mapping import map_conductance
from ..tile.cells import CellModel
from ..tile.nonlinear import NonlinearSolver
from ..tile.nonlinear_tile import NonlinearResult, NonlinearTile
from ..tile.nonlinear_run import ngspice_currents, nonlinear_deck
from .circuit_config import CircuitConfig


@dataclass(eq=False)
class ExactTile:
    """One canonical tile of nonlinear cells and how its images are solved."""

    tile: NonlinearTile
    """The cells (state mapped from the realized conductances) and the wires."""
    v_read: float
    """Word-line volts per activation unit."""
    g_range: float
    """``g_max - g_min`` of the device, siemens (the normalization of a unit weight)."""
    t_read: float
    """Read pulse, seconds (energy = supply power × ``t_read``)."""
    drift_scale: float = 1.0
    """The tile's global drift compensation factor."""
    engine: str = "native"
    """``"native"`` (batched Newton) or ``"ngspice"`` (one operating point per image)."""
    backend: str = "shared"
    """ngspice backend with ``engine = "ngspice"``."""
    iterations: list[int] = field(default_factory=list)
    """Newton iterations of every vector solved so far (native)."""
    _solver: NonlinearSolver | None = None
    _last: tuple[bytes, NonlinearResult] | None = None

    def solve(self, volts: np.ndarray) -> NonlinearResult:
        """The tile's currents for word-line voltages ``(vectors, rows)`` (the last batch is
        kept: the energy and the sums of one evaluation solve it once)."""
        key, unique, inverse = distinct_rows(volts)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        if self.engine == "ngspice":
            solved = ngspice_currents(self.tile, unique, self.backend)
        else:
            if self._solver is None:
                self._solver = NonlinearSolver(self.tile)
            try:
                solved = self._solver.solve(unique)
            except ConvergenceError as exc:  # the tile's deck at the failing vector, for the record
                raise ConvergenceError(str(exc), nonlinear_deck(self.tile, unique[getattr(exc, "vector", 0)])) from None
            self.iterations.extend(int(i) for i in solved.iterations)
        assert solved.input_currents is not None
        result = NonlinearResult(solved.output_currents[inverse], solved.iterations[inverse], solved.engine,
                                 solved.seconds, solved.input_currents[inverse])
        self._last = (key, result)
        return result

    def sums(self, v: np.ndarray) -> np.ndarray:
        """Normalized partial sums ``(vectors, outs)`` of inputs ``v`` in activation units."""
        currents = self.solve(np.asarray(v, dtype=float) * self.v_read).output_currents
        return self.drift_scale * (currents[:, 0::2] - currents[:, 1::2]) / (self.v_read * self.g_range)

    def energy(self, volts: np.ndarray) -> float:
        """Supply energy (J) of evaluating word-line voltages ``(vectors, rows)``, summed over the vectors."""
        delivered = self.solve(volts).input_currents
        assert delivered is not None
        return float(self.t_read * np.sum(np.asarray(volts) * delivered))


def exact_tile(conductances: np.ndarray, circuit: CircuitConfig, drift_scale: float = 1.0,
               name: str = "tile") -> ExactTile:
    """The :class:`ExactTile` of a canonical tile's realized conductances (``rows × 2 outs``,
    siemens) with ``circuit.cells`` mapped onto them at ``circuit.v_read``."""
    wires = circuit.wires
    tile = NonlinearTile(mapped_cells(conductances, circuit, name), r_row=wires.r_row, r_col=wires.r_col, name=name,
                         r_sense=circuit.sense_ohms)
    device = circuit.device
    return ExactTile(tile, circuit.v_read, device.g_max - device.g_min, circuit.t_read, drift_scale, circuit.engine,
                     circuit.backend)


def mapped_cells(conductances: np.ndarray, circuit: CircuitConfig, name: str) -> CellModel:
    """``circuit.cells`` with their state set so that each carries its conductance (siemens) at
    ``circuit.v_read`` alone (a ``ConfigError`` naming ``name`` when one cannot)."""
    assert circuit.cells is not None
    try:
        return map_conductance(circuit.cells, conductances, circuit.v_read)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def distinct_rows(volts: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``(key, unique, inverse)`` of a batch of input vectors ``(vectors, rows)``: a key of the
    batch (the last one solved is kept), its distinct vectors and where each vector is among them
    (images that drive a tile alike, binary inputs or blank image borders, are solved once)."""
    volts = np.ascontiguousarray(volts, dtype=float)
    unique, inverse = np.unique(volts, axis=0, return_inverse=True)
    return volts.tobytes() + repr(volts.shape).encode(), unique, inverse.reshape(-1)
