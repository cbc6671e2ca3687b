"""circuitsim: SPICE-backed co-simulation of analog in-memory-computing crossbars."""

from __future__ import annotations

__version__ = "0.1.0"
