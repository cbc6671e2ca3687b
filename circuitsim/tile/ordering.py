"""Fill-reducing orderings of a tile's free nodes that follow the grid.

Removing the word-line nodes of one column cuts every horizontal wire there, and
no other wire crosses a column (bit lines and cells stay inside it); removing
the bit-line nodes of one row likewise splits the tile into a top and a bottom
part. Nested dissection by these separators, always cutting the longer side of
the box in the middle, orders a ``rows × cols`` grid for a Cholesky factor with
``O(n log n)`` entries and ``O(n^1.5)`` work, and costs a few numpy passes.
The ports (nodes whose Schur complement is wanted) are ordered last, so the
trailing block of the factor is the Schur complement onto them.

Public API
----------
HORIZONTAL, VERTICAL, LEAF, SMALL_LEAF, grid_nested_dissection
"""

from __future__ import annotations

import numpy as np

HORIZONTAL, VERTICAL = 0, 1
"""Kinds of grid node: on a horizontal wire (drivers, word lines) or a vertical one
(bit lines, TIA inputs); a column of horizontal nodes or a row of vertical ones
separates the grid."""

LEAF = 256
"""Boxes with at most this many nodes are not divided further (large grids)."""

SMALL_LEAF = 16
"""Leaf size for patterns shared by many small tiles (:mod:`circuitsim.tile.batch`): dividing
down to 16 nodes leaves a 64² tile's factor 27 % fewer entries and 18 % fewer flops than 256,
for ~30 ms more of this loop, paid once per pattern. Large grids keep :data:`LEAF`: at 1024²
smaller leaves cost seconds here and make CHOLMOD's supernodes smaller and slower."""


def grid_nested_dissection(kind: np.ndarray, position: np.ndarray, last=(), leaf: int = LEAF) -> np.ndarray:
    """Nested-dissection ordering of grid nodes, ``last`` at the end.

    Parameters
    ----------
    kind : numpy.ndarray
        ``HORIZONTAL`` or ``VERTICAL`` per node (see :mod:`circuitsim.tile.assembly`).
    position : numpy.ndarray
        ``(row, col)`` per node, shape ``(n, 2)``.
    last : array_like of int
        Nodes to order last, in this order.
    leaf : int, optional
        Boxes of at most this many nodes are not divided (:data:`LEAF`, :data:`SMALL_LEAF`).

    Returns
    -------
    numpy.ndarray
        A permutation: ``order[k]`` is the node eliminated ``k``-th.
    """
    n = len(kind)
    last = np.asarray(last, dtype=np.int64)
    rest = np.ones(n, bool)
    rest[last] = False
    nodes = np.flatnonzero(rest)
    out: list[np.ndarray] = []
    # explicit stack of (nodes, separator-or-None): a separator is emitted after both halves
    stack = [(nodes, None)]
    pi, pj = position[:, 0], position[:, 1]
    while stack:
        sub, sep = stack.pop()
        if sep is not None:
            out.append(sep)
            continue
        if len(sub) <= leaf:
            out.append(sub)
            continue
        i, j, k = pi[sub], pj[sub], kind[sub]
        i0, i1, j0, j1 = i.min(), i.max(), j.min(), j.max()
        if j1 - j0 >= i1 - i0 and j1 > j0:
            s = (j0 + j1 + 1) // 2
            cut = (k == HORIZONTAL) & (j == s)
            first = j < s
        elif i1 > i0:
            s = (i0 + i1 + 1) // 2
            cut = (k == VERTICAL) & (i == s)
            first = i < s
        else:  # a single position: nothing to divide
            out.append(sub)
            continue
        second = ~first & ~cut
        # pushed in reverse: first half, second half, then the separator
        stack.append((None, sub[cut]))
        stack.append((sub[second], None))
        stack.append((sub[first], None))
    out.append(last)
    order = np.concatenate(out) if out else np.zeros(0, np.int64)
    return order
