"""imac-sim layers of nonlinear cells in a network: every piece solved exactly for every image.

In the imac-sim topology (:func:`~circuitsim.network.topologies.imac_sim_layer`) each tile (a
piece of the partitioned layer) ends in its own difference amplifiers, whose inputs hold the
bit lines at voltages that depend on every cell: no virtual ground. The pieces are independent
circuits all the same: each amplifier's output is a voltage source (the op-amp's VCVS), so the
1 mΩ ties that average the horizontal pieces at the neuron input load nothing that feeds back,
and the neuron input is exactly the mean of the pieces' amplifier outputs. A piece of nonlinear
cells (``circuit.cells``; the realized conductances mapped onto the model's state at the read
voltage, :func:`~circuitsim.network.nonlinear_tiles.mapped_cells`) is therefore its one-piece
layer circuit solved whole by :class:`~circuitsim.tile.nonlinear_layer.LayerSolver` for the
word-line voltages ``h · v_read`` of every image: its normalized partial sums are ``share · α ·
V_amp`` (``share`` the averaging's ``1 / h``, ``α`` the vertical partition's drift compensation),
as the linear piece's ``v_read · share · α · A^T`` gives for its cells linear at the read voltage;
its energy per evaluation is ``t_read Σ V_i I_i`` of its input sources at the solution.

Public API
----------
ExactLayer, exact_layer
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConvergenceError
from ..tile.layer_circuit import LayerCircuit
from ..tile.nonlinear_layer import LayerResult, LayerSolver
from ..tile.nonlinear_layer_run import nonlinear_layer_deck
from .circuit_config import CircuitConfig
from .nonlinear_tiles import distinct_rows, mapped_cells


@dataclass(eq=False)
class ExactLayer:
    """One imac-sim piece of nonlinear cells and its exact solve."""

    solver: LayerSolver
    """The piece's layer circuit and cells (native engine)."""
    v_read: float
    """Word-line volts per activation unit."""
    scale: float
    """Normalized sum per amplifier volt: the averaging's share times the drift compensation."""
    t_read: float
    """Read pulse, seconds (energy = supply power × ``t_read``)."""
    iterations: list[int] = field(default_factory=list)
    """Newton iterations of every vector solved so far."""
    _last: tuple[bytes, LayerResult] | None = None

    def solve(self, volts: np.ndarray) -> LayerResult:
        """The piece's amplifier outputs and input currents for word-line voltages ``(vectors,
        rows)`` (the last batch is kept: the energy and the sums of one evaluation solve it once)."""
        key, unique, inverse = distinct_rows(volts)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        try:
            solved = self.solver.solve(unique)
        except ConvergenceError as exc:  # the piece's deck at the failing vector, for the record
            deck = nonlinear_layer_deck(self.solver.layer, self.solver.cells, unique[getattr(exc, "vector", 0)])
            raise ConvergenceError(str(exc), deck) from None
        self.iterations.extend(int(i) for i in solved.iterations)
        result = LayerResult(solved.outputs[inverse], solved.input_currents[inverse], solved.iterations[inverse],
                             solved.engine, solved.seconds)
        self._last = (key, result)
        return result

    def sums(self, v: np.ndarray) -> np.ndarray:
        """Normalized partial sums ``(vectors, outs)`` of inputs ``v`` in activation units."""
        return self.scale * self.solve(np.asarray(v, dtype=float) * self.v_read).outputs

    def energy(self, volts: np.ndarray) -> float:
        """Supply energy (J) of evaluating word-line voltages ``(vectors, rows)``, summed over the vectors."""
        return float(self.t_read * np.sum(np.asarray(volts) * self.solve(volts).input_currents))


def exact_layer(piece: LayerCircuit, conductances: np.ndarray, circuit: CircuitConfig, scale: float,
                name: str) -> ExactLayer | None:
    """The :class:`ExactLayer` of a one-piece imac-sim layer circuit whose realized cells are
    ``conductances`` (``rows × 2 outs`` siemens, pairs interleaved), or None for linear cells."""
    if not circuit.nonlinear:
        return None
    cells = mapped_cells(conductances, circuit, name)
    return ExactLayer(LayerSolver(piece, cells, name=name), circuit.v_read, scale, circuit.t_read)
