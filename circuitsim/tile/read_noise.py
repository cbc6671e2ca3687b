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
solve per output). The neglected part of every draw is bounded exactly by
``|dI_j − dI1_j| ≤ Σ_c |dG_c| · |ΔV'_c − ΔV_c| · |K_jc|``: zero without wire resistance,
of order ``r`` times the tile's relative IR drop times ``|dI1|`` with it.

**The law that is drawn.** The first-order ``dI`` of one image is a sum of independent
Gaussians, hence Gaussian, with ``var_j(V) = V·M_j·V``, ``M_j = Σ_c K_jc² σ_c² D_c D_cᵀ``.
:meth:`ReadNoise.law` keeps of every ``M_j`` its diagonal and the ``RANK`` largest
eigenpairs of the rest (the voltage that other rows' inputs put across a cell through the
shared lines, nearly of low rank); cells outside an output's own columns (which reach it
only through the wires) enter with their own row's voltage only. The evaluator draws every
output from that law directly, one normal per output and image instead of one per cell
(:mod:`.noise_law`). :meth:`ReadNoise.std_bound` bounds the σ that is drawn against the
full first-order σ; the small covariance between different outputs is left out (outputs of
different tiles are independent exactly). Without wire resistance ``K`` and ``D`` are
selections and the law is exact: ``M_j = diag(σ_·j²)``.

Public API
----------
ReadNoise, sensitivities, RANK
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from .crossbar import Tile, build_circuit, input_source_names, sense_source_names
from .native import assemble
from .noise_law import NoiseLaw

RANK = 1
"""Eigenpairs kept of every output's cross-row quadratic form (see the module docstring)."""

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
    """First-order read noise of one tile (see the module docstring).

    Parameters
    ----------
    tile : Tile
        The realized tile (conductances at the time of inference, wires).
    relative : float
        σ of every read relative to ``G``.

    Attributes
    ----------
    exact : bool
        True when the laws are exact (no wire resistance, ideal readout).
    """

    def __init__(self, tile: Tile, relative: float):
        self.rows, self.cols = tile.shape
        self._sigma_matrix = relative * tile.conductances
        self.exact = tile.r_row == 0 and tile.r_col == 0 and tile.r_driver == 0 and tile.tia is None
        if not self.exact:
            cells, self.D, self.K = sensitivities(tile)
            self._rows, self._cols = cells[:, 0], cells[:, 1]
            self._sigma = self._sigma_matrix[self._rows, self._cols]
            self._own = self.D[np.arange(len(cells)), self._rows]

    def _outputs(self, differential: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output sensitivities (outs × cells) and each output's own columns."""
        if differential:
            return self.K[0::2] - self.K[1::2], [np.array([2 * j, 2 * j + 1]) for j in range(self.cols // 2)]
        return self.K, [np.array([j]) for j in range(self.cols)]

    def law(self, differential: bool = False) -> NoiseLaw:
        """The drawn law of the output currents (A per V), or of the pairs' differences."""
        var = np.square(self._sigma_matrix)
        if self.exact:
            diagonal = var[:, 0::2] + var[:, 1::2] if differential else var
            return NoiseLaw(diagonal)
        k_out, own_columns = self._outputs(differential)
        weight = np.square(k_out) * np.square(self._sigma)  # outs × cells
        outs, rank = len(k_out), min(RANK, self.rows - 1)
        diagonal = np.zeros((self.rows, outs))
        directions, weights, residual = np.zeros((rank, self.rows, outs)), np.zeros((rank, outs)), np.zeros(outs)
        for j, columns in enumerate(own_columns):
            near = np.isin(self._cols, columns)
            far = weight[j] * np.square(self._own) * ~near  # elsewhere: the own row's voltage only
            np.add.at(diagonal[:, j], self._rows, far)
            form = (self.D[near].T * weight[j, near]) @ self.D[near]
            diagonal[:, j] += np.diag(form)
            lam, vectors = np.linalg.eigh(form - np.diag(np.diag(form)))
            order = np.argsort(-np.abs(lam))
            kept = lam[order[:rank]]
            directions[:, :, j], weights[:, j] = vectors[:, order[:rank]].T * np.sqrt(np.abs(kept)), np.sign(kept)
            residual[j] = abs(lam[order[rank]]) if len(order) > rank else 0.0
        own = ((slice(0, self.rows), directions, weights),) if rank > 0 else ()
        return NoiseLaw(diagonal, own, residual)

    def first_order_std(self, volts, differential: bool = False) -> np.ndarray:
        """σ of the full first-order law for input voltages ``volts`` (N × rows), A."""
        volts = np.atleast_2d(np.asarray(volts, dtype=float))
        if self.exact:
            return np.sqrt(self.law(differential).variance(volts))
        k_out, _ = self._outputs(differential)
        return np.sqrt(np.square((volts @ self.D.T) * self._sigma) @ np.square(k_out).T)

    def std_bound(self, volts, law: NoiseLaw, differential: bool = False) -> np.ndarray:
        """Bound on ``|first_order_std − law.std|`` of every output (A) for ``volts`` (N × rows).

        With ``E = residual_j ‖V‖² + Σ_{c far} w_jc (|e_c|·|V|) (2 |d_c V_i| + |e_c|·|V|)``
        bounding the variance left out (the eigenvalues not kept, and the cross-row voltage
        of the cells outside the output's own columns; ``e_c``: ``|D_c|`` without its own
        row), ``|√a − √b| ≤ min(√E, E / √b)``, ``b`` the drawn variance.
        """
        volts = np.atleast_2d(np.asarray(volts, dtype=float))
        if self.exact:
            return np.zeros((len(volts), law.diagonal.shape[1]))
        k_out, own_columns = self._outputs(differential)
        others = np.abs(self.D)
        others[np.arange(len(self._rows)), self._rows] = 0.0
        cross = np.abs(volts) @ others.T  # N × cells
        own = np.abs(volts[:, self._rows] * self._own)
        weight = np.square(k_out) * np.square(self._sigma)
        for j, columns in enumerate(own_columns):
            weight[j, np.isin(self._cols, columns)] = 0.0
        gap = law.residual * np.sum(np.square(volts), axis=1, keepdims=True) + (cross * (2 * own + cross)) @ weight.T
        drawn = np.sqrt(law.variance(volts))  # |√a − √b| = |a − b| / (√a + √b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.minimum(np.sqrt(gap), np.where(drawn > 0, gap / drawn, np.inf))
