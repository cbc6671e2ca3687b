"""Simulate tiles and extract their transfer matrices with either engine.

``engine="native"`` uses the sparse MNA engine; ``engine="ngspice"`` runs the
very same circuit through an ngspice backend (``"shared"``: PySpice and
libngspice in this process; ``"subprocess"``: ``ngspice -b``).

Public API
----------
ENGINES, TileResult, Characterization, simulate, characterize, characterize_many
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from ..errors import ConfigError
from .checks import check_memory, memory_estimate
from .crossbar import Tile, build_circuit, input_source_names, sense_source_names
from .batch import transfer_many
from .native_tile import TileSolver
from .netlist import write_netlist
from .operating_point import OperatingPoint

Engine = Literal["native", "ngspice"]
"""An engine that extracts a tile's transfer matrix."""
ENGINES: tuple[str, ...] = get_args(Engine)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


@dataclass(frozen=True, eq=False)
class TileResult:
    """DC response of a tile to one input vector."""

    output_currents: np.ndarray
    """Current of each output into its virtual-ground node, amperes, shape ``(cols,)``."""
    output_voltages: np.ndarray | None
    """TIA output voltages in volts, or None without a TIA."""
    operating_point: OperatingPoint
    """Every node voltage and source current."""


def _ngspice_op(deck: str, backend: str) -> OperatingPoint:
    from ..spice import get_backend

    (vectors,) = get_backend(backend).run(deck, [["op"]])
    nodes = tuple(k[2:-1] for k in vectors if k.startswith("v("))
    sources = tuple(k[2:-1] for k in vectors if k.startswith("i("))
    return OperatingPoint(
        nodes,
        np.array([vectors[f"v({n})"][0] for n in nodes]),
        sources,
        np.array([vectors[f"i({s})"][0] for s in sources]),
    )


def simulate(tile: Tile, inputs, engine: str = "native", backend: str = "shared") -> TileResult:
    """DC operating point of a tile for one input vector.

    Parameters
    ----------
    tile : Tile
        The tile.
    inputs : array_like
        Input voltages, volts, shape ``(rows,)``.
    engine : {"native", "ngspice"}
        Which engine solves the circuit.
    backend : {"shared", "subprocess"}
        ngspice backend (ignored by the native engine).

    Returns
    -------
    TileResult
    """
    _check_engine(engine)
    if engine == "native":  # assembled from the grid; no deck, no node names
        v = np.asarray(inputs, dtype=float)
        if v.shape != (tile.rows,):
            raise ConfigError(f"inputs must have shape ({tile.rows},), got {v.shape}")
        op = TileSolver(tile).operating_point(v)
        return TileResult(op.output_currents, op.tia_voltages, op)
    op = _ngspice_op(write_netlist(build_circuit(tile, inputs)), backend)
    currents = op.current(sense_source_names(tile.cols))
    voltages = None
    if tile.tia is not None:
        voltages = op.voltage([f"tia{j}" for j in range(tile.cols)])
    return TileResult(currents, voltages, op)


@dataclass(frozen=True, eq=False)
class Characterization:
    """Transfer matrix of a tile and how it was obtained."""

    T: np.ndarray
    """Transfer matrix, shape ``(cols, rows)``: siemens for current readout (``I_out = T @ V_in``),
    V/V for charge readouts (``V_out = Q / c_int``; see ``metadata["units"]``)."""
    metadata: dict = field(default_factory=dict)
    """Engine, ngspice version and solver, tile parameters, content hash, seconds."""
    input_admittance: np.ndarray | None = None
    """``Y`` (rows × rows, siemens): the power the input sources deliver is ``V @ Y @ V``
    (``Y = -dI_source/dV``, from the sources' branch currents)."""

    def save(self, path: str | Path) -> None:
        """Write ``T``, ``Y`` and the metadata (as JSON) to an ``.npz`` file, atomically, at
        exactly ``path`` (a regular file or a new one: :func:`circuitsim.files.write_atomic`)."""
        import io

        from ..files import write_atomic

        arrays = {"T": self.T, "metadata": np.array(json.dumps(self.metadata, sort_keys=True))}
        if self.input_admittance is not None:
            arrays["Y"] = self.input_admittance
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        # a temporary name of its own, so that processes saving the same tile at once
        # (parallel sweeps sharing a cache) never write into each other's file
        write_atomic(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Characterization":
        """Read a file written by :meth:`save` (``ValueError`` when its headers declare more
        data than it holds, before anything is allocated)."""
        from ..files import check_array_file

        check_array_file(path)
        with np.load(path, allow_pickle=False) as data:
            y = data["Y"] if "Y" in data.files else None
            return cls(data["T"], json.loads(str(data["metadata"])), y)


def _ngspice_transfer(tile: Tile, backend_name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """One ngspice operating point per input (unit voltage, the others at 0 V)."""
    from ..spice import get_backend

    backend = get_backend(backend_name)
    deck = write_netlist(build_circuit(tile))
    sources = [s.lower() for s in input_source_names(tile.rows)]
    sensed = [f"i({s.lower()})" for s in sense_source_names(tile.cols)]
    supplies = [f"i({s})" for s in sources]
    steps = []
    for i, source in enumerate(sources):
        step = [f"alter {sources[i - 1]} dc = 0"] if i else []
        steps.append(step + [f"alter {source} dc = 1", "op"])
    results = backend.run(deck, steps, save=sensed + supplies)
    T = np.array([[r[name][0] for name in sensed] for r in results]).T
    Y = -np.array([[r[name][0] for name in supplies] for r in results]).T
    info = backend.info
    return T, Y, {
        "ngspice_version": backend.version,
        "ngspice_backend": backend.name,
        "solver": info.solver,
    }


def characterize(tile: Tile, engine: str = "native", backend: str = "shared",
                 memory_limit: float | None = None) -> Characterization:
    """Extract the transfer matrix ``T`` of a tile.

    Parameters
    ----------
    tile : Tile
        The tile (linear cells; outputs at virtual ground).
    engine : {"native", "ngspice"}
        ``"native"``: the system assembled from the grid, one sparse factorization
        in nested-dissection order and the Schur complement onto the ports
        (:class:`~circuitsim.tile.native_tile.TileSolver`);
        ``"ngspice"``: one ngspice operating point per input.
    backend : {"shared", "subprocess"}
        ngspice backend (ignored by the native engine).
    memory_limit : float, optional
        Bytes the extraction may use (default: the memory available); a tile whose
        estimate (:func:`~circuitsim.tile.checks.memory_estimate`) exceeds it is refused
        before anything is built.

    Returns
    -------
    Characterization
        ``T`` (cols × rows, siemens), the input admittance ``Y`` and the metadata.

    Raises
    ------
    EnvironmentFailure
        The tile needs more memory than ``memory_limit``.
    """
    _check_engine(engine)
    check_memory(memory_estimate(tile.rows, tile.cols, tile.r_row, tile.r_col, tile.tia is not None), memory_limit)
    start = time.perf_counter()
    if engine == "native":
        solver = TileSolver(tile)
        (T, Y), extra = solver.transfer(), {"native_solver": solver.backend}
    else:
        T, Y, extra = _ngspice_transfer(tile, backend)
    from .._version import __version__

    metadata = {
        "engine": engine,
        **extra,
        "parameters": tile.parameters(),
        "content_hash": tile.content_hash(),
        "seconds": time.perf_counter() - start,
        "circuitsim_version": __version__,
    }
    return Characterization(T, metadata, Y)


def characterize_many(tiles: Sequence[Tile], memory_limit: float | None = None) -> list[Characterization]:
    """Transfer matrices of many tiles by the native engine, tiles of one shape and set of
    options characterized together (:func:`~circuitsim.tile.batch.transfer_many`: one
    assembly, one symbolic analysis and one factorization per group).

    Parameters
    ----------
    tiles : sequence of Tile
        The tiles (linear cells; outputs at virtual ground).
    memory_limit : float, optional
        Bytes one tile's extraction may use, as in :func:`characterize`.

    Returns
    -------
    list of Characterization
        One per tile, in order, as :func:`characterize` gives it with ``engine="native"``
        (``metadata["seconds"]`` is the group's time shared equally among the tiles).
    """
    from .._version import __version__
    from .factor import default_backend

    tiles = list(tiles)
    estimates = [memory_estimate(t.rows, t.cols, t.r_row, t.r_col, t.tia is not None) for t in tiles]
    if estimates:  # the largest tile against the memory available (read once)
        check_memory(max(estimates, key=lambda e: e["bytes"]), memory_limit)
    start = time.perf_counter()
    results = transfer_many(tiles)
    seconds = (time.perf_counter() - start) / max(len(tiles), 1)
    return [Characterization(T, {"engine": "native", "native_solver": default_backend(), "parameters": tile.parameters(),
                                 "content_hash": tile.content_hash(), "seconds": seconds,
                                 "circuitsim_version": __version__}, Y)
            for tile, (T, Y) in zip(tiles, results)]
