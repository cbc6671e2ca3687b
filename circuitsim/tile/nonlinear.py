"""The native engine of a :class:`~circuitsim.tile.nonlinear_tile.NonlinearTile`: Newton's method,
in cell space or on the tile grid.

Cells of a two-terminal element, alone or before a series resistor (every model but
``1t1r``), are solved in cell space first (:mod:`circuitsim.tile.cell_space`: no
factorization, all input vectors together). The answer is then
checked on the grid of :func:`~circuitsim.tile.assembly.grid_pattern` (the linear engine's
nodes, elimination order and elements), every KCL equation including the cells' internal
nodes. A vector that fails the check (from its cell-space answer), one that stalls and every
``1t1r`` vector (from the linear solution: every cell at its chord conductance at the largest
input magnitude), takes exact
Newton steps on that grid, each damped by a backtracking line search on the KCL residual: the
Jacobian keeps one sparsity pattern, its values scattered into it by one sparse product;
symmetric Jacobians are factorized by :class:`~circuitsim.tile.factor.SPDFactor` in the grid's
order, with CHOLMOD's symbolic analysis done once and reused for every iteration and vector;
``1t1r`` Jacobians (the gate is referenced to ground, so ``∂I/∂V_b ≠ -∂I/∂V_a``) by SuperLU
in the same order. An unconverged vector raises :class:`~circuitsim.errors.ConvergenceError`,
never returns.

Public API
----------
NonlinearSolver (the tile, options and result: :mod:`circuitsim.tile.nonlinear_tile`; the deck,
ngspice and the command's function: :mod:`circuitsim.tile.nonlinear_run`)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from .assembly import GridPattern, grid_pattern
from .cell_space import ROUNDING, CellSpace
from .factor import SPDFactor, analyze, available_backends
from .native_tile import _blas_threads
from .nonlinear_tile import NewtonOptions, NonlinearResult, NonlinearTile, backtrack

SUPERNODAL = 100_000
"""Free nodes from which CHOLMOD's supernodal factorization is used (simplicial below)."""

CELL_CHUNK = 2**16
"""Vectors × cells solved together in cell space (arrays that stay in the cache; measured at
31 x 60 cells: 1.1 ms per vector in chunks of 2^16 cells, 2.2 ms in chunks of 2^18)."""

CHORD = 1e-6
"""Relative KCL residual below which a vector's last Jacobian factorization is reused."""

class NonlinearSolver:
    """The native engine of one :class:`NonlinearTile` (pattern and symbolic analysis made once).

    Parameters
    ----------
    tile : NonlinearTile
    options : NewtonOptions, optional
    """

    def __init__(self, tile: NonlinearTile, options: NewtonOptions | None = None):
        self.tile = tile
        self.options = options or NewtonOptions()
        p = self.pattern = _sensed(grid_pattern(tile.wires()), tile.r_sense)
        rows, cols = tile.shape
        n_cells = rows * cols
        n_wires = len(p.a) - n_cells
        wire_g = np.concatenate([np.full(rows * cols, 1 / tile.r_row) if tile.r_row > 0 else [],
                                 np.full(rows * cols, 1 / tile.r_col) if tile.r_col > 0 else [],
                                 np.full(cols, 1 / tile.r_sense) if tile.r_sense > 0 else []])
        assert len(wire_g) == n_wires
        self.wire_g = wire_g
        self.cell_a, self.cell_b = p.a[n_wires:], p.b[n_wires:]  # row-major cells, as the parameters
        self.symmetric = tile.cells.kind != "1t1r"
        # Jacobian stamps (row, col) of every element: (a,a) +pa, (a,b) +pb, (b,a) -pa, (b,b) -pb
        a, b, n = p.a, p.b, p.n_free
        rows_s = np.concatenate([a, a, b, b])
        cols_s = np.concatenate([a, b, a, b])
        keep = (rows_s < n) & (cols_s < n)
        key = cols_s[keep] * n + rows_s[keep]  # CSC order: by column, then row
        unique, where = np.unique(key, return_inverse=True)
        self._keep = keep
        self._indices = (unique % n).astype(np.int32)
        self._indptr = np.searchsorted(unique // n, np.arange(n + 1)).astype(np.int32)
        self._scatter = sp.csr_matrix((np.ones(len(where)), (np.arange(len(where)), where)),
                                      shape=(len(where), len(unique)))
        self._analysis = None  # made on the first factorization (the cell-space solve needs none)
        self._slots: list = []
        # cells of one element, or one before a series resistor, are solved in cell space
        r_series = tile.cells.series_resistance()
        self.cell_space = None if r_series is None else CellSpace(tile, r_series, self.options)

    # -- pieces -----------------------------------------------------------------------------------

    def _jacobian(self, pa: np.ndarray, pb: np.ndarray) -> sp.csc_matrix:
        """``∂F/∂x`` on the free nodes for cell derivatives ``pa``, ``pb`` (one vector)."""
        ga = np.concatenate([self.wire_g, pa])
        gb = np.concatenate([-self.wire_g, pb])
        stamps = np.concatenate([ga, gb, -ga, -gb])[self._keep]
        data = self._scatter.T @ stamps
        n = self.pattern.n_free
        return sp.csc_matrix((data, self._indices, self._indptr), shape=(n, n))

    def _factor(self, jac: sp.csc_matrix, slot: int | None = None):
        """The solve ``rhs -> jac^-1 rhs`` of a factorization of ``jac``; with CHOLMOD, into the
        symbolic analysis of ``slot`` (a copy of the shared one, kept while its vector is solved)."""
        if self.symmetric:
            if self._analysis is None and "cholmod" in available_backends():
                # simplicial L D L^T is the faster below ~10^5 nodes (measured: 128², 36 against 47 ms)
                self._analysis = analyze(jac, supernodal=jac.shape[0] >= SUPERNODAL)
            analysis = self._analysis
            if analysis is not None and slot is not None:
                while len(self._slots) <= slot:
                    self._slots.append(analysis.copy())
                analysis = self._slots[slot]
            with _blas_threads(jac.shape[0]):
                return SPDFactor(jac, None, analysis=analysis).solve
        try:
            lu = spla.splu(jac, permc_spec="NATURAL", diag_pivot_thresh=0.0)
        except RuntimeError as exc:
            raise ConvergenceError(f"native nonlinear solve of {self.tile.describe()}: singular Jacobian ({exc}); "
                                   "check for cells that conduct nothing") from None
        return lu.solve

    def _factor_solve(self, jac: sp.csc_matrix, rhs: np.ndarray) -> np.ndarray:
        return self._factor(jac)(rhs)

    def _evaluate(self, x: np.ndarray, m):
        """Cell currents, derivatives, internal nodes and the KCL currents leaving every node,
        for node voltages ``x`` ``(k, n_all)``."""
        i, pa, pb, m = (np.array(z, dtype=float) for z in self.tile.cells.branch(x[:, self.cell_a],
                                                                                  x[:, self.cell_b], m))
        return i, pa, pb, m, self._leave(x, i, i)

    def _leave(self, x: np.ndarray, out_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
        """KCL currents leaving every node ``(k, n_all)``, amperes, for node voltages ``x`` with
        cell currents ``out_a`` leaving the cells' word-line nodes and ``in_b`` entering their
        bit-line nodes (the same unless a cell's internal node is off balance)."""
        p, nw = self.pattern, len(self.wire_g)
        wire_i = self.wire_g * (x[:, p.a[:nw]] - x[:, p.b[:nw]])
        k, n_all = x.shape
        offset = (np.arange(k) * n_all)[:, None]
        return (np.bincount((p.a + offset).ravel(), np.concatenate([wire_i, out_a], axis=1).ravel(), k * n_all)
                - np.bincount((p.b + offset).ravel(), np.concatenate([wire_i, in_b], axis=1).ravel(), k * n_all)
                ).reshape(k, n_all)

    def _check_cells(self, x: np.ndarray, m: np.ndarray):
        """The true residual of a cell-space answer: every KCL equation of the grid's nodes and
        of the cells' internal nodes ``m`` (the element's current against the series
        resistor's), at node voltages ``x``. Returns the elements' currents and derivatives,
        the KCL currents leaving the grid's nodes and which vectors are within the tolerance."""
        j, gj = (np.array(z, dtype=float) for z in self.tile.cells.elements()[0](x[:, self.cell_a] - m, 0.0)[:2])
        vb, r = x[:, self.cell_b], self.cell_space.r_series
        with np.errstate(divide="ignore", invalid="ignore"):
            through = np.where(r > 0, (m - vb) / np.where(r > 0, r, 1.0), j)  # the series resistor's current
        leave = self._leave(x, j, through)
        n = self.pattern.n_free
        residual = np.maximum(np.abs(leave[:, :n]).max(axis=1), np.abs(j - through).max(axis=1))
        return j, gj, leave, residual <= self._tolerance(x, j, gj)

    def _start(self, v: np.ndarray) -> np.ndarray:
        """Node voltages ``(k, n_all)`` of the linear tile at the cells' chord conductance."""
        p, tile = self.pattern, self.tile
        k = len(v)
        x = np.zeros((k, p.n_all))
        x[:, p.n_free:p.n_free + tile.rows] = v
        if not p.n_free:
            return x
        v_ref = float(np.abs(v).max()) or 0.1
        g = np.maximum(tile.cells.chord_conductance(v_ref).ravel(), 1e-300)
        jac = self._jacobian(g, -g)
        sym = self.symmetric
        self.symmetric = True  # the linear tile is symmetric
        try:
            rhs = self._evaluate_linear(x, g)
            x[:, :p.n_free] = self._factor_solve(jac, -rhs.T).T
        finally:
            self.symmetric = sym
        return x

    def _evaluate_linear(self, x, g):
        """KCL currents leaving the free nodes with the free nodes at 0 V (linear cells ``g``)."""
        p = self.pattern
        ga = np.concatenate([self.wire_g, g])
        current = ga * (x[:, p.a] - x[:, p.b])
        k, n_all = x.shape
        offset = (np.arange(k) * n_all)[:, None]
        leave = (np.bincount((p.a + offset).ravel(), current.ravel(), k * n_all)
                 - np.bincount((p.b + offset).ravel(), current.ravel(), k * n_all)).reshape(k, n_all)
        return leave[:, :p.n_free]

    # -- the solve --------------------------------------------------------------------------------

    def solve(self, inputs) -> NonlinearResult:
        """Output currents of input vectors ``(vectors, rows)`` volts (or one ``(rows,)``)."""
        start = time.perf_counter()
        v = self.tile.check_inputs(inputs)
        if self.cell_space is not None:  # cell space: chunks of arrays that stay in the cache
            chunk = max(1, CELL_CHUNK // (self.tile.rows * self.tile.cols))
        else:  # vectors in chunks whose factorizations (kept for chord steps) fit in ~100 MB
            chunk = max(1, min(64, 1_000_000 // max(self.pattern.n_free, 1)))
        with _blas_threads(self.pattern.n_free):  # one thread for the cell space's small products too
            parts = [self._solve_chunk(v[k:k + chunk], k) for k in range(0, len(v), chunk)]
        return NonlinearResult(*(np.concatenate([q[j] for q in parts]) for j in (0, 1)), "native",
                               time.perf_counter() - start, np.concatenate([q[2] for q in parts]))

    def _solve_chunk(self, v: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Output currents, iterations and input currents of the vectors ``v`` (numbered from ``first``).

        Cells of a two-terminal element (behind a resistor) are solved in cell space first
        (:mod:`~circuitsim.tile.cell_space`, no factorization); every answer is then checked on the grid's KCL
        equations (:meth:`_check_cells`), and a vector that fails the check (from its cell-space
        answer) or stalled in cell space (or any vector of a ``1t1r`` tile; both from the linear
        solution) takes exact Newton steps on the grid: far from
        the solution every step refactorizes the Jacobian; once a vector's residual is below
        :data:`CHORD` of its cell currents, its last factorization is reused (a chord step: the
        Jacobian has changed by about that much, so the step is Newton's to ~1e-6 of itself).
        """
        p, opt = self.pattern, self.options
        k, n = len(v), p.n_free
        factors: dict = {}
        if self.cell_space is not None and n:
            x, m, iterations, ended = self._cell_nodes(v)
            with np.errstate(over="ignore", invalid="ignore"):  # a stalled vector may be far off: inf, not ok
                i, pa, leave, ok = self._check_cells(x, m)
            pb = -pa
            near, stalled = np.flatnonzero(ended & ~ok), np.flatnonzero(~ended)
            if len(near):  # converged in cell space, not on the grid: the exact steps from there
                i[near], pa[near], pb[near], m[near], leave[near] = self._evaluate(x[near], m[near])
            if len(stalled):  # CG or the line search stalled, maybe far off: from there or from the
                start = self._start(v[stalled])  # linear solution, whichever has the smaller KCL residual
                with np.errstate(over="ignore", invalid="ignore"):
                    here = self._evaluate(x[stalled], m[stalled])
                linear = self._evaluate(start, None)
                nearer = np.abs(linear[4][:, :n]).max(axis=1) < np.abs(here[4][:, :n]).max(axis=1)
                x[stalled[nearer]] = start[nearer]
                for array, a, b in zip((i, pa, pb, m, leave), here, linear):
                    array[stalled] = np.where(nearer[:, None], b, a)
            active = np.flatnonzero(~(ended & ok))
        else:
            x, iterations = self._start(v), np.zeros(k, dtype=np.int64)
            i, pa, pb, m, leave = self._evaluate(x, None)
            active = np.arange(k)
        while len(active) and n:
            over = iterations[active] >= opt.max_iterations
            if over.any():
                self._fail(active[over][0], first, int(iterations[active[over][0]]), leave, i,
                           "the iteration limit was reached")
            f = leave[active, :n]
            step = np.empty_like(f)
            for r, vec in enumerate(active):
                near = np.abs(f[r]).max() <= CHORD * (np.abs(i[vec]).max() + 1e-300)
                if not (near and vec in factors):
                    factors[vec] = self._factor(self._jacobian(pa[vec], pb[vec]), vec)
                step[r] = factors[vec](-f[r])
            pending = self._line_search(active, step, x, i, pa, pb, m, leave)
            iterations[active] += 1
            scale_v = np.abs(x[active]).max(axis=1)
            # at the solution the residual is rounding noise that no step lowers: converged all the same
            small_step = (np.abs(step).max(axis=1) <= opt.step_tol * scale_v)
            small_res = np.abs(leave[active, :n]).max(axis=1) <= self._tolerance(x[active], i[active], pa[active])
            stuck = pending & ~small_res
            if stuck.any():
                vec = active[stuck][0]
                self._fail(vec, first, int(iterations[vec]), leave, i,
                           "the line search found no step that lowers the residual")
            finished = small_step & small_res
            for vec in active[finished]:
                factors.pop(vec, None)
            active = active[~finished]
        inputs = leave[:, n:n + self.tile.rows]  # what each source delivers into the grid
        return -leave[:, p.end], iterations, inputs  # current into each grounded bit-line end

    def _line_search(self, active, step, x, i, pa, pb, m, leave) -> np.ndarray:
        """Take the damped steps ``x[active] += t step`` (``t`` halved until the KCL residual norm
        falls, or is within the tolerance), updating the state arrays in place; which vectors
        found no such ``t``."""
        n = self.pattern.n_free

        def try_step(t):
            trial = x[active].copy()
            trial[:, :n] += t[:, None] * step
            ti, tpa, tpb, tm, tleave = self._evaluate(trial, m[active])
            # a residual within the tolerance is taken too: at the solution it is rounding noise
            solved = np.abs(tleave[:, :n]).max(axis=1) <= self._tolerance(trial, ti, tpa)
            return trial, (ti, tpa, tpb, tm, tleave), np.linalg.norm(tleave[:, :n], axis=1), solved
        return backtrack(active, x, (i, pa, pb, m, leave), np.linalg.norm(leave[active, :n], axis=1), try_step,
                         self.options.max_halvings)

    def _cell_nodes(self, v: np.ndarray):
        """The cell-space solve of input vectors ``v`` as the grid's node voltages ``(k, n_all)``
        (word line = input - its drop, bit line = its rise, a sense resistor's end = its
        column's current times ``r_sense``), the cells' internal nodes (the bit line + the
        series resistor's drop), the iterations and which vectors converged."""
        i, iterations, done = self.cell_space.newton(v)
        p, (rows, cols) = self.pattern, self.tile.shape
        x = np.zeros((len(v), p.n_all))
        x[:, p.n_free:p.n_free + rows] = v
        word, bit = self.cell_space.wire_drops(i)
        x[:, self.cell_a] = np.repeat(v, cols, axis=1) - word
        x[:, self.cell_b] = bit
        if self.tile.r_sense > 0:  # the sense resistors are the last wires, from each bit line's end
            ends = p.a[len(self.wire_g) - cols:len(self.wire_g)]
            x[:, ends] = self.tile.r_sense * i.reshape(len(v), rows, cols).sum(axis=1)
        return x, bit + self.cell_space.r_series * i, iterations, done

    def _tolerance(self, x: np.ndarray, i: np.ndarray, pa: np.ndarray) -> np.ndarray:
        """Largest KCL residual taken as converged, amperes per vector: ``residual_tol`` of the
        largest cell current, or the rounding noise of the currents that meet at a node
        (``ROUNDING`` ulps of the largest node voltage times the largest node conductance:
        with small cell currents, the wires' large canceling currents set it)."""
        g_node = 2 * (self.wire_g.max() if len(self.wire_g) else 0.0) + np.abs(pa).max(axis=1)
        noise = ROUNDING * np.finfo(float).eps * np.abs(x).max(axis=1) * g_node
        return np.maximum(self.options.residual_tol * (np.abs(i).max(axis=1) + 1e-300), noise)

    def _fail(self, vec: int, first: int, iterations: int, leave, i, why: str):
        n = self.pattern.n_free
        res = np.abs(leave[vec, :n]).max()
        error = ConvergenceError(
            f"native nonlinear solve of {self.tile.describe()} did not converge for input vector {first + vec} after "
            f"{iterations} Newton iterations ({why}; largest KCL residual {res:.3g} A against cell currents up to "
            f"{np.abs(i[vec]).max():.3g} A); check the cell parameters and inputs, or use --engine ngspice")
        error.vector = first + vec  # type: ignore[attr-defined]  # which input vector (for its deck)
        raise error


def _sensed(p: GridPattern, r_sense: float) -> GridPattern:
    """The pattern with every (free) bit-line end wired to its own 0 V node through the sense
    resistor (elements after the wires, before the cells); those nodes are the new ``end``."""
    if r_sense <= 0:
        return p
    cols, n_cells = p.cols, p.rows * p.cols
    ground = np.arange(p.n_all, p.n_all + cols)
    a = np.concatenate([p.a[:len(p.a) - n_cells], p.end, p.a[len(p.a) - n_cells:]])
    b = np.concatenate([p.b[:len(p.b) - n_cells], ground, p.b[len(p.b) - n_cells:]])
    return dataclasses.replace(p, n_all=p.n_all + cols, a=a, b=b, end=ground)
