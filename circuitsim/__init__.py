"""circuitsim: SPICE-backed co-simulation of analog in-memory-computing crossbars.

Public API
----------
Tile, TIA, simulate, characterize, Characterization, TileResult, and the errors
CircuitsimError, ConfigError, EnvironmentFailure, NetlistError, SimulatorNotFoundError,
SimulationError, ConvergenceError.

Importing circuitsim loads numpy and scipy only; PySpice, matplotlib and dask are
imported where they are used.
"""

from __future__ import annotations

from ._version import __version__
from .errors import (
    CircuitsimError,
    ConfigError,
    ConvergenceError,
    EnvironmentFailure,
    NetlistError,
    SimulationError,
    SimulatorNotFoundError,
)
from .tile.crossbar import TIA, Tile
from .tile.extract import Characterization, TileResult, characterize, simulate

__all__ = [
    "Tile", "TIA", "simulate", "characterize", "Characterization", "TileResult",
    "CircuitsimError", "ConfigError", "EnvironmentFailure", "NetlistError", "SimulatorNotFoundError",
    "SimulationError", "ConvergenceError", "__version__",
]
