"""Result containers shared by every engine.

Public API
----------
OperatingPoint
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class OperatingPoint:
    """DC node voltages and source branch currents of one circuit.

    Names are case-insensitive (ngspice lower-cases them); source currents
    follow SPICE's sign: positive from the ``+`` node through the source.
    """

    node_names: tuple[str, ...]
    """Node names, ground excluded."""
    voltages: np.ndarray
    """Node voltages in volts, aligned with ``node_names``."""
    source_names: tuple[str, ...]
    """Names of voltage sources (independent and controlled)."""
    currents: np.ndarray
    """Branch currents in amperes, aligned with ``source_names``."""
    _lookup: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self._lookup.update({("v", n.lower()): k for k, n in enumerate(self.node_names)})
        self._lookup.update({("i", n.lower()): k for k, n in enumerate(self.source_names)})

    def voltage(self, names) -> np.ndarray:
        """Voltages of node names (a name or a sequence of names), volts."""
        return self._get("v", names, self.voltages)

    def current(self, names) -> np.ndarray:
        """Branch currents of source names (a name or a sequence), amperes."""
        return self._get("i", names, self.currents)

    def _get(self, kind: str, names, values: np.ndarray):
        if isinstance(names, str):
            if kind == "v" and names == "0":
                return 0.0
            return float(values[self._lookup[kind, names.lower()]])
        return np.array([self._get(kind, n, values) for n in names])
