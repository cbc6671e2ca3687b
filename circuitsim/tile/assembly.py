"""Direct assembly of a tile's reduced MNA system from its grid, by index arithmetic.

The circuit of :func:`~circuitsim.tile.crossbar.build_circuit` is a resistor
network between three kinds of nodes: *free* nodes (driver outputs, word-line
and bit-line cell nodes, TIA inputs), *fixed* nodes held by ideal grounded
sources (the inputs ``in<i>`` and, without a TIA, the bit-line ends) and ground.
The voltage sources need no MNA branch rows here: a grounded source fixes its
node, a 0 V sense source merges the bit-line end with the TIA input, and a TIA
(op-amp of gain ``A`` with feedback ``R_f``) holds its input ``v`` with the
current ``v (1 + A) / R_f`` — a conductance to ground — while its output is
``-A v``. The reduced matrix ``A_ff`` is therefore symmetric positive definite
for every tile option. Node numbers come from the grid position, never from
names, so a 1024 × 1024 tile assembles in a fraction of a second.

Public API
----------
GridSystem, GridPattern, grid_pattern, pattern_key, element_conductances, assemble_tile
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .crossbar import Tile
from .ordering import HORIZONTAL, LEAF, VERTICAL, grid_nested_dissection



@dataclass(frozen=True, eq=False)
class GridSystem:
    """Reduced DC system of a tile: ``A_ff x_f = -A_fk v_k``.

    Node numbers: ``0 .. n_free-1`` free nodes in elimination order, then the
    fixed nodes (``rows`` inputs, then ``cols`` bit-line ends without a TIA).
    """

    tile: Tile
    """The tile."""
    a_ff: sp.csc_matrix
    """Conductances among free nodes (symmetric positive definite), siemens."""
    a_fk: sp.csc_matrix
    """Couplings from fixed nodes into free nodes' KCL, shape ``(n_free, n_fixed)``."""
    a_kk: sp.csr_matrix
    """Conductances among fixed nodes (KCL rows of the fixed nodes)."""
    wl: np.ndarray
    """Node of each word-line cell terminal, ``(rows, cols)``."""
    bl: np.ndarray
    """Node of each bit-line cell terminal, ``(rows, cols)``."""
    drv: np.ndarray
    """Node after each driver, ``(rows,)`` (the input node without a driver)."""
    end: np.ndarray
    """Bit-line end node of each output, ``(cols,)``."""
    ports: np.ndarray | None
    """Free nodes wired to a fixed node or carrying an output, numbered last
    (``n_free - len(ports)`` …); None when they are too many (more than
    ``rows + cols``) for a Schur complement onto them to pay, and not ordered last."""
    g_tia: float
    """TIA input conductance ``(1 + A) / R_f`` (0 without a TIA), siemens."""

    @property
    def n_free(self) -> int:
        """Number of free nodes."""
        return self.a_ff.shape[0]

    def output_rows(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """``(C_f, C_k)`` with output currents ``I = C_f x_f + C_k v_k``, amperes."""
        rows, cols = self.tile.shape
        n_free, n_fixed = self.n_free, self.a_fk.shape[1]
        if self.g_tia:
            c_f = sp.csr_matrix((np.full(cols, self.g_tia), (np.arange(cols), self.end)),
                                shape=(cols, n_free))
            return c_f, sp.csr_matrix((cols, n_fixed))
        # current from the network into a grounded bit-line end: minus its KCL row
        out = self.end - n_free
        return -self.a_fk.T.tocsr()[out], -self.a_kk[out]


@dataclass(frozen=True, eq=False)
class GridPattern:
    """What every tile of one shape and set of options shares: node numbers in elimination
    order, the end nodes of every element and the ports (the values are each tile's own).

    Elements come in a fixed order: one driver per row (``r_driver > 0``), one word-line
    segment per cell (``r_row > 0``), one bit-line segment per cell (``r_col > 0``), then
    the cells with a non-zero conductance, row by row.
    """

    rows: int
    """Inputs."""
    cols: int
    """Outputs."""
    n_free: int
    """Free nodes."""
    n_all: int
    """Free and fixed nodes."""
    a: np.ndarray
    """First node of every element."""
    b: np.ndarray
    """Second node of every element."""
    wl: np.ndarray
    """Node of each word-line cell terminal, ``(rows, cols)``."""
    bl: np.ndarray
    """Node of each bit-line cell terminal, ``(rows, cols)``."""
    drv: np.ndarray
    """Node after each driver, ``(rows,)``."""
    end: np.ndarray
    """Bit-line end node of each output, ``(cols,)``."""
    ports: np.ndarray | None
    """Ports numbered last (see :attr:`GridSystem.ports`), or None."""
    on: np.ndarray
    """Cells present (non-zero conductance), ``(rows, cols)`` booleans."""
    options: tuple[bool, bool, bool, bool]
    """``(r_driver > 0, r_row > 0, r_col > 0, TIA)``."""


def pattern_key(tile: Tile) -> tuple:
    """Tiles with equal keys share one :class:`GridPattern` (shape, which resistances are
    non-zero, TIA or not, and which cells are present)."""
    on = tile.conductances > 0
    return (tile.shape, tile.r_driver > 0, tile.r_row > 0, tile.r_col > 0, tile.tia is not None,
            on.all() or np.packbits(on).tobytes())


def grid_pattern(tile: Tile, leaf: int = LEAF) -> GridPattern:
    """The :class:`GridPattern` of ``tile`` (nested-dissection order along the grid down to
    boxes of ``leaf`` nodes, the ports last when a Schur complement onto them pays)."""
    rows, cols = tile.shape
    n = 0
    kinds, positions = [], []
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")

    def free(kind, pos_i, pos_j):
        nonlocal n
        pos_i, pos_j = np.broadcast_arrays(pos_i, pos_j)
        ids = np.arange(n, n + pos_i.size).reshape(pos_i.shape)
        n += pos_i.size
        kinds.append(np.full(pos_i.size, kind, np.int8))
        positions.append(np.stack([pos_i.ravel(), pos_j.ravel()], 1))
        return ids

    options = (tile.r_driver > 0, tile.r_row > 0, tile.r_col > 0, tile.tia is not None)
    drv = free(HORIZONTAL, np.arange(rows), -1) if options[0] else None
    wl = free(HORIZONTAL, ii, jj) if options[1] else None
    bl = free(VERTICAL, ii, jj) if options[2] else None
    end = free(VERTICAL, rows, np.arange(cols)) if options[3] else None
    n_free = n
    inputs = np.arange(n_free, n_free + rows)
    if end is None:
        end = np.arange(n_free + rows, n_free + rows + cols)
    n_all = n_free + rows + (cols if not options[3] else 0)
    if drv is None:
        drv = inputs
    if wl is None:
        wl = np.repeat(drv[:, None], cols, axis=1)
    if bl is None:
        bl = np.repeat(end[None, :], rows, axis=0)

    a, b = [], []

    def wire(p, q):
        p, q = np.broadcast_arrays(p, q)
        a.append(p.ravel())
        b.append(q.ravel())

    if options[0]:
        wire(inputs, drv)
    if options[1]:
        wire(np.concatenate([drv[:, None], wl[:, :-1]], 1), wl)
    if options[2]:
        wire(bl, np.concatenate([bl[1:], end[None, :]], 0))
    on = tile.conductances > 0
    wire(wl[on], bl[on])
    a, b = (np.concatenate(x).astype(np.int64) for x in (a, b))

    # ports: free nodes wired to a fixed one, and the TIA inputs; the Schur complement
    # onto them pays while they are the grid's edges (with zero-ohm word lines and
    # no driver every bit-line node touches an input)
    fa, fb = a >= n_free, b >= n_free
    ports = np.unique(np.concatenate([a[~fa & fb], b[fa & ~fb], end if options[3] else []]).astype(np.int64))
    schur = len(ports) <= rows + cols
    kind = np.concatenate(kinds) if kinds else np.zeros(0, np.int8)
    position = np.concatenate(positions) if positions else np.zeros((0, 2), np.int64)
    order = grid_nested_dissection(kind, position, ports if schur else (), leaf)
    step = np.arange(n_all)
    step[order] = np.arange(n_free)
    a, b, wl, bl, drv, end, ports = (step[x] for x in (a, b, wl, bl, drv, end, ports))
    return GridPattern(rows, cols, n_free, n_all, a, b, wl, bl, drv, end, ports if schur else None, on, options)


def element_conductances(pattern: GridPattern, tiles) -> tuple[np.ndarray, np.ndarray]:
    """Conductances of every element of tiles sharing ``pattern``, siemens: ``(k, elements)``,
    and the TIA input conductances ``(1 + A) / R_f`` (0 without a TIA), ``(k,)``."""
    tiles = list(tiles)
    rows, cols = pattern.rows, pattern.cols
    parts = []
    for flag, name, count in ((pattern.options[0], "r_driver", rows), (pattern.options[1], "r_row", rows * cols),
                              (pattern.options[2], "r_col", rows * cols)):
        if flag:
            parts.append(np.repeat(1.0 / np.array([getattr(t, name) for t in tiles])[:, None], count, 1))
    parts.append(np.stack([t.conductances[pattern.on] for t in tiles]) if tiles else np.zeros((0, 0)))
    g = np.concatenate(parts, 1) if tiles else np.zeros((0, len(pattern.a)))
    g_tia = np.array([0.0 if t.tia is None else (1.0 + t.tia.gain) / t.tia.r_feedback for t in tiles])
    return g, g_tia


def assemble_tile(tile: Tile, pattern: GridPattern | None = None) -> GridSystem:
    """Assemble the reduced system of a tile (every option of :class:`Tile`).

    Free nodes are numbered in their elimination order (nested dissection along
    the grid, the ports last), so the matrices are ready to factorize.

    Parameters
    ----------
    tile : Tile
        The tile; capacitances are open at DC and ignored.
    pattern : GridPattern, optional
        The tile's pattern (:func:`grid_pattern`), when already known.

    Returns
    -------
    GridSystem
    """
    pattern = grid_pattern(tile) if pattern is None else pattern
    (g,), (g_tia,) = element_conductances(pattern, [tile])
    a_ff, a_fk, a_kk = _matrices(pattern, g, float(g_tia))
    p = pattern
    return GridSystem(tile=tile, a_ff=a_ff, a_fk=a_fk, a_kk=a_kk, wl=p.wl, bl=p.bl, drv=p.drv,
                      end=p.end, ports=p.ports, g_tia=float(g_tia))


def _matrices(pattern: GridPattern, g: np.ndarray, g_tia: float):
    """``A_ff`` (CSC), ``A_fk`` (CSC) and ``A_kk`` (CSR) of one tile's element conductances."""
    a, b, n_free, n_all, end = pattern.a, pattern.b, pattern.n_free, pattern.n_all, pattern.end
    fa, fb = a >= n_free, b >= n_free
    diag = np.bincount(a, g, n_all) + np.bincount(b, g, n_all)
    if g_tia:
        diag[end] += g_tia
    both_free, both_fixed = ~fa & ~fb, fa & fb
    idx = np.arange(n_free)
    a_ff = sp.csc_matrix(
        (np.concatenate([-g[both_free], -g[both_free], diag[:n_free]]),
         (np.concatenate([a[both_free], b[both_free], idx]),
          np.concatenate([b[both_free], a[both_free], idx]))), shape=(n_free, n_free))
    mixed = ~both_free & ~both_fixed
    f_end, k_end = np.where(fa[mixed], b[mixed], a[mixed]), np.where(fa[mixed], a[mixed], b[mixed])
    a_fk = sp.csc_matrix((-g[mixed], (f_end, k_end - n_free)), shape=(n_free, n_all - n_free))
    kk_a, kk_b, kk_g = a[both_fixed] - n_free, b[both_fixed] - n_free, g[both_fixed]
    kdx = np.arange(n_all - n_free)
    a_kk = sp.csr_matrix(
        (np.concatenate([-kk_g, -kk_g, diag[n_free:]]),
         (np.concatenate([kk_a, kk_b, kdx]), np.concatenate([kk_b, kk_a, kdx]))),
        shape=(n_all - n_free,) * 2)
    return a_ff, a_fk, a_kk
