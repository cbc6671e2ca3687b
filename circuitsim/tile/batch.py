"""Many tiles characterized together: one assembly, one symbolic analysis, one factorization.

Tiles that share a :class:`~circuitsim.tile.assembly.GridPattern` (shape, which
resistances are non-zero, TIA or not, which cells are present) have matrices of one
sparsity pattern. :func:`transfer_many` groups tiles by pattern, cuts each group into
chunks of at most :data:`BATCH_NODES` free nodes and, per chunk,

- computes the matrix entries of every tile at once (one sparse product of the
  pattern's element-to-entry map with the tiles' element conductances);
- factorizes the block-diagonal matrix of the chunk's tiles with CHOLMOD in one call,
  reusing the symbolic analysis (and the memory of the factor) of that pattern and chunk
  size from earlier chunks and calls (other layers' tiles of the same shape, other device
  realizations);
- reads each tile's trailing ``L22``, ``D22`` (the Schur complement onto its ports is
  ``L22 D22 L22^T``) from the factor in place, and from them ``T`` and ``Y`` with one
  triangular solve per tile (``W = L22^-1 [A_pi, C]``, ``T = W_C^T D22^-1 W_pi``);
- checks the chunk as :class:`~circuitsim.tile.native_tile.TileSolver` checks one tile:
  one probe solve (every input at 1 V) of the whole block-diagonal system must meet the
  residual tolerance and reproduce every tile's ``T``.

Tiles without a Schur complement onto ports (zero-ohm word lines and no driver),
large tiles (more than :data:`LARGE_NODES` free nodes) and SuperLU go one by one
through :class:`~circuitsim.tile.native_tile.TileSolver`: same results, no batching.

Public API
----------
BATCH_NODES, HEAP_KEEP_BYTES, LARGE_NODES, SIMPLICIAL_NODES, transfer_many
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import dtrsm

from ..errors import ConvergenceError
from .assembly import GridPattern, element_conductances, grid_pattern, pattern_key
from .checks import check_residual, free_nodes
from .crossbar import Tile
from .factor import SPDFactor, analyze, resolve_backend
from .native_tile import TileSolver, _blas_threads
from .ordering import LEAF, SMALL_LEAF

BATCH_NODES = 32_768
"""Free nodes of one block-diagonal system. Small chunks of one size reuse one cached analysis
and its factor's memory, which stays in cache: the partition study's 200 tiles in one system of
up to 400 000 nodes touched 58 MB of fresh memory (up to a quarter of their CPU time in page
faults on this virtual machine), in chunks of 32 768 nodes 4 MB, and took 20 % less time;
chunks of 16 000 were as fast for them and ~10 % slower for 64² tiles (one tile a chunk)."""

LARGE_NODES = 100_000
"""Tiles with more free nodes go one by one through :class:`~circuitsim.tile.native_tile.TileSolver`."""

SIMPLICIAL_NODES = 50_000
"""Tiles with at most this many free nodes are factorized simplicial (``L D L^T``): for
small tiles CHOLMOD's supernodal method loses to it (64²: 4.9 against 10.0 CPU-ms per
tile, 128²: 35 against 47, one OpenBLAS thread)."""

_CACHED = 16
"""Patterns and symbolic analyses kept between calls (least recently used dropped)."""

_patterns: OrderedDict = OrderedDict()
_analyses: OrderedDict = OrderedDict()
_lock = threading.RLock()
"""A cached analysis holds its last numeric factor: one group at a time uses the caches
(threads of one process, e.g. a threaded Dask worker, wait for each other)."""


@dataclass(frozen=True, eq=False)
class _Template:
    """A pattern with the maps from element conductances to matrix entries."""

    pattern: GridPattern
    entries: sp.csr_matrix
    """``A_ff``'s CSC data (one tile) = ``entries @ g``, shape ``(nnz, elements)``."""
    indptr: np.ndarray
    indices: np.ndarray
    tia_entries: np.ndarray
    """Positions in the CSC data of the TIA input nodes' diagonal entries."""
    fixed_diag: sp.csr_matrix
    """Fixed nodes' diagonal of ``A_kk`` = ``fixed_diag @ g``."""
    port_rows: np.ndarray
    """Per element between a port and a fixed node: the port's position among the ports."""
    port_cols: np.ndarray
    """… and the fixed node's index."""
    port_elements: np.ndarray
    """… and the element."""
    kk: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Elements between two fixed nodes: ``(first, second, element)``."""


def _cached(store: OrderedDict, key, make):
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = store[key] = make()
    while len(store) > _CACHED:
        store.popitem(last=False)
    return value


def _template(tile: Tile) -> _Template:
    small = free_nodes(tile.rows, tile.cols, tile.r_row, tile.r_col, tile.tia is not None) <= SIMPLICIAL_NODES
    p = grid_pattern(tile, SMALL_LEAF if small else LEAF)
    a, b, n_free, n_all = p.a, p.b, p.n_free, p.n_all
    e = np.arange(len(a))
    fa, fb = a >= n_free, b >= n_free
    both_free, both_fixed = ~fa & ~fb, fa & fb
    # A_ff entries as COO rows of a linear map of g: off-diagonal -g, diagonal the sum of g
    rows = np.concatenate([a[both_free], b[both_free], a[~fa], b[~fb]])
    cols = np.concatenate([b[both_free], a[both_free], a[~fa], b[~fb]])
    elem = np.concatenate([e[both_free], e[both_free], e[~fa], e[~fb]])
    sign = np.concatenate([-np.ones(2 * both_free.sum()), np.ones((~fa).sum() + (~fb).sum())])
    # the CSC position of each (row, col): sort by column, then row; duplicates add up
    key = cols * n_free + rows
    unique, position = np.unique(key, return_inverse=True)
    entries = sp.csr_matrix((sign, (position, elem)), shape=(len(unique), len(a)))
    indices = unique % n_free
    indptr = np.searchsorted(unique // n_free, np.arange(n_free + 1))
    diag_key = np.searchsorted(unique, p.end * n_free + p.end) if p.options[3] else np.zeros(0, np.int64)
    # fixed nodes' diagonal, their couplings to the ports, and fixed-fixed elements
    fixed = np.concatenate([a[fa], b[fb]]) - n_free
    fixed_diag = sp.csr_matrix((np.ones(len(fixed)), (fixed, np.concatenate([e[fa], e[fb]]))),
                               shape=(n_all - n_free, len(a)))
    mixed = fa ^ fb
    free_end, fixed_end = np.where(fa[mixed], b[mixed], a[mixed]), np.where(fa[mixed], a[mixed], b[mixed])
    first_port = n_free - (0 if p.ports is None else len(p.ports))
    return _Template(p, entries, indptr.astype(np.int64), indices.astype(np.int64), diag_key,
                     fixed_diag, free_end - first_port, fixed_end - n_free, e[mixed],
                     (a[both_fixed] - n_free, b[both_fixed] - n_free, e[both_fixed]))


HEAP_KEEP_BYTES = 64 << 20
"""Freed C-heap memory glibc keeps for reuse once tiles are batched (see :func:`_keep_heap`)."""

_heap_kept = False


def _keep_heap() -> None:
    """Let glibc keep freed memory for reuse (``mallopt``), once per process, unless the
    environment sets its own ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_``.

    A chunk allocates and frees a few megabytes of arrays (the matrix entries, the probe
    check). By default glibc returns the top of its heap to the system after each chunk and
    the next chunk faults the same pages in again: about 700 page faults per chunk of four
    64² tiles, ~0.4 ms per tile. Arrays of up to 4 MB are then taken from the heap, and up to
    :data:`HEAP_KEEP_BYTES` of freed memory is kept; larger arrays are mapped and unmapped as
    before. A no-op where the C library has no ``mallopt``."""
    global _heap_kept
    if _heap_kept:
        return
    _heap_kept = True
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 4 << 20)
    mallopt(m_trim_threshold, HEAP_KEEP_BYTES)


def transfer_many(tiles: Sequence[Tile], backend: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(T, Y)`` of every tile, as :meth:`TileSolver.transfer` gives them, tiles of one
    pattern characterized together.

    Parameters
    ----------
    tiles : sequence of Tile
        Any tiles (capacitances are open at DC).
    backend : {"cholmod", "superlu"}, optional
        Factorization backend; batching needs CHOLMOD (SuperLU goes tile by tile).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        Per tile, in the order given: ``T`` (cols × rows, siemens) and the input
        admittance ``Y`` (rows × rows, siemens).

    Raises
    ------
    ConvergenceError
        A group's probe solve misses the residual tolerance or disagrees with its ``T``.
    """
    backend = resolve_backend(backend)
    out: list = [None] * len(tiles)
    groups: dict = {}
    for k, tile in enumerate(tiles):
        groups.setdefault(pattern_key(tile), []).append(k)
    for key, members in groups.items():
        with _lock:
            template = _cached(_patterns, key, lambda: _template(tiles[members[0]]))
        p = template.pattern
        if backend != "cholmod" or p.ports is None or p.n_free == 0 or p.n_free > LARGE_NODES:
            for k in members:
                out[k] = TileSolver(tiles[k], backend=backend).transfer()
            continue
        _keep_heap()
        size = max(1, BATCH_NODES // p.n_free)
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            for k, result in zip(chunk, _transfer_group(template, key, [tiles[k] for k in chunk])):
                out[k] = result
    return out


def _transfer_group(t: _Template, key, tiles: list[Tile]):
    """``(T, Y)`` of tiles sharing ``t``'s pattern: one block-diagonal system, one factor."""
    count, n = len(tiles), t.pattern.n_free
    g, g_tia = element_conductances(t.pattern, tiles)
    data = t.entries @ g.T  # (nnz, count)
    data[t.tia_entries] += g_tia
    nnz = len(t.indices)
    big = sp.csc_matrix((data.T.ravel(), (t.indices[None, :] + n * np.arange(count)[:, None]).ravel(),
                         np.append((t.indptr[:-1][None, :] + nnz * np.arange(count)[:, None]).ravel(), nnz * count)),
                        shape=(n * count, n * count))
    with _lock, _blas_threads(n):  # one BLAS thread: many small independent blocks
        return _solve_group(t, key, tiles, big, g, g_tia)


def _solve_group(t: _Template, key, tiles, big, g, g_tia):
    p, count = t.pattern, len(tiles)
    n, m, rows = p.n_free, len(p.ports), p.rows
    analysis = _cached(_analyses, (key, count), lambda: analyze(big, supernodal=n > SIMPLICIAL_NODES))
    factor = SPDFactor(big, None, "cholmod", analysis=analysis)
    lower, d = factor.trailing_factors(n * np.arange(1, count), m)  # Schur = lower diag(d) lower^T
    # the ports' couplings to fixed nodes and the fixed nodes' own matrix, dense per tile
    n_fixed = p.n_all - n
    a_pk = np.zeros((count, m, n_fixed))
    a_pk[:, t.port_rows, t.port_cols] = -g[:, t.port_elements]
    a_kk = np.zeros((count, n_fixed, n_fixed))
    a_kk[:, np.arange(n_fixed), np.arange(n_fixed)] = (t.fixed_diag @ g.T).T
    first, second, elements = t.kk
    a_kk[:, first, second] -= g[:, elements]
    a_kk[:, second, first] -= g[:, elements]
    # T = c^T Schur^-1 a_pi (+ the inputs' direct paths), Y = a_kk - a_pi^T Schur^-1 a_pi: one
    # triangular solve per tile, w = lower^-1 [a_pi, c], then w_c^T diag(1/d) w_pi
    if p.options[3]:  # TIA: I_j = g_tia v(end_j)
        c = np.zeros((count, m, p.cols))
        c[:, p.end - (n - m), np.arange(p.cols)] = -g_tia[:, None]
        direct = 0.0
    else:  # grounded bit-line ends: I = -(A_kf x + A_kk v) on their rows
        out = p.end - n
        c = a_pk[:, :, out]
        direct = -a_kk[:, out, :rows]
    rhs = np.concatenate([a_pk[:, :, :rows], c], 2)
    # lower^-1 rhs; lower[k].T is a Fortran-ordered upper^T: LAPACK reads it without a copy
    w = np.stack([dtrsm(1.0, lower[k].T, rhs[k], lower=0, trans_a=1) for k in range(count)])
    w_pi = w[:, :, :rows] / d[:, :, None]
    T = direct + np.swapaxes(w[:, :, rows:], 1, 2) @ w_pi
    Y = a_kk[:, :rows, :rows] - np.swapaxes(w[:, :, :rows], 1, 2) @ w_pi
    # the probe's right-hand side, L22^-1 of it and D22^-1: -w_pi summed over the inputs
    _verify(big, factor, -w_pi.sum(axis=2), a_pk, a_kk, g_tia, T, t)
    return [(T[k], Y[k]) for k in range(count)]


def _verify(big, factor: SPDFactor, z, a_pk, a_kk, g_tia, T, t: _Template) -> None:
    """One probe (every input at 1 V) of the whole group: the solve must meet the residual
    tolerance and give every tile's ``T @ 1``. ``z`` is ``D22^-1 L22^-1`` of the probe's
    right-hand side on each tile's ports (only the back substitution is left to do)."""
    p = t.pattern
    count, m, rows = a_pk.shape[0], len(p.ports), p.rows
    n = p.n_free
    rhs = np.zeros((count, n))
    rhs[:, n - m:] = -a_pk[:, :, :rows].sum(axis=2)
    x = factor.solve_from_ports(z, n * np.arange(1, count + 1), m)[:, None]
    check_residual(big, x, rhs.ravel()[:, None], "native engine (batch)")
    x_ports = x.reshape(count, n)[:, n - m:]
    if p.options[3]:
        direct = g_tia[:, None] * x_ports[:, p.end - (n - m)]
    else:
        out = p.end - n
        direct = -np.einsum("kpo,kp->ko", a_pk[:, :, out], x_ports) - a_kk[:, out, :rows].sum(axis=2)
    got = T.sum(axis=2)
    scale = np.maximum(np.abs(direct).max(axis=1), np.abs(got).max(axis=1))
    error = np.abs(direct - got).max(axis=1) / np.where(scale > 0, scale, 1.0)
    if not np.all(np.isfinite(error)) or error.max() > 1e-6:
        raise ConvergenceError(f"native engine (batch): a transfer matrix disagrees with a direct solve by "
                               f"{np.nanmax(error):.2g} (relative); conductances and wire resistances differ by "
                               "too many orders of magnitude; bring them into range or use --engine ngspice")
