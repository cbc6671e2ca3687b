"""The native nonlinear solve in cell space: Newton's method on the voltages across the cells.

Cells of a two-terminal element, alone or before a series resistor (every model of
:mod:`circuitsim.tile.cells` but ``1t1r``), are solved on the voltages ``u`` across their
elements: ``u + (Z + R_series) f(u) = v``, ``f`` the element's law, ``v`` the input each cell
sees with ideal wires and ``Z`` the impedance of the wires between cells (the segments two cells
share on a word line from its input, on a bit line down to its output, and the sense resistor
that ends a bit line). Newton's method from ``u = v`` or the linear tile's solution (whichever
is nearer), damped by a backtracking line search, each step solved by conjugate gradients on a
symmetric positive definite system, all input vectors together and no factorization at all.
:class:`~circuitsim.tile.nonlinear.NonlinearSolver` checks every answer on the grid's KCL
equations and finishes a vector that stalls with exact Newton steps.

Public API
----------
CellSpace
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .nonlinear_tile import NewtonOptions, NonlinearTile

ROUNDING = 64
"""Ulps of a node's largest current term below which its KCL residual is rounding noise."""

DENSE_LINES = 512
"""Cells a line up to which the wires' impedance is applied as a dense line matrix (one BLAS
product; measured at 70 x 31 x 60 cells: 1.0 ms against 10 ms for the cumulative sums, at
2 x 256²: 3.8 against 9.8 ms); beyond, by cumulative sums (linear in the line's length)."""

FORCING = 1e-2
"""Relative residual to which conjugate gradients solve a cell-space Newton step (an inexact
Newton step; the answer is checked to the full tolerance all the same. Measured on a 31 x 60
sinh tile: 6 or 7 Newton iterations from 1e-6 to 1e-2, 4.1 against 2.6 ms per vector)."""

CELL_ITERATIONS = 15
"""Newton iterations in cell space before a vector is left to the exact Newton steps. From
``u = v`` the first steps of strongly nonlinear cells on long lines are damped hard and crawl: a
401 x 240 tile of sinh cells (``v0`` 0.05 or 0.2 V, 0.8 V inputs, ~10 ohm segments) had not
converged after 25, where the exact steps from the linear solution take 5 to 7; the tiles of
the tests, benchmarks and studies converge in cell space in 3 to 11. From the nearer of ``u = v``
and the linear solution (:meth:`CellSpace._linear_start`) the MLP study's undivided 401 x 240
tile at ``v0 = 0.05 V`` converges in 8 or 9; at 0.2 and 1 V it still reaches 15."""

CG_ITERATIONS = 100
"""Conjugate-gradient iterations of a cell-space Newton step before the vector is left to the
exact Newton steps (a tile whose wires the cells load heavily)."""


class CellSpace:
    """The cell-space solve of one tile whose cells are one element before a series resistor.

    Parameters
    ----------
    tile : NonlinearTile
    r_series : numpy.ndarray
        Each cell's series resistance, ohm ``(rows * cols,)`` (0 for one-element cells).
    options : NewtonOptions
    """

    def __init__(self, tile: NonlinearTile, r_series: np.ndarray, options: NewtonOptions):
        self.tile, self.r_series, self.options = tile, r_series, options
        rows, cols = tile.shape
        self._ramp_c = np.arange(1.0, cols + 1)  # word-line segments from the input to cell c
        self._ramp_r = np.arange(rows, 0.0, -1)[:, None]  # bit-line segments from cell r to the output
        # Z' = Z + diag(r_series): its diagonal, ohm
        self._z_diag = (tile.r_row * self._ramp_c + tile.r_col * self._ramp_r + tile.r_sense).ravel() + r_series
        # the wire ohms two cells of a line share (:meth:`wire_drops`)
        self._line_word = tile.r_row * np.minimum.outer(self._ramp_c, self._ramp_c)
        self._line_bit = tile.r_col * np.minimum.outer(self._ramp_r[:, 0], self._ramp_r[:, 0]) + tile.r_sense

    def wire_drops(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The word lines' drop and the bit lines' rise of voltage at every cell, volts
        ``(k, cells)``, for cell currents ``i`` ``(k, cells)`` amperes (their sum is ``Z i``,
        ``Z`` the wires' impedance seen by the cells). Cells ``c`` and ``c'`` of a word line
        share the ``min(c, c') + 1`` segments from its input, cells ``r`` and ``r'`` of a bit line
        the ``rows - max(r, r')`` segments to its output and its sense resistor: a product with
        that line matrix (up to :data:`DENSE_LINES` cells a line), else two cumulative sums, as
        ``Σ_c' i_c' (min(c, c') + 1)`` is ``Σ_{c' <= c} (c' + 1) i_c' + (c + 1) Σ_{c' > c} i_c'``."""
        tile = self.tile
        rows, cols = tile.shape
        c = i.reshape(len(i), rows, cols)
        if tile.r_row == 0:
            word = np.zeros_like(c)
        elif cols <= DENSE_LINES:
            word = c @ self._line_word
        else:
            below, weighted = np.cumsum(c, axis=2), np.cumsum(c * self._ramp_c, axis=2)
            word = tile.r_row * (weighted + self._ramp_c * (below[:, :, -1:] - below))
        if tile.r_col == 0 and tile.r_sense == 0:
            bit = np.zeros_like(c)
        elif rows <= DENSE_LINES:
            bit = self._line_bit @ c
        else:
            above, weighted = np.cumsum(c, axis=1), np.cumsum(c * self._ramp_r, axis=1)
            bit = tile.r_col * (self._ramp_r * above + weighted[:, -1:, :] - weighted) + tile.r_sense * above[:, -1:, :]
        return word.reshape(i.shape), bit.reshape(i.shape)

    def _drop(self, i: np.ndarray) -> np.ndarray:
        """``Z' i = Z i + r_series i``, volts (:meth:`wire_drops`, :meth:`newton`)."""
        word, bit = self.wire_drops(i)
        word += bit
        word += self.r_series * i
        return word

    def _cg(self, g: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Newton step ``δu`` of ``(I + Z' G) δu = -f`` for every vector ``(k, cells)``
        (:meth:`newton`), and which vectors' conjugate gradients reached :data:`FORCING`
        of the right-hand side. CG solves ``(I + S Z' S) w = -S f`` (``S = G^½``), preconditioned
        by its diagonal; then ``δu = -f - Z' S w`` (``S w = G δu``, the currents' change: no
        division by ``S``; ``Z' S w`` is summed along from the products CG makes)."""
        s = np.sqrt(g)
        b = -s * f
        precond = 1 + g * self._z_diag
        zsw = np.zeros_like(b)  # Z' S w, kept along (the step needs it)
        r = b.copy()
        z = r / precond
        p = z.copy()
        rz = np.einsum("ij,ij->i", r, z)
        goal = FORCING * np.linalg.norm(b, axis=1)
        solved = np.linalg.norm(r, axis=1) <= goal
        for _ in range(CG_ITERATIONS):
            if solved.all():
                break
            zsp = self._drop(s * p)
            q = p + s * zsp
            pq = np.einsum("ij,ij->i", p, q)
            alpha = np.where(solved | (pq <= 0), 0.0, rz / np.where(pq > 0, pq, 1.0))[:, None]
            zsw += alpha * zsp
            r -= alpha * q
            solved |= np.linalg.norm(r, axis=1) <= goal
            np.divide(r, precond, out=z)
            rz_new = np.einsum("ij,ij->i", r, z)
            p = z + np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)[:, None] * p
            rz = rz_new
        return -f - zsw, solved

    def _linear_start(self, v: np.ndarray, target: np.ndarray, law, state: tuple) -> tuple:
        """The starting point of every vector: ``u = v`` (``state``: ``u, i, g, F``) or the
        linear tile's solution, every cell at its chord conductance at the largest input
        (the grid's start; one CG solve), whichever has the smaller ``|F|``. From ``u = v``
        alone, strongly nonlinear cells crawl: on LeNet-5's second convolution's tiles (30 to 76 x
        32 cells, ``v0 = 0.05 V``, ReLU inputs up to 2.5 ``v_read``) 568 of 1,000 vectors left
        the cell space for the grid's steps; from the nearer start none did, 1.2 against 13.8 ms
        CPU a vector (the grid's steps alone: 9.6 ms)."""
        v_ref = float(np.abs(v).max())
        if not v_ref:
            return state
        g_cell = self.tile.cells.chord_conductance(v_ref).ravel()
        # the element alone at that chord: i = g_cell (u + r i)
        g_el = g_cell / np.maximum(1 - g_cell * self.r_series, 1e-12)
        u0, _ = self._cg(np.broadcast_to(g_el, target.shape), -target)
        with np.errstate(over="ignore", invalid="ignore"):
            i0, g0 = (np.array(z, dtype=float) for z in law(u0, 0.0)[:2])
            f0 = u0 + self._drop(i0) - target
            better = np.linalg.norm(f0, axis=1) < np.linalg.norm(state[3], axis=1)
        return tuple(np.where(better[:, None], b, a) for a, b in zip(state, (u0, i0, g0, f0)))

    def newton(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Newton's method on the voltages ``u`` ``(k, cells)`` across the cells' first element
        (the whole cell for one-element cells, the junction before a series resistor):
        ``F(u) = u + Z' f(u) - v = 0``, ``f`` the element's law, ``Z' = Z + diag(r_series)``
        (``Z`` the wires' impedance seen by the cells, :meth:`wire_drops`), from ``u = v`` (no
        drop at all) or the linear tile's solution, whichever is nearer (:meth:`_linear_start`).
        The Jacobian ``I + Z' G`` (``G = diag f' > 0``) is solved by conjugate
        gradients on ``I + S Z' S`` (``S = G^½``: symmetric positive definite, eigenvalues in
        ``[1, 1 + max g · λ_max(Z')]``); every product is two cumulative sums per wire
        direction, so no vector needs a factorization and no internal node a solve of its own.

        Returns the elements' currents ``(k, cells)`` amperes, the iterations and which vectors
        converged; the others stopped where CG or the line
        search stalled and are left to the exact Newton steps.
        """
        opt, rows, cols = self.options, *self.tile.shape
        k = len(v)
        law = self.tile.cells.elements()[0]
        target = np.repeat(v, cols, axis=1)  # cell (r, c) sees input r with the wires ideal
        u = target.copy()
        i, g = (np.array(z, dtype=float) for z in law(u, 0.0)[:2])  # writable (a linear law's g is a view)
        f = u + self._drop(i) - target
        u, i, g, f = self._linear_start(v, target, law, (u, i, g, f))
        iterations = np.zeros(k, np.int64)
        done = np.zeros(k, bool)
        active = np.arange(k)
        scale = np.abs(v).max(axis=1)
        floor = ROUNDING * np.finfo(float).eps * scale * np.sqrt(rows * cols)  # rounding noise of |F|
        for _ in range(min(opt.max_iterations, CELL_ITERATIONS)):
            if not len(active):
                break
            step, solved = self._cg(g[active], f[active])
            norm0 = np.linalg.norm(f[active], axis=1)
            t = np.ones(len(active))
            pending = np.ones(len(active), bool)
            for _ in range(opt.max_halvings + 1):
                trial = u[active] + t[:, None] * step
                with np.errstate(over="ignore", invalid="ignore"):  # a step too long: an infinite norm, halved
                    ti, tg, _ = law(trial, 0.0)
                    tf = trial + self._drop(ti) - target[active]
                    norm = np.linalg.norm(tf, axis=1)
                ok = pending & ((norm <= (1 - 1e-4 * t) * norm0) | (norm0 == 0) | (norm <= floor[active]))
                rows_ok = active[ok]
                u[rows_ok], i[rows_ok], g[rows_ok], f[rows_ok] = trial[ok], ti[ok], tg[ok], tf[ok]
                pending &= ~ok
                if not pending.any():
                    break
                t = np.where(pending, t / 2, t)
            iterations[active] += 1
            small_step = np.abs(step).max(axis=1) <= opt.step_tol * scale[active]
            # a cell's KCL residual on the grid is about g f: the same tolerance, checked on the grid after
            small_res = (np.abs(g[active] * f[active]).max(axis=1)
                         <= 0.1 * opt.residual_tol * np.abs(i[active]).max(axis=1))
            finished = small_step & small_res & ~pending
            done[active[finished]] = True
            active = active[~(finished | pending | ~solved)]  # stalled ones go to the exact steps
        return i, iterations, done
