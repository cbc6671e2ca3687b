"""Nonlinear cells in a partitioned layer circuit (any topology): Newton's method on its MNA system.

A :class:`~circuitsim.tile.layer_circuit.LayerCircuit` whose readout holds no virtual ground
(IMAC-Sim's difference amplifiers: the I+ line sees ``r_in + r_ground`` to ground, the I- line
``r_in`` to the amplifier's input) sets its bit lines at voltages that depend on every cell, so
its nonlinear cells cannot be solved tile by tile at 0 V. :class:`LayerSolver` solves the whole
circuit: the layer built by :func:`~circuitsim.tile.layer_circuit.build_layer_circuit` with every
cell left out (the wires, the amplifiers, the ties; assembled by
:func:`~circuitsim.tile.native.assemble`, the linear engine's modified nodal analysis), and each
cell a nonlinear branch of :mod:`circuitsim.tile.cells` between its word-line node and its
bit-line node (:func:`cell_nodes`), its current and derivatives from
:meth:`~circuitsim.tile.cells.CellModel.branch` (internal nodes eliminated per cell).

Newton's method starts from the linear solution (every cell at its chord conductance at the
largest input, one factorization for all vectors), each step damped by a backtracking line
search on the KCL residual. The Jacobian keeps one sparsity pattern (the MNA matrix's and the
cells' stamps), its values summed into it by one ``bincount``; its fill-reducing ordering is
computed once (on the first factorization, the sparser factor of :data:`ORDERINGS`) and every later
factorization, of every iteration and vector, runs in that order (threshold pivoting: the
amplifiers' VCVS rows have no diagonal). Input vectors are evaluated together (cells, residual,
line search); each takes its own factorizations, and once its KCL residual is below
:data:`CHORD` of its cell currents it reuses its last one (a chord step). A vector converges when every node's KCL
residual is within ``residual_tol`` of the largest cell current (or the rounding noise of the
currents that meet there) and the last step within ``step_tol`` of the largest node voltage; one
that does not raises :class:`~circuitsim.errors.ConvergenceError` (the layer, the vector, the
iterations, the fix), never returns. The ngspice deck of the same circuit and cells, and its
operating points: :mod:`circuitsim.tile.nonlinear_layer_run`.

Public API
----------
LayerSolver, LayerResult, cell_nodes, wires_only
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConfigError, ConvergenceError
from .cell_space import ROUNDING
from .cells import CellModel
from .layer_circuit import LayerCircuit, _readings, build_layer_circuit, combine_readings
from .native import assemble
from .nonlinear_tile import NewtonOptions, backtrack

CHUNK = 64
"""Input vectors evaluated together (their factorizations are made one by one), at most; fewer
for large layers, whose factorizations (each vector's kept for its chord steps) must fit in
~100 MB: ``10^6`` unknowns over the chunk, as :class:`~circuitsim.tile.nonlinear.NonlinearSolver`."""

ORDERINGS = ("MMD_AT_PLUS_A", "COLAMD")
"""SuperLU's fill-reducing orderings tried on the first factorization; the one whose factor has
fewer entries is kept (measured: ``MMD_AT_PLUS_A`` 74,000 against 98,000 on a 31 x 30 imac-sim
piece, ``COLAMD`` 19 million against 28 million on a 401 x 120 one)."""

CHORD = 1e-6
"""KCL residual, relative to the largest cell current, below which a vector's last Jacobian
factorization is reused (a chord step: the Jacobian has changed by about that much)."""


@dataclass(frozen=True, eq=False)
class LayerResult:
    """Outputs of a layer of nonlinear cells for a batch of input vectors."""

    outputs: np.ndarray
    """``(vectors, n_out)``: volts (difference amplifiers) or amperes (current readouts), as
    :func:`~circuitsim.tile.layer_circuit.layer_outputs`."""
    input_currents: np.ndarray
    """Amperes ``(vectors, n_rows)`` each input-line source delivers into the layer."""
    iterations: np.ndarray
    """Newton iterations per vector (0 for ngspice)."""
    engine: str
    """``"native"`` or ``"ngspice"``."""
    seconds: float
    """Wall-clock seconds of the solve."""


def wires_only(layer: LayerCircuit) -> LayerCircuit:
    """The layer without its cells (every conductance 0: no cell element), wires and readouts kept."""
    zero = np.zeros_like(layer.g_pos)
    return dataclasses.replace(layer, g_pos=zero, g_neg=zero.copy())


def cell_nodes(layer: LayerCircuit) -> tuple[np.ndarray, np.ndarray]:
    """Node names of every cell's word-line and bit-line terminals in
    :func:`~circuitsim.tile.layer_circuit.build_layer_circuit`, each ``n_rows × 2 n_out`` (cell
    ``(i, 2 o)`` is ``G+`` of output ``o``, ``(i, 2 o + 1)`` its ``G-``: the layout of a mapped
    layer's conductances)."""
    n_rows, n_out = layer.n_rows, layer.n_out
    shared = layer.topology.pair_layout == "shared-node"
    word = np.empty((n_rows, 2 * n_out), dtype=object)
    bit = np.empty_like(word)
    piece = np.empty(n_rows, dtype=np.int64)
    for a, rs in enumerate(layer.row_slices):
        piece[rs] = a
    for i in range(n_rows):
        for o in range(n_out):
            for s, sign in enumerate("pn"):
                c = 2 * o + s
                word[i, c] = (f"wl{i}_{o if shared else c}" if layer.r_row > 0 else f"in{i}")
                bit[i, c] = f"b{sign}{i}_{o}" if layer.r_col > 0 else f"e{sign}{piece[i]}_{o}"
    return word, bit


class LayerSolver:
    """The native solve of one layer circuit of nonlinear cells (pattern and ordering made once).

    Parameters
    ----------
    layer : LayerCircuit
        Wires, partitions and topology (its own conductances are not used).
    cells : CellModel
        ``n_rows × 2 n_out`` cells, pairs interleaved as :func:`cell_nodes`.
    options : NewtonOptions, optional
    name : str
        What messages call the layer.
    """

    def __init__(self, layer: LayerCircuit, cells: CellModel, options: NewtonOptions | None = None,
                 name: str = "layer"):
        self.layer, self.name = layer, name
        self.cells = cells.broadcast((layer.n_rows, 2 * layer.n_out))
        self.options = options or NewtonOptions()
        circuit = build_layer_circuit(wires_only(layer))
        s = self.system = assemble(circuit)
        index = {node: k - 1 for k, node in enumerate(circuit.node_names)}  # unknown index (ground -1)
        word, bit = cell_nodes(layer)
        self.a, self.b = (np.array([index[n] for n in t.ravel()]) for t in (word, bit))
        n, n_cells = len(s.rhs), word.size
        assert self.a.min() >= 0 and self.b.min() >= 0  # no cell ends on ground in a layer circuit
        self.incidence = sp.csr_matrix((np.repeat([1.0, -1.0], n_cells), (np.concatenate([self.a, self.b]),
                                        np.tile(np.arange(n_cells), 2))), shape=(n, n_cells))
        self.abs_matrix = abs(s.matrix).tocsr()
        self.abs_incidence = abs(self.incidence).tocsr()
        fixed = dict(zip(s.fixed_branches.tolist(), s.fixed_nodes.tolist()))
        self.input_nodes = np.array([fixed[int(k)] for k in s.source_index(layer.input_sources())])
        self.n_node = int(np.sum(s.free < s.n_voltages))  # the free node voltages come first, then branches
        kind, names = _readings(layer)
        self._read = np.array([index[n] for n in names]) if kind == "v" else s.source_index(names)
        # the Jacobian's pattern on the free unknowns: the MNA matrix's entries, then the cells' stamps
        pos = np.full(n, -1)
        pos[s.free] = np.arange(len(s.free))
        coo = s.matrix.tocoo()
        inside = (pos[coo.row] >= 0) & (pos[coo.col] >= 0)
        fa, fb = pos[self.a], pos[self.b]
        rows = np.concatenate([fa, fa, fb, fb])
        cols = np.concatenate([fa, fb, fa, fb])
        self._stamp_keep = (rows >= 0) & (cols >= 0)
        self._base = coo.data[inside]
        self._rows = np.concatenate([pos[coo.row[inside]], rows[self._stamp_keep]])
        self._cols = np.concatenate([pos[coo.col[inside]], cols[self._stamp_keep]])
        self._structure: tuple | None = None  # the slot of every entry, indices, indptr, order (once ordered)

    # -- pieces -----------------------------------------------------------------------------------

    def _values(self, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        """The Jacobian's entries (pattern order) for the cells' derivatives ``pa``, ``pb`` (one vector)."""
        return np.concatenate([self._base, np.concatenate([pa, pb, -pa, -pb])[self._stamp_keep]])

    def _factor(self, values: np.ndarray):
        """A solve ``rhs (k, m) -> J^-1 rhs`` of the Jacobian of entries ``values``: the ordering
        of the first factorization (``MMD_AT_PLUS_A``) is kept for every later one."""
        m = len(self.system.free)
        try:
            if self._structure is None:  # the ordering of fewer factor entries, kept
                jac = sp.csc_matrix((values, (self._rows, self._cols)), shape=(m, m))
                first = min((spla.splu(jac, permc_spec=spec, diag_pivot_thresh=0.1, options={"SymmetricMode": True})
                             for spec in ORDERINGS), key=lambda lu: lu.L.nnz + lu.U.nnz)
                order = np.argsort(first.perm_c)
                where = np.empty(m, np.int64)
                where[order] = np.arange(m)
                key = where[self._cols] * m + where[self._rows]  # CSC of J[order][:, order]
                unique, slot = np.unique(key, return_inverse=True)
                indptr = np.searchsorted(unique // m, np.arange(m + 1)).astype(np.int32)
                self._structure = (slot.reshape(-1), (unique % m).astype(np.int32), indptr, order)
            slot, indices, indptr, order = self._structure
            matrix = sp.csc_matrix((np.bincount(slot, values, len(indices)), indices, indptr), shape=(m, m))
            lu = spla.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.1, options={"SymmetricMode": True})
        except RuntimeError as exc:
            raise ConvergenceError(f"native nonlinear solve of {self.name}: singular Jacobian ({exc}); check for "
                                   "cells that conduct nothing") from None

        def solve(rhs: np.ndarray) -> np.ndarray:
            out = np.empty_like(rhs)
            out[:, order] = lu.solve(np.asfortranarray(rhs[:, order].T)).T
            return out
        return solve

    def _leave(self, x: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The MNA residual ``A x - b`` of every unknown's row ``(k, n)``, the cells' currents ``i``
        leaving their word-line nodes and entering their bit-line nodes (at a source's node, with
        its branch current 0, the current the source delivers)."""
        return np.asarray((self.system.matrix @ x.T + self.incidence @ i.T).T) - self.system.rhs

    def _evaluate(self, x: np.ndarray, m):
        """Cell currents, derivatives, internal nodes and the residual at unknowns ``x`` ``(k, n)``."""
        i, pa, pb, m = (np.array(z, dtype=float) for z in self.cells.branch(x[:, self.a], x[:, self.b], m))
        return i, pa, pb, m, self._leave(x, i)

    def _tolerance(self, x: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Largest residual taken as converged ``(k, free)``: ``residual_tol`` of the largest cell
        current on a node's row (of the largest node voltage on a source's row), or the rounding
        noise of the terms that meet in the row (:data:`~circuitsim.tile.cell_space.ROUNDING` ulps)."""
        s = self.system
        terms = np.asarray(self.abs_matrix @ np.abs(x).T + self.abs_incidence @ np.abs(i).T).T[:, s.free]
        scale = np.empty_like(terms)
        scale[:, :self.n_node] = np.abs(i).max(axis=1)[:, None]
        scale[:, self.n_node:] = np.abs(x[:, :s.n_voltages]).max(axis=1)[:, None]
        return np.maximum(self.options.residual_tol * scale, ROUNDING * np.finfo(float).eps * terms) + 1e-300

    def _start(self, v: np.ndarray) -> np.ndarray:
        """Every unknown ``(k, n)`` of the linear layer, each cell at its chord conductance at the
        largest input (one factorization for all vectors); the sources' branch currents 0."""
        s = self.system
        x = np.zeros((len(v), len(s.rhs)))
        x[:, s.fixed_nodes] = s.rhs[s.fixed_branches]
        x[:, self.input_nodes] = v
        if len(s.free):
            g = np.maximum(self.cells.chord_conductance(float(np.abs(v).max()) or 0.1).ravel(), 1e-300)
            i = g * (x[:, self.a] - x[:, self.b])
            x[:, s.free] = -self._factor(self._values(g, -g))(self._leave(x, i)[:, s.free])
        return x

    # -- the solve --------------------------------------------------------------------------------

    def solve(self, inputs) -> LayerResult:
        """Outputs of input-line voltage vectors ``(vectors, n_rows)`` volts (bias row included)."""
        start = time.perf_counter()
        v = np.atleast_2d(np.asarray(inputs, dtype=float))
        if v.ndim != 2 or v.shape[1] != self.layer.n_rows or not len(v) or not np.all(np.isfinite(v)):
            raise ConfigError(f"inputs of {self.name} must be vectors x {self.layer.n_rows} finite volts, "
                              f"got shape {np.shape(inputs)}")
        chunk = max(1, min(CHUNK, 200_000 // max(len(self.system.free), 1)))
        parts = [self._solve_chunk(v[k:k + chunk], k) for k in range(0, len(v), chunk)]
        x, leave, iterations = (np.concatenate([p[j] for p in parts]) for j in range(3))
        s = self.system
        x[:, s.fixed_branches] = -leave[:, s.fixed_nodes]  # the grounded sources' branch currents
        outputs = combine_readings(x[:, self._read], self.layer)
        return LayerResult(outputs, leave[:, self.input_nodes], iterations, "native", time.perf_counter() - start)

    def _solve_chunk(self, v: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unknowns ``(k, n)``, residual rows and iterations of the vectors ``v`` (numbered from ``first``)."""
        opt, free, nodes = self.options, self.system.free, slice(0, self.n_node)
        x = self._start(v)
        i, pa, pb, m, leave = self._evaluate(x, None)
        iterations = np.zeros(len(v), np.int64)
        active = np.arange(len(v))
        factors: dict = {}
        while len(active) and len(free):
            over = iterations[active] >= opt.max_iterations
            if over.any():
                self._fail(active[over][0], first, iterations, leave, i, "the iteration limit was reached")
            step = np.empty((len(active), len(free)))
            for r, vec in enumerate(active):
                near = np.abs(leave[vec, free[:self.n_node]]).max(initial=0.0) <= CHORD * np.abs(i[vec]).max()
                if not (near and vec in factors):  # far from the solution: Newton's own Jacobian
                    factors[vec] = self._factor(self._values(pa[vec], pb[vec]))
                step[r] = factors[vec](-leave[vec, free][None, :])[0]
            stuck = self._line_search(active, step, x, i, pa, pb, m, leave)
            iterations[active] += 1
            scale = np.abs(x[active, :self.system.n_voltages]).max(axis=1)
            small = np.abs(step[:, nodes]).max(axis=1, initial=0.0) <= opt.step_tol * scale
            ok = np.all(np.abs(leave[np.ix_(active, free)]) <= self._tolerance(x[active], i[active]), axis=1)
            if (stuck & ~ok).any():
                self._fail(active[stuck & ~ok][0], first, iterations, leave, i,
                           "the line search found no step that lowers the residual")
            for vec in active[small & ok]:
                factors.pop(vec, None)
            active = active[~(small & ok)]
        return x, leave, iterations

    def _line_search(self, active, step, x, i, pa, pb, m, leave) -> np.ndarray:
        """Take the damped steps ``x[active, free] += t step`` (``t`` halved until the KCL residual
        norm falls, or is within the tolerance), updating the state arrays in place; which vectors
        found no such ``t``."""
        free = self.system.free

        def try_step(t):
            trial = x[active].copy()
            trial[:, free] += t[:, None] * step
            with np.errstate(over="ignore", invalid="ignore"):  # a step too long: an infinite norm, halved
                ti, tpa, tpb, tm, tleave = self._evaluate(trial, m[active])
                solved = np.all(np.abs(tleave[:, free]) <= self._tolerance(trial, ti), axis=1)
                return trial, (ti, tpa, tpb, tm, tleave), np.linalg.norm(tleave[:, free], axis=1), solved
        return backtrack(active, x, (i, pa, pb, m, leave), np.linalg.norm(leave[np.ix_(active, free)], axis=1),
                         try_step, self.options.max_halvings)

    def _fail(self, vec: int, first: int, iterations: np.ndarray, leave, i, why: str):
        res = np.abs(leave[vec, self.system.free[:self.n_node]]).max(initial=0.0)
        error = ConvergenceError(
            f"native nonlinear solve of {self.name} did not converge for input vector {first + vec} after "
            f"{int(iterations[vec])} Newton iterations ({why}; largest KCL residual {res:.3g} A against cell currents "
            f"up to {np.abs(i[vec]).max():.3g} A); check the cell parameters and inputs, or validate the layer in "
            "ngspice (circuitsim.tile.nonlinear_layer_run)")
        error.vector = first + vec  # type: ignore[attr-defined]  # which input vector (for its deck)
        raise error
