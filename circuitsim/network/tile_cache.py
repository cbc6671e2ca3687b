"""Tile transfer matrices cached by tile content, in memory and on disk.

A tile is identified by its content hash (conductances, wires, readout options) and
the way it was characterized (engine, or charge-mode window and capacitor); each entry
is one ``Characterization`` file, ``<key>.npz``.

Public API
----------
TileCache
"""

from __future__ import annotations

from pathlib import Path

from ..tile.crossbar import Tile
from ..tile.extract import Characterization, characterize
from .circuit_config import CircuitConfig


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
        self.hits = 0
        self.misses = 0

    def transfer(self, tile: Tile, circuit: CircuitConfig) -> Characterization:
        """Return the characterization of ``tile`` under ``circuit``'s readout, extracting it
        only when not cached."""
        if circuit.readout == "current":
            key = f"{tile.content_hash()}-{circuit.engine}"
        else:
            key = f"{tile.content_hash()}-{circuit.readout}-{circuit.t_int:.6g}-{circuit.c_int:.6g}"
        return self.lookup(key, lambda: _characterize(tile, circuit))

    def lookup(self, key: str, compute) -> Characterization:
        """Return the entry ``key``, calling ``compute()`` (a ``Characterization``) only when
        it is not cached; shared by tiles and other circuits cached by content."""
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        path = self.folder / f"{key}.npz" if self.folder else None
        if path is not None and path.is_file():
            result = Characterization.load(path)
            self.hits += 1
        else:
            result = compute()
            self.misses += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                result.save(path)
        self._memory[key] = result
        return result


def _characterize(tile: Tile, circuit: CircuitConfig) -> Characterization:
    if circuit.readout == "current":
        return characterize(tile, engine=circuit.engine, backend=circuit.backend)
    from ..tile.charge import characterize_charge

    mode = "integrator" if circuit.readout == "charge" else "passive"
    return characterize_charge(tile, circuit.t_int, circuit.c_int, mode=mode, backend=circuit.backend)
