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

The trailing block of a CHOLMOD factor is read in place from its supernodes
(:func:`_supernodal_block`): the factor is never copied into a second sparse matrix,
which at 1024² cells would double the peak memory.

Public API
----------
BACKENDS, available_backends, default_backend, resolve_backend, cholmod_blas, blas_kind, analyze, SPDFactor
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

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


def cholmod_blas() -> str | None:
    """Path of the shared library that CHOLMOD's BLAS calls (``dgemm_``) bind to in this
    process, e.g. ``/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3``; None when
    CHOLMOD is not installed or the library cannot be found (not Linux/glibc)."""
    if _cholmod is None:
        return None
    try:
        cholmod = ctypes.CDLL(_loaded_library("libcholmod") or "libcholmod.so.3")
        address = ctypes.cast(cholmod.dgemm_, ctypes.c_void_p).value
        libdl = ctypes.CDLL(ctypes.util.find_library("dl") or "libc.so.6")
    except (OSError, AttributeError):
        return None

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    info = DlInfo()
    if not libdl.dladdr(ctypes.c_void_p(address), ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


def blas_kind(path: str | None) -> str:
    """A short name of the BLAS in a library path: ``"OpenBLAS"``, ``"reference"`` (netlib's,
    Debian's ``/blas/`` alternative), ``"MKL"``, ``"BLIS"``, ``"ATLAS"`` or ``"unknown"``."""
    if not path:
        return "unknown"
    low = path.lower()
    for key, name in (("openblas", "OpenBLAS"), ("mkl", "MKL"), ("blis", "BLIS"), ("atlas", "ATLAS")):
        if key in low:
            return name
    return "reference" if "/blas/" in low or os.path.basename(low).startswith("libblas.so") else "unknown"


def _loaded_library(prefix: str) -> str | None:
    """Path of a loaded shared library whose file name starts with ``prefix``."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1]
                if os.path.basename(path).startswith(prefix):
                    return path
    except OSError:
        pass
    return None


def analyze(matrix, supernodal: bool = True):
    """CHOLMOD's symbolic analysis (in the given order) of a symmetric matrix's pattern, for
    :class:`SPDFactor` ``analysis=`` (needs the cholmod backend); supernodal ``L L^T``, or
    simplicial ``L D L^T`` (faster for systems of small tiles: measured at 64², 2× faster)."""
    resolve_backend("cholmod")
    return _cholmod.analyze(sp.csc_matrix(matrix), mode="supernodal" if supernodal else "simplicial",
                            ordering_method="natural")


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
    analysis : object, optional
        With CHOLMOD: the result of :func:`analyze` for a matrix of this pattern (its
        symbolic analysis is reused and its numeric factor overwritten).
    """

    def __init__(self, matrix, order: np.ndarray | None = None, backend: str | None = None,
                 analysis=None):
        self.backend = backend = resolve_backend(backend)
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self.n = matrix.shape[0]
        permuted = sp.csc_matrix(matrix)
        if self.order is not None:
            permuted = permuted[self.order][:, self.order].tocsc()
        if backend == "cholmod":
            try:
                if analysis is None:
                    self._f = _cholmod.cholesky(permuted, ordering_method="natural")
                else:  # the symbolic analysis of this pattern, refactorized in place
                    analysis.cholesky_inplace(permuted)
                    self._f = analysis
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

    def trailing_factors(self, starts, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Factors of the Schur complements of the diagonal blocks of a block-diagonal matrix
        onto the last ``m`` unknowns of each block: ``(C, d)``, lower-triangular ``C`` (dense,
        ``(k, m, m)``) and ``d`` (``(k, m)``) with block ``b``'s Schur complement
        ``C[b] diag(d[b]) C[b]^T`` (``L D L^T``: ``C`` has a unit diagonal; ``L L^T``: ``d`` is 1).
        ``starts`` are the first unknowns of the blocks after the first (block ``b`` ends where
        block ``b + 1`` starts). Needs the cholmod backend; the factor is read in place."""
        if self.backend != "cholmod":
            raise ConfigError("trailing_factors needs the cholmod backend")
        ends = np.append(np.asarray(starts, dtype=np.int64), self.n)
        blocks = _simplicial_blocks(self._f, ends, m, self.n)
        if blocks is not None:
            return blocks
        out = np.empty((len(ends), m, m))
        copy = None
        for b, end in enumerate(ends):
            tail = _supernodal_block(self._f, end - m, end, self.n)
            if tail is None:  # not readable in place: one copy of L (L of L L^T) for all blocks
                copy = self._f.L().tocsc() if copy is None else copy
                tail = copy[end - m:end, end - m:end].toarray()
            out[b] = tail
        return out, np.ones((len(ends), m))

    def solve_from_ports(self, z: np.ndarray, ends, m: int) -> np.ndarray:
        """Solve ``A x = b`` (block-diagonal ``A`` as in :meth:`trailing_factors`) when ``b`` is
        zero but on the last ``m`` unknowns of each block, given there ``z = D22^-1 L22^-1 b``
        from :meth:`trailing_factors`' factors (``(k, m)``): the forward substitution through
        the zeros leaves ``z`` unchanged, so only the back substitution ``L^T x = z`` runs.
        ``ends`` are the blocks' ends; needs the cholmod backend and no ``order``."""
        if self.backend != "cholmod" or self.order is not None:
            raise ConfigError("solve_from_ports needs the cholmod backend in the matrix's own order")
        y = np.zeros(self.n)
        y[(np.asarray(ends, dtype=np.int64)[:, None] - m + np.arange(m)[None, :]).ravel()] = np.ravel(z)
        return self._f.solve_Lt(y, use_LDLt_decomposition=not _is_ll(self._f, self.n))

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

    def trailing_cholesky(self, m: int) -> np.ndarray:
        """Lower-triangular ``C`` (dense, ``m × m``) with ``C C^T`` the Schur complement onto
        the last ``m`` unknowns: with CHOLMOD the trailing block of ``L`` itself, read in place."""
        n = self.n
        if m == 0:
            return np.zeros((0, 0))
        if self.backend == "cholmod":
            tail = _supernodal_block(self._f, n - m, n, n)
            if tail is None:  # a simplicial factor (small systems): L of L L^T, copied
                tail = self._f.L()[n - m:, n - m:].toarray()
            return tail
        return np.linalg.cholesky(self.trailing_schur(m))

    def trailing_schur(self, m: int) -> np.ndarray:
        """Schur complement (dense, ``m × m``) onto the last ``m`` unknowns of ``order``,
        rows and columns in that order."""
        n = self.n
        if m == 0:
            return np.zeros((0, 0))
        if self.backend == "cholmod":
            tail = self.trailing_cholesky(m)
            return tail @ tail.T
        # SuperLU postorders the elimination tree; the ports stay last but may be
        # permuted among themselves (perm_c[i] = step at which unknown i is eliminated)
        step = self._f.perm_c[n - m:] - (n - m)
        if step.min() < 0:
            raise ConvergenceError("native engine: SuperLU did not keep the ports last")
        lower = self._f.L[:, n - m:].tocsr()[n - m:]
        upper = self._f.U[:, n - m:].tocsr()[n - m:]
        return (lower @ upper).toarray()[np.ix_(step, step)]


# cholmod_factor (CHOLMOD 3, 64-bit): byte offsets of the fields read below
_N, _NSUPER, _SUPER, _PI, _PX, _S, _X = 0, 104, 144, 152, 160, 168, 64
_NZMAX, _P, _I, _NZ = 40, 48, 56, 80
_ORDERING, _IS_LL, _IS_SUPER, _ITYPE, _XTYPE, _DTYPE = 176, 180, 184, 192, 196, 200
_FACTOR_OFFSET = 24
"""Byte offset of the ``cholmod_factor *`` in scikit-sparse 0.4's ``Factor`` object
(after the object header and a reference to its ``cholmod_common``)."""


def _layout_known() -> bool:
    """Whether the installed scikit-sparse is a release whose ``Factor`` layout this module
    reads (0.4.x over CHOLMOD 3, 64-bit); otherwise the factor is copied, never read blind."""
    global _KNOWN
    if _KNOWN is None:
        try:
            import sksparse
            from importlib.metadata import version

            release = getattr(sksparse, "__version__", None) or version("scikit-sparse")  # the attribute: no disk
            known = release.startswith("0.4.") and ctypes.sizeof(ctypes.c_void_p) == 8
            cholmod = ctypes.CDLL(_loaded_library("libcholmod") or "libcholmod.so.3")
            numbers = (ctypes.c_int * 3)()
            cholmod.cholmod_version(numbers)
            _KNOWN = known and numbers[0] == 3
        except Exception:  # noqa: BLE001 - unknown means: do not read in place
            _KNOWN = False
    return _KNOWN


_KNOWN: bool | None = None


def _factor_struct(factor, n: int, supernodal: bool = True) -> int | None:
    """Address of the ``cholmod_factor`` behind a scikit-sparse ``Factor`` of order ``n`` when
    it is a real factor of the kind this module reads (supernodal ``L L^T``, or simplicial
    when ``supernodal`` is False), else None."""
    if not _layout_known():
        return None
    address = ctypes.c_void_p.from_address(id(factor) + _FACTOR_OFFSET).value
    if not address:
        return None
    fields = [ctypes.c_int.from_address(address + k).value
              for k in (_IS_LL, _IS_SUPER, _ITYPE, _XTYPE, _DTYPE)]
    kind = [1, 1] if supernodal else [fields[0], 0]
    if ctypes.c_size_t.from_address(address + _N).value != n or fields[:2] != kind \
            or fields[2] not in _ITYPES or fields[3:] != [1, 0]:
        return None
    return address


_ITYPES = {0: ctypes.c_int32, 2: ctypes.c_int64}
"""CHOLMOD's integer types (``CHOLMOD_INT``, ``CHOLMOD_LONG``) as ctypes."""


def _int_array(pointer: int, count: int, ctype=ctypes.c_int32) -> np.ndarray:
    return np.ctypeslib.as_array((ctype * count).from_address(pointer))


def _supernodal_block(factor, start: int, stop: int, n: int) -> np.ndarray | None:
    """Dense ``L[start:stop, start:stop]`` read in place from the supernodes of a CHOLMOD
    factor (no copy of ``L``), or None when the factor is not supernodal ``L L^T``.

    Supernode ``s`` holds columns ``super[s] .. super[s+1]-1``; its row indices are
    ``s[pi[s]:pi[s+1]]`` (sorted, its own columns first) and its values the column-major
    ``nrow × ncol`` block at ``x[px[s]:]``.
    """
    address = _factor_struct(factor, n)
    if address is None:
        return None
    read = lambda k: ctypes.c_void_p.from_address(address + k).value  # noqa: E731
    nsuper = ctypes.c_size_t.from_address(address + _NSUPER).value
    itype = _ITYPES[ctypes.c_int.from_address(address + _ITYPE).value]
    first, pi, px = (_int_array(read(k), nsuper + 1, itype) for k in (_SUPER, _PI, _PX))
    row_index, values = read(_S), read(_X)
    m = stop - start
    block = np.zeros((m, m))
    s = int(np.searchsorted(first, start, side="right")) - 1
    while s < nsuper and first[s] < stop:
        k1, k2 = int(first[s]), int(first[s + 1])
        nrow, ncol = int(pi[s + 1] - pi[s]), k2 - k1
        rows = _int_array(row_index + ctypes.sizeof(itype) * int(pi[s]), nrow, itype)
        x = np.ctypeslib.as_array((ctypes.c_double * (nrow * ncol)).from_address(values + 8 * int(px[s])))
        x = x.reshape(ncol, nrow).T  # column-major
        keep = (rows >= start) & (rows < stop)
        c0, c1 = max(k1, start) - k1, min(k2, stop) - k1
        block[rows[keep] - start, c0 + k1 - start:c1 + k1 - start] = x[keep, c0:c1]
        s += 1
    return np.tril(block)


def _is_ll(factor, n: int) -> bool:
    """Whether a CHOLMOD factor is ``L L^T`` (supernodal, or simplicial ``L L^T``; also when
    its structure is not readable: :meth:`SPDFactor.trailing_factors` then made it ``L L^T``)."""
    address = _factor_struct(factor, n, supernodal=False)
    return address is None or ctypes.c_int.from_address(address + _IS_LL).value == 1


def _simplicial_blocks(factor, ends: np.ndarray, m: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(L22, D22)`` of the last ``m`` unknowns before each of ``ends`` (as
    :meth:`SPDFactor.trailing_factors` gives them), read in place from a simplicial CHOLMOD
    factor (``L D L^T``, or ``L L^T`` with ``D = 1``), or None when the factor is not simplicial.

    Column ``j`` holds ``nz[j]`` entries from ``p[j]``: row indices in ``i``, values in
    ``x``, the diagonal first (``D_jj`` of ``L D L^T``). The blocks must be diagonal
    blocks of the factor (no entry of their columns below their last row).
    """
    address = _factor_struct(factor, n, supernodal=False)
    if address is None:
        return None
    read = lambda k: ctypes.c_void_p.from_address(address + k).value  # noqa: E731
    itype = _ITYPES[ctypes.c_int.from_address(address + _ITYPE).value]
    ll = ctypes.c_int.from_address(address + _IS_LL).value == 1
    nzmax = ctypes.c_size_t.from_address(address + _NZMAX).value
    colp, count = _int_array(read(_P), n + 1, itype), _int_array(read(_NZ), n, itype)
    row_index = _int_array(read(_I), nzmax, itype)
    values = np.ctypeslib.as_array((ctypes.c_double * nzmax).from_address(read(_X)))
    block = np.repeat(np.arange(len(ends)), m)
    cols = (ends[:, None] - m + np.arange(m)[None, :]).ravel()
    counts = count[cols].astype(np.int64)
    at = np.repeat(colp[cols].astype(np.int64) - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    rows = row_index[at].astype(np.int64)
    which = np.repeat(block, counts)
    base = ends[which] - m
    rows = rows - base
    if np.any((rows < 0) | (rows >= m)):  # not a diagonal block of the factor
        return None
    lower = np.zeros((len(ends), m, m))
    lower[which, rows, np.repeat(cols, counts) - base] = values[at]
    if ll:
        return lower, np.ones((len(ends), m))
    d = np.diagonal(lower, axis1=1, axis2=2).copy()
    lower[:, np.arange(m), np.arange(m)] = 1.0
    return lower, d
