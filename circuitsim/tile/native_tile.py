"""The native engine on the tile grid: assemble once, factorize once, answer many times.

A :class:`TileSolver` assembles a tile's reduced system directly from its grid
(:mod:`circuitsim.tile.assembly`), orders it by nested dissection along the grid
with the ports last (:mod:`circuitsim.tile.ordering`) and factorizes it once
(:mod:`circuitsim.tile.factor`: CHOLMOD when installed, else SuperLU). From the
one factorization come

- the whole transfer matrix ``T`` and input admittance ``Y``, from the Schur
  complement onto the ports (the trailing block of the factor: inputs' and
  outputs' neighbours, ``rows + cols`` nodes; dense only at that size);
- operating points of one or many input vectors, by forward and back
  substitution, without rebuilding anything.

Nothing of the size of the grid is dense. :func:`~circuitsim.tile.checks.estimate_peak_bytes` predicts
the peak memory of ``T`` of a tile before building it.

Public API
----------
TileSolver, TileOperatingPoint
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from scipy.linalg import cho_solve

from ..errors import ConfigError
from .assembly import assemble_tile
from .checks import check_transfer
from .crossbar import Tile, input_source_names, sense_source_names
from .factor import SPDFactor, resolve_backend
from .operating_point import OperatingPoint

CHUNK = 32
"""Right-hand sides solved at once when the ports are too many for a Schur complement."""

SMALL = 200_000
"""Systems with fewer free nodes factorize with one BLAS thread: their dense blocks are
too small to share, and on a busy machine waiting threads cost ten times the work."""

_controller = None
_ONE_THREAD = "1" in (os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"))
"""BLAS runs one thread already (the environment at start-up says so): nothing to limit, and
threadpoolctl's scan of the loaded libraries (~20 ms, once per process) is not paid."""


def _blas_threads(n_free: int):
    """Context limiting BLAS to one thread for small systems (a no-op for large ones)."""
    global _controller
    if n_free >= SMALL or _ONE_THREAD:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


class TileSolver:
    """A tile assembled and factorized once.

    Parameters
    ----------
    tile : Tile
        The tile (capacitances are open at DC).
    backend : {"cholmod", "superlu"}, optional
        Factorization backend; the fastest available by default.
    """

    def __init__(self, tile: Tile, backend: str | None = None):
        self.tile = tile
        self.backend = resolve_backend(backend)
        """The factorization backend."""
        self.system = system = assemble_tile(tile)  # numbered in elimination order
        with _blas_threads(system.n_free):
            self.factor = SPDFactor(system.a_ff, None, self.backend) if system.n_free else None
        self._transfer = None

    def transfer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, Y)``: ``I_out = T @ V_in`` (cols × rows) and the input admittance
        (rows × rows, ``Y = -dI_source/dV``), siemens."""
        if self._transfer is None:
            with _blas_threads(self.system.n_free):
                transfer = self._compute_transfer()
                self._verify(transfer[0])
            self._transfer = transfer
        return self._transfer

    def _verify(self, T: np.ndarray) -> None:
        """Refuse a ``T`` that a direct solve of one probe input (every input at 1 V) does
        not reproduce, or whose solve misses the residual tolerance (:mod:`.checks`)."""
        if self.factor is None:
            return
        s, rows = self.system, self.tile.rows
        c_f, c_k = s.output_rows()
        check_transfer(s.a_ff, self.factor.solve, -s.a_fk[:, :rows], c_f, T - c_k[:, :rows].toarray())

    def _compute_transfer(self):
        s, rows = self.system, self.tile.rows
        c_f, c_k = s.output_rows()
        a_fi = s.a_fk[:, :rows]
        t_direct = c_k[:, :rows].toarray()
        y_direct = s.a_kk[:rows, :rows].toarray()
        if self.factor is None:
            return t_direct, y_direct
        if s.ports is not None:  # ports numbered last: the factor's trailing block
            ports = s.ports
            lower = self.factor.trailing_cholesky(len(ports))  # Schur complement = lower lower^T
            a_pi = a_fi.tocsr()[ports].toarray()
            z = cho_solve((lower, True), a_pi)  # A_ff^-1 A_fI on the ports
            return t_direct - c_f.tocsc()[:, ports] @ z, y_direct - a_pi.T @ z
        T, Y, a_if = t_direct, y_direct, a_fi.T.tocsr()
        for start in range(0, rows, CHUNK):
            cols = slice(start, min(start + CHUNK, rows))
            z = self.factor.solve(a_fi[:, cols].toarray())
            T[:, cols] -= c_f @ z
            Y[:, cols] -= a_if @ z
        return T, Y

    def node_voltages(self, inputs) -> np.ndarray:
        """Voltages of every node (free nodes, then fixed nodes) for input vectors.

        Parameters
        ----------
        inputs : array_like
            Input voltages, shape ``(rows,)`` or ``(k, rows)``, volts.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_nodes,)`` or ``(n_nodes, k)``.
        """
        s, rows = self.system, self.tile.rows
        v = np.asarray(inputs, dtype=float)
        if v.shape[-1:] != (rows,) or v.ndim > 2 or not np.all(np.isfinite(v)):
            raise ConfigError(f"inputs must be finite with shape ({rows},) or (k, {rows}), "
                              f"got shape {v.shape}")
        vk = np.zeros((s.a_fk.shape[1],) + v.shape[:-1][::-1])
        vk[:rows] = v.T
        if self.factor is None:
            return np.concatenate([np.zeros((0,) + vk.shape[1:]), vk])
        with _blas_threads(s.n_free):
            x_f = -self.factor.solve(s.a_fk @ vk)
        return np.concatenate([x_f, vk])

    def output_currents(self, inputs) -> np.ndarray:
        """Output currents (amperes) for input vectors: ``(cols,)`` or ``(k, cols)``."""
        x = self.node_voltages(inputs)
        c_f, c_k = self.system.output_rows()
        n = self.system.n_free
        return np.asarray(c_f @ x[:n] + c_k @ x[n:]).T

    def operating_point(self, inputs) -> "TileOperatingPoint":
        """Operating point of one input vector (nodes and sources named as in decks)."""
        return TileOperatingPoint(self, self.node_voltages(np.asarray(inputs, dtype=float).ravel()))


class TileOperatingPoint:
    """Operating point of a tile on the grid, with the names of the tile's deck.

    ``wl``, ``bl`` (rows × cols), ``output_currents`` and ``tia_voltages`` are
    arrays; :meth:`voltage`, :meth:`current`, ``node_names`` and the other
    :class:`~circuitsim.tile.operating_point.OperatingPoint` members build the
    named view on first use.
    """

    def __init__(self, solver: TileSolver, x: np.ndarray):
        s = solver.system
        self._s, self._x = s, x
        n = s.n_free
        c_f, c_k = s.output_rows()
        self.output_currents = np.asarray(c_f @ x[:n] + c_k @ x[n:])
        """Output currents, amperes, ``(cols,)``."""
        self.wl = x[s.wl]
        """Word-line cell-node voltages, volts, ``(rows, cols)``."""
        self.bl = x[s.bl]
        """Bit-line cell-node voltages, volts, ``(rows, cols)``."""
        tia = s.tile.tia
        self.tia_voltages = None if tia is None else -tia.gain * x[s.end]
        """TIA output voltages, volts, or None."""
        self._named = None

    def _full(self) -> OperatingPoint:
        if self._named is None:
            s, x, tile = self._s, self._x, self._s.tile
            rows, cols = tile.shape
            names = [f"in{i}" for i in range(rows)]
            values = [x[s.n_free:s.n_free + rows]]
            if tile.r_driver > 0:
                names += [f"drv{i}" for i in range(rows)]
                values.append(x[s.drv])
            grid = [f"{i}_{j}" for i in range(rows) for j in range(cols)]
            if tile.r_row > 0:
                names += ["wl" + k for k in grid]
                values.append(self.wl.ravel())
            if tile.r_col > 0:
                names += ["bl" + k for k in grid]
                values.append(self.bl.ravel())
            names += [f"blend{j}" for j in range(cols)]
            values.append(x[s.end])
            sources = input_source_names(rows) + sense_source_names(cols)
            i_in = -(s.a_fk.T @ x[:s.n_free] + s.a_kk @ x[s.n_free:])[:rows]
            currents = [i_in, self.output_currents]
            if tile.tia is not None:
                names += [f"out{j}" for j in range(cols)] + [f"tia{j}" for j in range(cols)]
                values += [x[s.end], self.tia_voltages]
                sources += [f"Eamp{j}" for j in range(cols)]
                currents.append(self.output_currents)
            self._named = OperatingPoint(tuple(names), np.concatenate(values), tuple(sources),
                                         np.concatenate(currents))
        return self._named

    node_names = property(lambda self: self._full().node_names, doc="Node names (ground excluded).")
    voltages = property(lambda self: self._full().voltages, doc="Node voltages, volts.")
    source_names = property(lambda self: self._full().source_names, doc="Voltage sources.")
    currents = property(lambda self: self._full().currents, doc="Source branch currents, amperes.")

    def voltage(self, names):
        """Voltages of node names (a name or a sequence of names), volts."""
        return self._full().voltage(names)

    def current(self, names):
        """Branch currents of source names (a name or a sequence), amperes."""
        return self._full().current(names)
