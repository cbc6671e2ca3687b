"""circuitsim: SPICE-backed co-simulation of analog in-memory-computing crossbars.

Public API
----------
Tile, TIA, simulate, characterize, Characterization, TileResult, load_network, from_torch, and the errors
CircuitsimError, ConfigError, EnvironmentFailure, NetlistError, SimulatorNotFoundError,
SimulationError, ConvergenceError.

Importing circuitsim loads numpy and scipy only; PySpice, matplotlib and dask are
imported where they are used (onnx by :func:`load_network`, torch by :func:`from_torch`).
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .network.network import Network


def load_network(path: str | Path) -> Network:
    """Load a network from an ONNX model (``.onnx``) or a circuitsim weights file (``.npz``).

    See :func:`circuitsim.network.onnx_import.load_network`; returns a
    :class:`~circuitsim.network.network.Network` whose ``forward(x)`` takes inputs shaped
    like the model's and returns its outputs in float64.
    """
    from .network.onnx_import import load_network as _load

    return _load(path)


def from_torch(module: Any, example_input: Any, *, exporter: str = "auto", path: str | Path | None = None,
               name: str | None = None) -> Network:
    """Import a PyTorch module (exported to ONNX, then loaded) as a circuitsim network.

    See :func:`circuitsim.network.torch_import.from_torch`: the default exporter first,
    the legacy one when that fails; the result computes what the module computes.
    PyTorch is imported only when this runs.
    """
    from .network.torch_import import from_torch as _from_torch

    return _from_torch(module, example_input, exporter=exporter, path=path, name=name)


__all__ = [
    "load_network", "from_torch", "Tile", "TIA", "simulate", "characterize", "Characterization", "TileResult",
    "CircuitsimError", "ConfigError", "EnvironmentFailure", "NetlistError", "SimulatorNotFoundError",
    "SimulationError", "ConvergenceError", "__version__",
]
