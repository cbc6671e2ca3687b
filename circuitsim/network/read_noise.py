"""Read noise of a tile's cells, carried to its outputs through the wires.

Every read (every image) sees each cell at ``G_c (1 + r ε_c)``, ``ε_c ~ N(0, 1)`` drawn anew
per cell and image, ``r`` = ``read_noise``. By the compensation theorem a change ``dG_c``
of cell ``c`` changes the output currents exactly as a current source
``dG_c · ΔV'_c`` across the cell would, ``ΔV'_c = V_wl − V_bl`` being the cell's voltage
*in the perturbed circuit*. To first order ``ΔV'_c`` is the unperturbed ``ΔV_c``, so

    dI_j = Σ_c dG_c · ΔV_c · K_jc,     ΔV_c = D_c · V,

with ``D`` (cells × inputs) the cell voltages per input volt and ``K`` (outputs × cells)
the output currents per unit current injected across each cell, both from one sparse
LU factorization of the tile's MNA matrix (``D``: one solve per input; ``K``: one adjoint
solve per output). Draws are made at the cells, per image.

Error bound (exact, from the compensation theorem): the neglected part of every draw is
``|dI_j − dI1_j| ≤ Σ_c |dG_c| · |ΔV'_c − ΔV_c| · |K_jc|``; the cell voltages change only
through the wire resistances, so it vanishes without wires and is of order ``r`` times the
tile's relative IR drop times ``|dI1|`` with them (``test_read_noise`` measures it and checks
the bound against exact re-solves). Without wire resistance (``D``, ``K`` selections) the
first order is exact and the draw is made in distribution: ``dI_j = z_j (Σ_i σ_ij² V_i²)^½``,
the same law as the sum of the cells' draws, at the cost of one matrix product.

Public API
----------
ReadNoise, sensitivities
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from ..tile.crossbar import Tile, build_circuit, input_source_names, sense_source_names
from ..tile.native import assemble

_CHUNK = 4_000_000
"""Largest number of (image, cell) draws held at once."""


def _cell_group(circuit):
    for group in circuit.group("R"):
        if group.names and group.names[0].startswith("Rcell"):
            return group
    return None


def sensitivities(tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-order sensitivities of a tile's outputs to its cells' conductances.

    Returns
    -------
    cells : numpy.ndarray
        ``(n, 2)`` row and column of every cell with ``G > 0``.
    D : numpy.ndarray
        ``(n, rows)`` cell voltage ``V_wl − V_bl`` per input volt.
    K : numpy.ndarray
        ``(cols, n)`` output current per ampere flowing through the cell (word line to
        bit line) from an extra source; ``∂I_j/∂G_c = K_jc · ΔV_c``.
    """
    circuit = build_circuit(tile)
    group = _cell_group(circuit)
    if group is None:
        return np.zeros((0, 2), int), np.zeros((0, tile.rows)), np.zeros((tile.cols, 0))
    system = assemble(circuit)
    try:
        lu = spla.splu(system.matrix.tocsc())
    except RuntimeError as exc:
        raise ConvergenceError(f"read noise: singular tile matrix ({exc})") from None
    n = system.matrix.shape[0]
    u_in = system.source_index(input_source_names(tile.rows))
    rhs = np.zeros((n, tile.rows))
    rhs[u_in, np.arange(tile.rows)] = 1.0
    volts = np.vstack([np.zeros((1, tile.rows)), lu.solve(rhs)[: system.n_voltages]])  # node 0: ground
    a, b = group.nodes[:, 0], group.nodes[:, 1]
    D = volts[a] - volts[b]
    u_out = system.source_index(sense_source_names(tile.cols))
    sel = np.zeros((n, tile.cols))
    sel[u_out, np.arange(tile.cols)] = 1.0
    adjoint = np.vstack([np.zeros((1, tile.cols)), lu.solve(sel, trans="T")[: system.n_voltages]])
    # a current J from a to b enters the KCL right-hand side as -J at a and +J at b
    K = (adjoint[b] - adjoint[a]).T
    cells = np.array([[int(x) for x in name[5:].split("_")] for name in group.names])
    return cells, D, K


class ReadNoise:
    """Per-image read noise of one tile (see the module docstring).

    Parameters
    ----------
    tile : Tile
        The realized tile (conductances at the time of inference, wires).
    relative : float
        σ of every read relative to ``G``.
    rng : numpy.random.Generator
        The tile's read-noise stream (advances with every image).
    v_read : float
        Volts of an input of 1 (``__call__`` takes normalized inputs).
    normalization : float
        Factor from differential output current (A) to the evaluator's normalized sums
        (``compensation / (v_read (g_max − g_min))``).
    """

    def __init__(self, tile: Tile, relative: float, rng: np.random.Generator, v_read: float = 1.0,
                 normalization: float = 1.0):
        self.rng, self.v_read, self.normalization = rng, v_read, normalization
        self.shape = tile.shape
        sigma = relative * tile.conductances
        self.exact = tile.r_row == 0 and tile.r_col == 0 and tile.r_driver == 0 and tile.tia is None
        if self.exact:
            self._var = sigma ** 2  # rows x cols
        else:
            cells, self.D, self.K = sensitivities(tile)
            self._sigma = sigma[cells[:, 0], cells[:, 1]]
            self._D32, self._K32 = self.D.T.astype(np.float32), self.K.T.astype(np.float32)
            self._sigma32 = self._sigma.astype(np.float32)

    def std(self, volts) -> np.ndarray:
        """First-order σ of every output current (A) for input voltages ``volts`` (N × rows)."""
        volts = np.atleast_2d(np.asarray(volts, dtype=float))
        if self.exact:
            return np.sqrt(np.square(volts) @ self._var)
        return np.sqrt(np.square((volts @ self.D.T) * self._sigma) @ np.square(self.K).T)

    def currents(self, volts) -> np.ndarray:
        """One draw per image of the output current changes (A), ``N × cols``."""
        volts = np.atleast_2d(np.asarray(volts, dtype=float))
        if self.exact:
            return self.std(volts) * self.rng.standard_normal((len(volts), self.shape[1]))
        out = np.empty((len(volts), self.shape[1]))
        step = max(1, _CHUNK // max(1, len(self._sigma)))
        for start in range(0, len(volts), step):  # single precision: a noise term, ~1e-7 relative
            dv = volts[start:start + step].astype(np.float32) @ self._D32
            draws = self.rng.standard_normal(dv.shape, dtype=np.float32)
            out[start:start + step] = (draws * dv * self._sigma32) @ self._K32
        return out

    def __call__(self, v) -> np.ndarray:
        """Noise of the normalized differential sums for normalized inputs ``v`` (N × rows)."""
        d = self.currents(self.v_read * np.asarray(v, dtype=float))
        return (d[:, 0::2] - d[:, 1::2]) * self.normalization
