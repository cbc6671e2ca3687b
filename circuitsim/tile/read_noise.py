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
:meth:`ReadNoise.law` keeps of every ``M_j`` its diagonal and the largest eigenpairs of the
rest (the voltage that other rows' inputs put across a cell through the shared lines, nearly
of low rank): ``RANK`` for a tile, whose summing lines end at a virtual ground; as many as
change no output's variance by more than ``TOLERANCE`` for a layer circuit
(:meth:`ReadNoise.of_layer`), whose summing lines end in the difference amplifiers' input
resistors, so that every input moves the whole line (a few directions per line); cells
outside an output's own columns (which reach it only through the wires) enter with their own
row's voltage only. The evaluator draws every
output from that law directly, one normal per output and image instead of one per cell
(:mod:`.noise_law`). :meth:`ReadNoise.std_bound` bounds the σ that is drawn against the
full first-order σ; the small covariance between different outputs is left out (outputs of
different tiles are independent exactly). Without wire resistance ``K`` and ``D`` are
selections and the law is exact: ``M_j = diag(σ_·j²)``.

Public API
----------
ReadNoise, sensitivities, layer_sensitivities, RANK
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from .crossbar import Tile, build_circuit, input_source_names, sense_source_names
from .layer_circuit import LayerCircuit, build_layer_circuit, combine_readings, output_probes
from .native import assemble
from .native_tile import _blas_threads
from .noise_law import _PROBES, TOLERANCE, NoiseLaw

RANK = 1
"""Eigenpairs kept of every output's cross-row quadratic form of a tile (see the module docstring)."""


def _solve_sensitivities(circuit, prefixes: tuple[str, ...], inputs: list[str], outputs: list[str],
                         sign: float = 1.0):
    """Cells, ``D``, ``K`` and word-line coefficients of the cells (resistors named
    ``<prefix><row>_<col>``, word-line node first) of a linear circuit, for input sources
    ``inputs`` and outputs ``sign`` times the branch currents of the sources ``outputs``
    (one LU factorization of its MNA matrix).

    Returns ``(names, cells (n × 2), D (n × inputs), K (outputs × n), word (n))``, ``word_c``
    the voltage of the cell's word-line node per volt on its own row's input.
    """
    def prefix_of(name: str) -> str | None:
        return next((p for p in prefixes if name.startswith(p) and name[len(p):len(p) + 1].isdigit()), None)

    groups = [g for g in circuit.group("R") if g.names and prefix_of(g.names[0])]
    if not groups:
        return [], np.zeros((0, 2), int), np.zeros((0, len(inputs))), np.zeros((len(outputs), 0)), np.zeros(0)
    system = assemble(circuit)
    try:
        lu = spla.splu(system.matrix.tocsc())
    except RuntimeError as exc:
        raise ConvergenceError(f"read noise: singular circuit matrix ({exc})") from None
    n = system.matrix.shape[0]
    rhs = np.zeros((n, len(inputs)))
    rhs[system.source_index(inputs), np.arange(len(inputs))] = 1.0
    volts = np.vstack([np.zeros((1, len(inputs))), lu.solve(rhs)[: system.n_voltages]])  # node 0: ground
    sel = np.zeros((n, len(outputs)))
    sel[system.source_index(outputs), np.arange(len(outputs))] = sign
    adjoint = np.vstack([np.zeros((1, len(outputs))), lu.solve(sel, trans="T")[: system.n_voltages]])
    names = [name for g in groups for name in g.names]
    cells = np.array([[int(x) for x in name[len(prefix_of(name) or ""):].split("_")] for name in names],
                     dtype=int).reshape(-1, 2)
    nodes = np.concatenate([g.nodes for g in groups])
    a, b = nodes[:, 0], nodes[:, 1]
    # a current J from a to b enters the KCL right-hand side as -J at a and +J at b
    return names, cells, volts[a] - volts[b], (adjoint[b] - adjoint[a]).T, volts[a, cells[:, 0]]


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
    _, cells, D, K, _ = _solve_sensitivities(build_circuit(tile), ("Rcell",), input_source_names(tile.rows),
                                             sense_source_names(tile.cols))
    return cells, D, K


def layer_sensitivities(layer: LayerCircuit) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-order sensitivities of a layer circuit's outputs (volts of a difference
    amplifier's readout, amperes of a current readout) to its cells' conductances.

    Returns
    -------
    cells : numpy.ndarray
        ``(n, 2)`` row and output of every cell with ``G > 0`` (``G+`` cells first).
    conductances : numpy.ndarray
        ``(n,)`` their conductances, siemens.
    D : numpy.ndarray
        ``(n, n_rows)`` cell voltage per input-line volt.
    K : numpy.ndarray
        ``(n_out, n)`` output (volts, or amperes for a current readout) per ampere through the cell.
    word : numpy.ndarray
        ``(n,)`` voltage of each cell's word-line node per volt on its own input line.
    """
    sources, sign = output_probes(layer)
    names, cells, D, K, word = _solve_sensitivities(build_layer_circuit(layer, probes=True), ("Rcp", "Rcn"),
                                                    layer.input_sources(), sources, sign)
    g = np.where(np.array([name.startswith("Rcp") for name in names], dtype=bool),
                 layer.g_pos[cells[:, 0], cells[:, 1]], layer.g_neg[cells[:, 0], cells[:, 1]])
    return cells, g, D, combine_readings(K.T, layer).T, word


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
        self._layer = False  # a tile: single-column outputs, summing lines at a virtual ground
        self.exact = tile.r_row == 0 and tile.r_col == 0 and tile.r_driver == 0 and tile.tia is None
        if not self.exact:
            cells, self.D, self.K = sensitivities(tile)
            self._set_cells(cells, relative * tile.conductances[cells[:, 0], cells[:, 1]])

    @classmethod
    def of_layer(cls, layer: LayerCircuit, relative: float) -> "ReadNoise":
        """The read noise of a layer circuit's outputs (:func:`layer_sensitivities`): every
        output's own cells are its ``G+`` and ``G-`` cells; :meth:`law` takes
        ``differential=False`` (the outputs are differential already)."""
        noise = cls.__new__(cls)
        noise.rows, noise.cols = layer.n_rows, layer.n_out
        noise._layer, noise.exact = True, False
        cells, g, noise.D, noise.K, word = layer_sensitivities(layer)
        noise._set_cells(cells, relative * g)
        noise._word = word
        return noise

    def _set_cells(self, cells: np.ndarray, sigma: np.ndarray) -> None:
        """Cells' rows, the output columns they belong to, their σ and own-row voltage."""
        self._rows, self._cols = cells[:, 0], cells[:, 1]
        self._sigma = sigma
        self._own = self.D[np.arange(len(cells)), self._rows]

    def _outputs(self, differential: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output sensitivities (outs × cells) and each output's own columns."""
        if differential:
            if self._layer:
                raise ValueError("a layer circuit's outputs are differential already: use differential=False")
            return self.K[0::2] - self.K[1::2], [np.array([2 * j, 2 * j + 1]) for j in range(self.cols // 2)]
        return self.K, [np.array([j]) for j in range(self.cols)]

    def law(self, differential: bool = False) -> NoiseLaw:
        """The drawn law of the output currents (A per V), or of the pairs' differences."""
        if self.exact:
            var = np.square(self._sigma_matrix)
            diagonal = var[:, 0::2] + var[:, 1::2] if differential else var
            return NoiseLaw(diagonal)
        k_out, own_columns = self._outputs(differential)
        weight = np.square(k_out) * np.square(self._sigma)  # outs × cells
        outs = len(k_out)
        diagonal, residual = np.zeros((self.rows, outs)), np.zeros(outs)
        with _blas_threads(self.rows):  # one small eigendecomposition per output: one BLAS thread
            spectra = self._spectra(own_columns, weight, diagonal, residual)
        rank = self._enough_rank(diagonal, spectra) if self._layer else min(RANK, self.rows - 1)
        directions, weights = np.zeros((rank, self.rows, outs)), np.zeros((rank, outs))
        for j, (lam, vectors) in enumerate(spectra):
            kept = lam[:rank]
            directions[:, :, j], weights[:, j] = vectors[:, :rank].T * np.sqrt(np.abs(kept))[:, None], np.sign(kept)
            residual[j] += abs(lam[rank]) if len(lam) > rank else 0.0
        own = ((slice(0, self.rows), directions, weights),) if rank > 0 else ()
        return NoiseLaw(diagonal, own, residual)

    def _spectra(self, own_columns: list[np.ndarray], weight: np.ndarray, diagonal: np.ndarray,
                 residual: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every output's cross-row quadratic form's eigenpairs, largest ``|λ|`` first; adds the
        output's diagonal part to ``diagonal`` (and, for a layer circuit, its far cells to ``residual``)."""
        spectra = []
        for j, columns in enumerate(own_columns):
            near = np.isin(self._cols, columns)
            form = (self.D[near].T * weight[j, near]) @ self.D[near]
            if self._layer:  # far cells left out (bounded); the near cells' word-line coefficients on the diagonal
                residual[j] = float(weight[j, ~near] @ np.sum(np.square(self.D[~near]), axis=1))
                split = np.zeros(self.rows)
                np.add.at(split, self._rows[near], weight[j, near] * np.square(self._word[near]))
            else:  # far cells with their own row's voltage only
                np.add.at(diagonal[:, j], self._rows, weight[j] * np.square(self._own) * ~near)
                split = np.diag(form)
            diagonal[:, j] += split
            lam, vectors = np.linalg.eigh(form - np.diag(split))
            order = np.argsort(-np.abs(lam))
            spectra.append((lam[order], vectors[:, order]))
        return spectra

    def _enough_rank(self, diagonal: np.ndarray, spectra) -> int:
        """The fewest eigenpairs with which no output's σ changes by more than ``TOLERANCE``
        on probe inputs (every row at 1, and ``_PROBES`` uniform in [0, 1])."""
        probes = np.vstack([np.ones(self.rows), np.random.default_rng(0).uniform(0.0, 1.0, (_PROBES, self.rows))])
        squares, rank = np.square(probes), 0
        for j, (lam, vectors) in enumerate(spectra):
            terms = lam * np.square(probes @ vectors)  # probes × eigenpairs, largest |λ| first
            partial = (squares @ diagonal[:, j])[:, None] + np.cumsum(np.hstack([np.zeros((len(probes), 1)), terms]), axis=1)
            std = np.sqrt(np.maximum(partial, 0.0))
            within = np.all(np.abs(std - std[:, -1:]) <= TOLERANCE * std[:, -1:], axis=0)
            rank = max(rank, int(np.argmax(within)))
        return rank

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
            weight[j, np.isin(self._cols, columns) | self._layer] = 0.0  # a layer's far cells: in residual
        gap = law.residual * np.sum(np.square(volts), axis=1, keepdims=True) + (cross * (2 * own + cross)) @ weight.T
        drawn = np.sqrt(law.variance(volts))  # |√a − √b| = |a − b| / (√a + √b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.minimum(np.sqrt(gap), np.where(drawn > 0, gap / drawn, np.inf))
