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

HORIZONTAL, VERTICAL = 0, 1
"""Kinds of free node: on a horizontal wire (drivers, word lines) or a vertical one
(bit lines, TIA inputs); a column of horizontal nodes or a row of vertical ones
separates the grid (used by :mod:`circuitsim.tile.ordering`)."""


@dataclass(frozen=True, eq=False)
class GridSystem:
    """Reduced DC system of a tile: ``A_ff x_f = -A_fk v_k``.

    Node numbers: ``0 .. n_free-1`` free nodes, then the fixed nodes (``rows``
    inputs, then ``cols`` bit-line ends without a TIA), then ground (``-1``).
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
    kind: np.ndarray
    """``HORIZONTAL`` or ``VERTICAL`` per free node."""
    position: np.ndarray
    """Grid position ``(row, col)`` per free node, shape ``(n_free, 2)`` (drivers at
    column -1, TIA inputs at row ``rows``)."""
    g_tia: float
    """TIA input conductance ``(1 + A) / R_f`` (0 without a TIA), siemens."""

    @property
    def n_free(self) -> int:
        """Number of free nodes."""
        return self.a_ff.shape[0]

    @property
    def ports(self) -> np.ndarray:
        """Free nodes coupled to a fixed node or carrying an output (sorted)."""
        coupled = np.flatnonzero(np.diff(self.a_fk.tocsr().indptr))
        if self.g_tia:
            coupled = np.union1d(coupled, self.end)
        return coupled

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


def _laplacian(a, b, g, n: int) -> sp.csr_matrix:
    """Conductance matrix of two-terminal elements between nodes ``a`` and ``b``
    (``-1`` is ground), shape ``(n, n)``."""
    a, b, g = (np.concatenate(x) for x in (a, b, g))
    keep_a, keep_b = a >= 0, b >= 0
    both = keep_a & keep_b
    r = np.concatenate([a[keep_a], b[keep_b], a[both], b[both]])
    c = np.concatenate([a[keep_a], b[keep_b], b[both], a[both]])
    v = np.concatenate([g[keep_a], g[keep_b], -g[both], -g[both]])
    return sp.csr_matrix((v, (r, c)), shape=(n, n))


def assemble_tile(tile: Tile) -> GridSystem:
    """Assemble the reduced system of a tile (every option of :class:`Tile`).

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
    g_tia = 0.0
    if tile.tia is not None:
        g_tia = (1.0 + tile.tia.gain) / tile.tia.r_feedback
        wire(end, -1, g_tia)
    full = _laplacian(a, b, g, n_all)
    free_rows, fixed_rows = full[:n_free], full[n_free:]
    kind = np.concatenate(kinds) if kinds else np.zeros(0, np.int8)
    position = np.concatenate(positions) if positions else np.zeros((0, 2), np.int64)
    return GridSystem(
        tile=tile,
        a_ff=free_rows[:, :n_free].tocsc(),
        a_fk=free_rows[:, n_free:].tocsc(),
        a_kk=fixed_rows[:, n_free:].tocsr(),
        wl=wl, bl=bl, drv=drv, end=end, kind=kind, position=position, g_tia=g_tia,
    )
