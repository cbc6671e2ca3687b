"""Tile transfer matrices cached by tile content, in memory and on disk.

A tile is identified by its content hash (conductances, wires, readout options: a TIA, or the
port of sense resistors, :meth:`~circuitsim.tile.crossbar.TIA.sense_resistor`) and
the way it was characterized (engine, or charge-mode window and capacitor); each entry
is one ``Characterization`` file, ``<key>.npz``. An entry is verified when it is read:
it must be a readable ``.npz`` whose metadata names this tile's content hash and this
characterization, with ``T`` (and ``Y``) of this tile's shape and finite; a bad entry is
reported on one warning line and extracted again (never used).

Public API
----------
TileCache
"""

from __future__ import annotations

import logging
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from .crossbar import Tile
from .extract import Characterization, characterize, characterize_many

_log = logging.getLogger("circuitsim")


class ReadoutSettings(Protocol):
    """How a tile is read (a network's ``CircuitConfig`` is one): the fields the cache keys on."""

    @property
    def readout(self) -> str:
        """``"current"`` (virtual ground), ``"sense"`` (the tile's bit lines end in its sense port: read at
        DC as ``"current"``), ``"charge"`` (integrator) or ``"charge-passive"``."""

    @property
    def charge_mode(self) -> bool:
        """Whether tiles are read by charge (a transient), else at DC (the tile's own bit-line ends)."""

    @property
    def engine(self) -> str:
        """``"native"`` or ``"ngspice"`` (DC readouts)."""

    @property
    def backend(self) -> str:
        """ngspice backend (``"shared"`` or ``"subprocess"``)."""

    @property
    def t_int(self) -> float:
        """Integration window (s) of a charge readout."""

    @property
    def c_int(self) -> float:
        """Integration capacitance (F) of a charge readout."""


class TileCache:
    """Transfer matrices by tile content hash, in memory and optionally on disk.

    Parameters
    ----------
    folder : str or Path, optional
        Where ``<hash>-<engine>.npz`` files are kept; memory only when None.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else None
        self._memory: dict[str, Characterization] = {}
        self._pending: dict[str, Characterization] = {}
        self._derived: dict[tuple, Any] = {}
        self.hits = 0
        self.misses = 0

    def transfer(self, tile: Tile, circuit: ReadoutSettings) -> Characterization:
        """Return the characterization of ``tile`` under ``circuit``'s readout, extracting it
        only when not cached."""
        key = _key(tile, circuit)
        return self.lookup(key, lambda: _characterize(tile, circuit), lambda r: _mismatch(r, tile, circuit))

    def prefetch(self, tiles: list[Tile], circuit: ReadoutSettings) -> None:
        """Characterize together the tiles that are not cached yet (native engine, current
        readout: :func:`~circuitsim.tile.extract.characterize_many`). The results wait for
        :meth:`transfer`, which takes each as if it computed it then (a miss, written to disk).
        Other engines and readouts do nothing here."""
        if circuit.charge_mode or circuit.engine != "native":
            return
        missing = {}
        for tile in tiles:
            key = _key(tile, circuit)
            path = self.folder / f"{key}.npz" if self.folder else None
            if key not in self._memory and key not in self._pending and (path is None or not path.is_file()):
                missing[key] = tile
        if len(missing) > 1:
            self._pending.update(zip(missing, characterize_many(list(missing.values()))))

    def derived(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """What ``compute()`` derives from a tile's content alone, kept in memory under ``key``
        (e.g. ``("read-noise", tile.content_hash(), sigma)``: a tile's read-noise law, the same
        for every point of a sweep that realizes the same cells): computed once per key."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def lookup(self, key: str, compute, verify) -> Characterization:
        """Return the entry ``key``, calling ``compute()`` (a ``Characterization``) only when
        it is not cached; shared by tiles and other circuits cached by content. A stored
        entry is used only when ``verify(entry)`` returns None (else a string saying what is
        wrong with it: one warning line, and the entry is computed again)."""
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        path = self.folder / f"{key}.npz" if self.folder else None
        if key in self._pending:  # characterized by prefetch
            compute = lambda: self._pending.pop(key)  # noqa: E731
        if path is not None and (path.is_symlink() or (path.exists() and not path.is_file())):
            _log.warning(f"warning: tile cache entry {path} is not a regular file; computing the tile "
                         "without caching it (remove it to cache the tile again)")
            path = None  # never read through it, never replace it
        result = _load_verified(path, verify) if path is not None and path.is_file() else None
        if result is not None:
            self.hits += 1
        else:
            result = compute()
            self.misses += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                result.save(path)
        self._memory[key] = result
        return result


def _key(tile: Tile, circuit: ReadoutSettings) -> str:
    """The cache key of a tile under a circuit's readout and engine."""
    if not circuit.charge_mode:
        return f"{tile.content_hash()}-{circuit.engine}"
    return f"{tile.content_hash()}-{circuit.readout}-{circuit.t_int:.6g}-{circuit.c_int:.6g}"


def _load_verified(path: Path, verify) -> Characterization | None:
    """The entry at ``path`` when ``verify`` finds nothing wrong with it, else None (one warning)."""
    try:
        result = Characterization.load(path)
        problem = verify(result)
    except (OSError, EOFError, ValueError, KeyError, TypeError, RecursionError, MemoryError,
            zipfile.BadZipFile, zlib.error) as exc:
        problem = f"unreadable: {type(exc).__name__}"
    if problem is None:
        return result
    _log.warning(f"warning: tile cache entry {path} is damaged ({problem}); computing it again")
    return None


def _mismatch(result: Characterization, tile: Tile, circuit: ReadoutSettings) -> str | None:
    meta = result.metadata
    if not isinstance(meta, dict) or meta.get("content_hash") != tile.content_hash():
        return "its content hash is not this tile's"
    if not circuit.charge_mode and meta.get("engine") != circuit.engine:
        return f"extracted by {meta.get('engine')!r}, not {circuit.engine!r}"
    if circuit.charge_mode and not (
            meta.get("readout") == f"charge-{'integrator' if circuit.readout == 'charge' else 'passive'}"
            and math.isclose(meta.get("t_int", -1), circuit.t_int, rel_tol=1e-6)
            and math.isclose(meta.get("c_int", -1), circuit.c_int, rel_tol=1e-6)):
        return "another charge readout"
    if np.shape(result.T) != (tile.cols, tile.rows) or not np.all(np.isfinite(result.T)):
        return f"T has shape {np.shape(result.T)} or non-finite values, expected {(tile.cols, tile.rows)}"
    y = result.input_admittance
    if y is not None and (np.shape(y) != (tile.rows, tile.rows) or not np.all(np.isfinite(y))):
        return "Y has the wrong shape or non-finite values"
    return None


def _characterize(tile: Tile, circuit: ReadoutSettings) -> Characterization:
    if not circuit.charge_mode:
        return characterize(tile, engine=circuit.engine, backend=circuit.backend)
    from .charge import characterize_charge

    mode = "integrator" if circuit.readout == "charge" else "passive"
    return characterize_charge(tile, circuit.t_int, circuit.c_int, mode=mode, backend=circuit.backend)
