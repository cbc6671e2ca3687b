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

**How the evaluator draws.** The first-order ``dI`` of one image is a sum of independent
Gaussians, hence Gaussian, with ``var_j(V) = V·M_j·V``, ``M_j = Σ_c K_jc² σ_c² D_c D_cᵀ``.
A :class:`NoiseLaw` keeps of every ``M_j`` its diagonal and the ``RANK`` largest
eigenpairs of the rest (the voltage that other rows' inputs put across a cell through the
shared lines, nearly of low rank), and draws every output from that law directly: one
normal per output and image instead of one per cell, at the cost of one matrix product
for the diagonal and, per row of tiles, ``RANK`` products of the tiles' own inputs. Cells
outside an output's own columns (which reach it only through the wires) enter with their
own row's voltage only. :meth:`ReadNoise.std_bound` bounds the σ that is drawn against the
full first-order σ; the small covariance between different outputs is left out (outputs of
different tiles are independent exactly). Without wire resistance ``K`` and ``D`` are
selections and the law is exact: ``M_j = diag(σ_·j²)``. As the variances of independent
sums add, the evaluator draws a whole layer's noise at once from the tiles' laws side by
side.

Public API
----------
NoiseLaw, ReadNoise, sensitivities, standard_normal32, RANK
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from ..tile.crossbar import Tile, build_circuit, input_source_names, sense_source_names
from ..tile.native import assemble

RANK = 1
"""Eigenpairs kept of every output's cross-row quadratic form (see the module docstring)."""

_IMAGES_PER_PASS = 512
"""Images whose noise is drawn together."""


def standard_normal32(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal draws in single precision by the Box–Muller transform.

    The same law as ``rng.standard_normal(shape, dtype=np.float32)`` (pairs of uniforms give
    pairs of independent normals; float32 uniforms cap ``|z|`` at 5.8), at less than half its
    cost with numpy 2: the evaluator draws one per layer output and image, and that draw
    dominated the cost of read noise (``bench/bench_variation.py``).
    """
    n = int(np.prod(shape))
    half = (n + 1) // 2
    u = rng.random((2, half), dtype=np.float32)
    radius, angle = u[0], u[1]  # computed in place
    np.negative(radius, out=radius)
    np.log1p(radius, out=radius)  # log(1 − u), 1 − u in (0, 1]: no log(0)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle *= np.float32(2 * np.pi)
    out = np.empty(2 * half, dtype=np.float32)
    np.cos(angle, out=out[:half])
    np.sin(angle, out=out[half:])
    out[:half] *= radius
    out[half:] *= radius
    return out[:n].reshape(shape)


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


@dataclass(frozen=True, eq=False)
class NoiseLaw:
    """Gaussian law of the read noise of some outputs, per image.

    ``var_j(v) = Σ_i v_i² diagonal_ij + Σ_(rows, U, s) Σ_r s_rj (v[rows] · U_r[:, j])²``: the
    diagonal, and per block of rows (one per tile row of a layer) the kept eigenpairs of
    the tiles in that row, side by side (``U = u √|λ|``, ``s = sign λ``).
    """

    diagonal: np.ndarray
    """``rows × outs``."""
    terms: tuple[tuple[slice, np.ndarray, np.ndarray], ...]
    """Per block of rows: ``(rows, directions rank × len(rows) × outs, signs rank × outs)``."""
    residual: np.ndarray
    """``outs``: the eigenvalue magnitudes left out, summed over blocks (0: nothing)."""

    def scaled(self, factor: float, dtype=np.float64) -> "NoiseLaw":
        """The law of the outputs times ``sqrt(factor)`` (variances times ``factor``)."""
        terms = tuple((rows, (u * np.sqrt(factor)).astype(dtype), sign.astype(dtype)) for rows, u, sign in self.terms)
        return NoiseLaw((self.diagonal * factor).astype(dtype), terms, self.residual * factor)

    def variance(self, v, bias: bool = False) -> np.ndarray:
        """Variance of every output (``N × outs``) for inputs ``v`` (``N × rows``; with
        ``bias``, ``v`` lacks the last row's input, which is 1), in the law's dtype."""
        return self._by_passes(v, bias, lambda var: var)

    def draw(self, v, rng: np.random.Generator, bias: bool = False) -> np.ndarray:
        """One draw per image of the outputs' noise (``N × outs``)."""
        return self._by_passes(v, bias, lambda var: np.sqrt(var, out=var) * standard_normal32(rng, var.shape))

    def _by_passes(self, v, bias: bool, finish) -> np.ndarray:
        """``finish(variance)`` over passes of ``_IMAGES_PER_PASS`` images (their intermediate
        arrays stay in the CPU's caches)."""
        v = np.atleast_2d(v)
        out = np.empty((len(v), self.diagonal.shape[1]), self.diagonal.dtype)
        for start in range(0, len(v), _IMAGES_PER_PASS):
            out[start:start + _IMAGES_PER_PASS] = finish(self._variance(v[start:start + _IMAGES_PER_PASS], bias))
        return out

    def _variance(self, v: np.ndarray, bias: bool) -> np.ndarray:
        n = v.shape[1]
        v = v.astype(self.diagonal.dtype)
        var = np.square(v, out=v if not self.terms else None) @ self.diagonal[:n]
        if bias:
            var += self.diagonal[n]
        if not self.terms:
            return var
        for rows, directions, signs in self.terms:
            block = v[:, rows.start:min(rows.stop, n)]
            for u, sign in zip(directions, signs):
                along = block @ u[: block.shape[1]]
                if rows.stop > n:  # the bias row
                    along += u[-1]
                along *= along
                if np.all(sign <= 0):  # the usual case: the shared lines lower the cells' voltages
                    var -= along
                else:
                    var += along * sign
        return np.maximum(var, 0.0, out=var)

    @staticmethod
    def side_by_side(blocks, shape) -> "NoiseLaw":
        """One law for single-tile laws placed at ``(rows, outs)`` slices of a ``shape`` layer."""
        dtype = blocks[0][2].diagonal.dtype
        diagonal, residual = np.zeros(shape, dtype), np.zeros(shape[1])
        terms: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for rows, outs, law in blocks:
            diagonal[rows, outs] = law.diagonal
            residual[outs] += law.residual
            for _, u, sign in law.terms:
                key = (rows.start, rows.stop)
                if key not in terms:
                    terms[key] = (np.zeros((len(u), rows.stop - rows.start, shape[1]), dtype),
                                  np.zeros((len(u), shape[1]), dtype))
                terms[key][0][:, :, outs], terms[key][1][:, outs] = u, sign
        return NoiseLaw(diagonal, tuple((slice(*key), u, sign) for key, (u, sign) in terms.items()), residual)


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
            return NoiseLaw(diagonal, (), np.zeros(diagonal.shape[1]))
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
        terms = ((slice(0, self.rows), directions, weights),) if rank > 0 else ()
        return NoiseLaw(diagonal, terms, residual)

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
