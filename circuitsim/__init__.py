"""circuitsim: SPICE-backed co-simulation of analog in-memory-computing crossbars.

Public API
----------
Tile, TIA, simulate, characterize, Characterization, TileResult, load_network, and the errors
CircuitsimError, ConfigError, EnvironmentFailure, NetlistError, SimulatorNotFoundError,
SimulationError, ConvergenceError.

Importing circuitsim loads numpy and scipy only; PySpice, matplotlib and dask are
imported where they are used (and onnx by :func:`load_network`).
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



def load_network(path):
    """Load a network from an ONNX model (``.onnx``) or a circuitsim weights file (``.npz``).

    See :func:`circuitsim.network.onnx_import.load_network`; returns a
    :class:`~circuitsim.network.network.Network` whose ``forward(x)`` takes inputs shaped
    like the model's and returns its outputs in float64.
    """
    from .network.onnx_import import load_network as _load

    return _load(path)


__all__ = [
    "load_network", "Tile", "TIA", "simulate", "characterize", "Characterization", "TileResult",
    "CircuitsimError", "ConfigError", "EnvironmentFailure", "NetlistError", "SimulatorNotFoundError",
    "SimulationError", "ConvergenceError", "__version__",
]
