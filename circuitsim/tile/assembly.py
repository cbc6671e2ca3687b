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
GridSystem, assemble_tile
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .crossbar import Tile
from .ordering import HORIZONTAL, VERTICAL, grid_nested_dissection



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


def assemble_tile(tile: Tile) -> GridSystem:
    """Assemble the reduced system of a tile (every option of :class:`Tile`).

    Free nodes are numbered in their elimination order (nested dissection along
    the grid, the ports last), so the matrices are ready to factorize.

    Parameters
    ----------
    tile : Tile
        The tile; capacitances are open at DC and ignored.

    Returns
    -------
    GridSystem
    """
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

    drv = free(HORIZONTAL, np.arange(rows), -1) if tile.r_driver > 0 else None
    wl = free(HORIZONTAL, ii, jj) if tile.r_row > 0 else None
    bl = free(VERTICAL, ii, jj) if tile.r_col > 0 else None
    end = free(VERTICAL, rows, np.arange(cols)) if tile.tia is not None else None
    n_free = n
    inputs = np.arange(n_free, n_free + rows)
    if end is None:
        end = np.arange(n_free + rows, n_free + rows + cols)
    n_all = n_free + rows + (cols if tile.tia is None else 0)
    if drv is None:
        drv = inputs
    if wl is None:
        wl = np.repeat(drv[:, None], cols, axis=1)
    if bl is None:
        bl = np.repeat(end[None, :], rows, axis=0)

    a, b, g = [], [], []

    def wire(p, q, conductance):
        p, q = np.broadcast_arrays(p, q)
        a.append(p.ravel())
        b.append(q.ravel())
        g.append(np.broadcast_to(conductance, p.shape).ravel().astype(float))

    if tile.r_driver > 0:
        wire(inputs, drv, 1.0 / tile.r_driver)
    if tile.r_row > 0:
        wire(np.concatenate([drv[:, None], wl[:, :-1]], 1), wl, 1.0 / tile.r_row)
    if tile.r_col > 0:
        wire(bl, np.concatenate([bl[1:], end[None, :]], 0), 1.0 / tile.r_col)
    on = tile.conductances > 0
    wire(wl[on], bl[on], tile.conductances[on])
    a, b, g = (np.concatenate(x) for x in (a, b, g))
    g_tia = 0.0 if tile.tia is None else (1.0 + tile.tia.gain) / tile.tia.r_feedback

    # ports: free nodes wired to a fixed one, and the TIA inputs; the Schur complement
    # onto them pays while they are the grid's edges (with zero-ohm word lines and
    # no driver every bit-line node touches an input)
    fa, fb = a >= n_free, b >= n_free
    ports = np.unique(np.concatenate([a[~fa & fb], b[fa & ~fb], end if g_tia else []]).astype(np.int64))
    schur = len(ports) <= rows + cols
    kind = np.concatenate(kinds) if kinds else np.zeros(0, np.int8)
    position = np.concatenate(positions) if positions else np.zeros((0, 2), np.int64)
    order = grid_nested_dissection(kind, position, ports if schur else ())
    step = np.arange(n_all)
    step[order] = np.arange(n_free)
    a, b, wl, bl, drv, end, ports = (step[x] for x in (a, b, wl, bl, drv, end, ports))

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
    return GridSystem(
        tile=tile, a_ff=a_ff, a_fk=a_fk, a_kk=a_kk,
        wl=wl, bl=bl, drv=drv, end=end, ports=ports if schur else None, g_tia=g_tia,
    )
