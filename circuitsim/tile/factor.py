"""Sparse Cholesky-type factorizations of symmetric positive definite matrices.

The factorization is taken in an elimination order chosen by the caller (e.g.
:func:`~circuitsim.tile.ordering.grid_nested_dissection`), so that the trailing
block of the factor is the Schur complement onto the nodes ordered last.

Backends
--------
``"cholmod"``
    Supernodal Cholesky ``L L^T`` of SuiteSparse's CHOLMOD through scikit-sparse
    (optional: ``pip install scikit-sparse`` with SuiteSparse's headers, e.g.
    Debian's ``libsuitesparse-dev``; detected at import, never required).
``"superlu"``
    scipy's SuperLU, ``L U`` without pivoting in the given order (always available).

Public API
----------
BACKENDS, available_backends, default_backend, resolve_backend, SPDFactor
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConfigError, ConvergenceError

try:  # optional supernodal Cholesky
    from sksparse import cholmod as _cholmod
except ImportError:  # pragma: no cover - depends on the machine
    _cholmod = None

BACKENDS = ("cholmod", "superlu")


def available_backends() -> tuple[str, ...]:
    """Backends usable on this machine, fastest first."""
    return BACKENDS if _cholmod is not None else ("superlu",)


def default_backend() -> str:
    """The backend used when none is named: CHOLMOD when installed, else SuperLU."""
    return available_backends()[0]


def resolve_backend(backend: str | None) -> str:
    """The backend named (checked to be available here), or the default one."""
    if backend is None:
        return default_backend()
    if backend not in available_backends():
        raise ConfigError(
            f"factorization backend {backend!r} is not available here; choose one of "
            f"{', '.join(available_backends())} (cholmod needs scikit-sparse)"
        )
    return backend


def _singular(exc) -> ConvergenceError:
    return ConvergenceError(
        f"native engine: singular circuit matrix ({exc}); check for floating nodes"
    )


class SPDFactor:
    """Factorization of a symmetric positive definite matrix in a given order.

    Parameters
    ----------
    matrix : scipy.sparse matrix
        Symmetric positive definite, shape ``(n, n)``.
    order : numpy.ndarray, optional
        Elimination order: ``order[k]`` is the unknown eliminated ``k``-th;
        None when the matrix is numbered in elimination order already.
    backend : {"cholmod", "superlu"}, optional
        Defaults to :func:`default_backend`.
    """

    def __init__(self, matrix, order: np.ndarray | None = None, backend: str | None = None):
        self.backend = backend = resolve_backend(backend)
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self.n = matrix.shape[0]
        permuted = sp.csc_matrix(matrix)
        if self.order is not None:
            permuted = permuted[self.order][:, self.order].tocsc()
        if backend == "cholmod":
            try:
                self._f = _cholmod.cholesky(permuted, ordering_method="natural")
            except _cholmod.CholmodNotPositiveDefiniteError as exc:
                raise _singular(exc) from None
        else:
            try:
                self._f = spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                    options={"SymmetricMode": True})
            except RuntimeError as exc:  # "Factor is exactly singular"
                raise _singular(exc) from None
            if not np.array_equal(self._f.perm_r, self._f.perm_c):
                raise _singular("SuperLU pivoted")

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` for one (``(n,)``) or many (``(n, k)``) right-hand sides."""
        b = np.asarray(rhs, dtype=float)
        if self.order is not None:
            b = b[self.order]
        if self.backend == "cholmod":
            y = self._f.solve_A(b)
        else:  # the transposed solve of SuperLU is the fast one; A is symmetric
            y = self._f.solve(np.asfortranarray(b), trans="T")
        if self.order is None:
            return y
        x = np.empty_like(y)
        x[self.order] = y
        return x

    def trailing_schur(self, m: int) -> np.ndarray:
        """Schur complement (dense, ``m × m``) onto the last ``m`` unknowns of ``order``,
        rows and columns in that order."""
        n = self.n
        if m == 0:
            return np.zeros((0, 0))
        if self.backend == "cholmod":
            tail = self._f.L()[n - m:, n - m:].toarray()
            return tail @ tail.T
        # SuperLU postorders the elimination tree; the ports stay last but may be
        # permuted among themselves (perm_c[i] = step at which unknown i is eliminated)
        step = self._f.perm_c[n - m:] - (n - m)
        if step.min() < 0:
            raise ConvergenceError("native engine: SuperLU did not keep the ports last")
        lower = self._f.L[:, n - m:].tocsr()[n - m:]
        upper = self._f.U[:, n - m:].tocsr()[n - m:]
        return (lower @ upper).toarray()[np.ix_(step, step)]
