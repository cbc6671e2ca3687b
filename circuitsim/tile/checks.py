"""Guards of the tile engines: physical ranges, array kinds, solve accuracy, memory.

Values outside the ranges below are not circuits a crossbar study means (and with
double precision they make the MNA matrix too ill-conditioned to solve): they are
refused with the range named rather than solved into a wrong ``T``.

Public API
----------
G_MAX, R_MIN, R_MAX, C_MAX, V_MAX, SPREAD_MAX, RESIDUAL_TOLERANCE,
check_array, check_range, check_residual, free_nodes, factor_entries, estimate_peak_bytes, memory_estimate,
check_memory, available_memory
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import ConfigError, ConvergenceError, EnvironmentFailure
from .factor import resolve_backend

G_MAX = 1e3
"""Largest cell conductance, siemens (a 1 mΩ cell; memory cells are below 1 S)."""
R_MIN = 1e-6
"""Smallest non-zero wire, driver or feedback resistance, ohm (0 means no resistor)."""
R_MAX = 1e12
"""Largest wire, driver or feedback resistance, ohm (1 TΩ)."""
C_MAX = 1.0
"""Largest wire capacitance, farad."""
V_MAX = 1e3
"""Largest read voltage, volt."""
SPREAD_MAX = 1e14
"""Largest ratio of the largest to the smallest non-zero entry of an MNA matrix: beyond it
double precision (1e-16) leaves fewer than two significant digits in the smallest currents."""
RESIDUAL_TOLERANCE = 1e-9
"""Largest relative residual ``|A x - b| / (|A| |x| + |b|)`` (infinity norms) accepted from the
native engine; a solve that misses it is refused (double precision gives about 1e-16)."""


def check_array(name: str, values) -> np.ndarray:
    """``values`` as a float array; complex, boolean and non-numeric arrays are refused."""
    raw = np.asarray(values)
    if raw.dtype.kind == "c" or (raw.dtype.kind == "O" and any(isinstance(v, complex) for v in raw.flat)):
        raise ConfigError(f"{name} must be real numbers, got a complex array; pass the real part in siemens")
    if raw.dtype.kind == "b":
        raise ConfigError(f"{name} must be numbers in siemens, got a boolean array; "
                          "map it to conductances first (e.g. G = g_on * mask)")
    try:
        return np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a numeric array") from None


def check_range(name: str, value: float, high: float, low: float = 0.0, unit: str = "",
                zero_ok: bool = True) -> float:
    """``value`` when ``low <= value <= high`` (or 0 when ``zero_ok``), else ConfigError naming
    the range."""
    if (zero_ok and value == 0) or low <= value <= high:
        return value
    span = f"{low:g} {unit} to {high:g} {unit}".replace("  ", " ")
    raise ConfigError(f"{name} = {value:g} {unit} is outside the physical range {span}"
                      + (" (or 0)" if zero_ok and low > 0 else "")
                      + "; the engines cannot solve it accurately")


def check_residual(matrix, x: np.ndarray, rhs: np.ndarray, what: str = "native engine") -> float:
    """Relative residual of ``matrix @ x = rhs`` (columns of ``x`` and ``rhs`` are systems);
    raises :class:`ConvergenceError` above :data:`RESIDUAL_TOLERANCE`, or when the matrix
    entries spread over more than :data:`SPREAD_MAX` (a small residual means nothing then)."""
    if np.size(x) == 0:  # nothing left to solve (every node fixed)
        return 0.0
    magnitudes = _magnitudes(matrix)
    _check_spread(magnitudes, what)
    x = np.asarray(x).reshape(len(rhs), -1) if np.ndim(x) == 1 else np.asarray(x)
    rhs = np.asarray(rhs).reshape(x.shape)
    norm_a = float(_row_sums(matrix, magnitudes).max()) if matrix.shape[0] else 0.0
    residual = np.abs(matrix @ x - rhs).max(axis=0) if x.size else np.zeros(0)
    scale = norm_a * np.abs(x).max(axis=0) + np.abs(rhs).max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, residual / np.where(scale > 0, scale, 1), 0.0)
    worst = float(np.nanmax(relative)) if relative.size else 0.0
    if not np.isfinite(worst) or worst > RESIDUAL_TOLERANCE or not np.all(np.isfinite(x)):
        raise ConvergenceError(f"{what}: the solve is inaccurate (relative residual {worst:.2g} > "
                               f"{RESIDUAL_TOLERANCE:g}): conductances and wire resistances differ by too "
                               "many orders of magnitude; bring them into range or use --engine ngspice")
    return worst


def _magnitudes(matrix) -> np.ndarray:
    """``|a_ij|`` of the stored entries of a sparse matrix (of every entry of a dense one)."""
    return np.abs(matrix.data if hasattr(matrix, "format") else np.asarray(matrix).ravel())


def _row_sums(matrix, magnitudes: np.ndarray) -> np.ndarray:
    """``Σ_j |a_ij|`` per row, without a copy of ``|A|``."""
    if getattr(matrix, "format", None) == "csc":  # the stored entries' rows are its indices
        return np.bincount(matrix.indices, magnitudes, minlength=matrix.shape[0])
    if getattr(matrix, "format", None) == "csr":
        return np.bincount(np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)), magnitudes,
                           minlength=matrix.shape[0])
    return np.asarray(abs(matrix).sum(axis=1)).ravel()


def _check_spread(magnitudes: np.ndarray, what: str) -> None:
    if not magnitudes.size:
        return
    high, low = magnitudes.max(), magnitudes.min(where=magnitudes > 0, initial=np.inf)  # no copy
    if high > SPREAD_MAX * low:
        raise ConvergenceError(f"{what}: circuit values span {high / low:.1g} "
                               f"(more than {SPREAD_MAX:g}), beyond what double precision solves; "
                               "bring conductances and wire resistances closer in range")


def memory_estimate(rows: int, cols: int, r_row: float, r_col: float, tia: bool = False,
                    backend: str | None = None) -> dict:
    """Nodes, matrix non-zeros, factor entries and peak bytes of characterizing a tile.

    The canonical tile has a word-line node per cell when ``r_row > 0`` and a bit-line node
    per cell when ``r_col > 0``; the factor's size is :func:`factor_entries` and the peak
    memory :func:`estimate_peak_bytes` (the native engine's one factorization).
    """
    cells = rows * cols
    nodes = rows + (cells if r_row > 0 else rows) + (cells if r_col > 0 else cols) + (2 * cols if tia else 0)
    nnz = nodes + 2 * (cells * (r_row > 0) + cells * (r_col > 0) + cells)
    return {"nodes": int(nodes), "nonzeros": int(nnz),
            "fill": int(factor_entries(free_nodes(rows, cols, r_row, r_col, tia))),
            "bytes": int(estimate_peak_bytes(rows, cols, r_row, r_col, tia, backend))}


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, or the address-space limit)."""
    limit = None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        limit = None if soft == resource.RLIM_INFINITY else soft
    except (ImportError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        avail = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return min(avail, limit) if limit else avail


def check_memory(estimate: dict, limit: float | None = None) -> None:
    """Raise :class:`EnvironmentFailure` when ``estimate["bytes"]`` exceeds ``limit`` bytes
    (default: :func:`available_memory`)."""
    limit = available_memory() if limit is None else limit
    if estimate["bytes"] > limit:
        raise EnvironmentFailure(
            f"characterizing this tile needs about {estimate['bytes'] / 2**30:.1f} GiB "
            f"({estimate['nodes']} nodes, {estimate['nonzeros']} non-zeros, ~{estimate['fill']} factor entries), "
            f"more than the {limit / 2**30:.1f} GiB available; use a smaller tile or raise the limit "
            "(--memory-limit GIB)")


def check_transfer(matrix, solve, rhs_in, c_out, through, what: str = "native engine") -> None:
    """Check a transfer block ``through = c_out A^-1 rhs_in`` on one probe input (all inputs
    at 1): the probe's solve must meet :data:`RESIDUAL_TOLERANCE` and give the same outputs."""
    n_in = rhs_in.shape[1]
    if n_in == 0 or matrix.shape[0] == 0:
        return
    probe = np.ones(n_in)
    b = np.asarray(rhs_in @ probe).ravel()
    x = np.asarray(solve(b[:, None])).reshape(-1, 1)
    check_residual(matrix, x, b[:, None], what)
    direct = np.asarray(c_out @ x).ravel()
    got = np.asarray(through @ probe).ravel()
    scale = float(max(np.abs(direct).max(), np.abs(got).max())) if direct.size else 0.0
    error = float(np.abs(direct - got).max() / scale) if scale > 0 else 0.0
    if not np.isfinite(error) or error > 1e-6:
        raise ConvergenceError(f"{what}: the transfer matrix disagrees with a direct solve by {error:.2g} "
                               "(relative); conductances and wire resistances differ by too many orders of "
                               "magnitude; bring them into range or use --engine ngspice")


#: bytes per free node and per entry of the factor at the peak, by backend (CHOLMOD: fitted
#: to the peak RSS above the RSS before the tile at 1024² and 2048², 1.42 and 5.54 GB, with
#: the ports' block read in place; SuperLU: bench/bench_tile.py before issue 24)
_BYTES = {"cholmod": (280.0, 9.5), "superlu": (600.0, 33.0)}


def free_nodes(rows: int, cols: int, r_row: float, r_col: float, tia: bool = False) -> int:
    """Unknowns of a tile's reduced system: a word-line node per cell when ``r_row > 0``, a
    bit-line node per cell when ``r_col > 0``, a driver node per row and a TIA node per column."""
    return rows * cols * ((r_row > 0) + (r_col > 0)) + (cols if tia else 0) + rows


def factor_entries(n_free: int) -> float:
    """Entries of ``L`` of ``n_free`` grid nodes in nested-dissection order, about
    ``n (4 log2 sqrt(n) + 1)`` (measured from 64² to 1024² R-only tiles: 27–43 per node)."""
    n = max(n_free, 1)
    return n * (4.0 * math.log2(math.sqrt(n)) + 1.0)


def estimate_peak_bytes(rows: int, cols: int, r_row: float = 1.0, r_col: float = 1.0,
                        tia: bool = False, backend: str | None = None) -> float:
    """Predicted peak memory (bytes, above what the process held before) of ``T`` of a
    ``rows × cols`` tile by :class:`~circuitsim.tile.native_tile.TileSolver`.

    The peak holds the assembled system and the factor (:func:`factor_entries` entries;
    CHOLMOD's supernodes keep ~15 % more values, the zeros of relaxed amalgamation); the
    ports' block is read from the factor in place, never copied. With CHOLMOD, the peak
    RSS of 1024² and 2048² R tiles was within 10 % of the RSS before the tile plus this
    estimate; SuperLU keeps ``L`` and ``U``, and its figure is a rougher bound.
    """
    n = free_nodes(rows, cols, r_row, r_col, tia)
    per_node, per_entry = _BYTES[resolve_backend(backend)]
    return per_node * n + per_entry * factor_entries(n)
