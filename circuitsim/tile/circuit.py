"""Plain-data description of a linear circuit, shared by every engine.

A :class:`Circuit` is a list of named nodes and groups of elements of one kind
(resistors, capacitors, independent voltage sources, voltage-controlled voltage
sources). The netlist writer turns it into an ngspice deck; the native engine
turns the very same object into a modified-nodal-analysis matrix. Element groups
hold numpy arrays so that circuits of 10^5 elements are built in milliseconds.

Public API
----------
ElementGroup, Circuit, CircuitBuilder, GROUND
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NetlistError

GROUND = "0"
"""Name of the reference node (index 0)."""

#: number of node columns per element kind: R, C, V -> (plus, minus);
#: E -> (out plus, out minus, control plus, control minus)
TERMINALS = {"R": 2, "C": 2, "V": 2, "E": 4}


@dataclass(frozen=True, eq=False)
class ElementGroup:
    """Elements of one kind, written together under one comment.

    Attributes
    ----------
    kind : str
        SPICE element letter: ``"R"`` (value in ohm), ``"C"`` (farad),
        ``"V"`` (DC volts; the branch current flows from the ``+`` node through the
        source to the ``-`` node, as in SPICE) or ``"E"`` (voltage gain, V/V).
    names : tuple of str
        Element names, each starting with ``kind``.
    nodes : numpy.ndarray
        Integer node indices, shape ``(n, 2)`` or ``(n, 4)`` for ``"E"``.
    values : numpy.ndarray
        Element values, shape ``(n,)``, SI units.
    comment : str
        What the group is; written as a comment above it in decks.
    """

    kind: str
    names: tuple[str, ...]
    nodes: np.ndarray
    values: np.ndarray
    comment: str = ""

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class Circuit:
    """A linear circuit: nodes plus element groups.

    Attributes
    ----------
    title : str
        First line of the deck.
    node_names : tuple of str
        Node names; index 0 is the ground node ``"0"``.
    groups : tuple of ElementGroup
        The elements.
    header : tuple of str
        Comment lines describing the parameters, written at the top of decks.
    """

    title: str
    node_names: tuple[str, ...]
    groups: tuple[ElementGroup, ...]
    header: tuple[str, ...] = ()

    @property
    def n_nodes(self) -> int:
        """Number of nodes including ground."""
        return len(self.node_names)

    def group(self, kind: str) -> list[ElementGroup]:
        """Return the groups of one element kind."""
        return [g for g in self.groups if g.kind == kind]

    def element_names(self, kind: str) -> list[str]:
        """Return the names of all elements of one kind, in deck order."""
        return [name for g in self.group(kind) for name in g.names]


@dataclass
class CircuitBuilder:
    """Incrementally assemble a :class:`Circuit` from vectorized element groups."""

    title: str
    header: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=lambda: {GROUND: 0})
    _groups: list[ElementGroup] = field(default_factory=list)

    def nodes(self, names) -> np.ndarray:
        """Return the indices of node names (creating new nodes), same shape as ``names``."""
        arr = np.asarray(names, dtype=object)
        index = self._index
        flat = [index.setdefault(name, len(index)) for name in arr.ravel()]
        return np.asarray(flat, dtype=np.int64).reshape(arr.shape)

    def add(self, kind: str, names, nodes, values, comment: str = "") -> None:
        """Add a group of elements; empty groups are ignored."""
        names = tuple(np.asarray(names, dtype=object).ravel())
        if not names:
            return
        node_idx = np.asarray(nodes, dtype=np.int64).reshape(len(names), TERMINALS[kind])
        vals = np.asarray(values, dtype=float).ravel()
        if vals.shape != (len(names),):
            vals = np.broadcast_to(vals, (len(names),)).copy()
        if not np.all(np.isfinite(vals)):
            raise NetlistError(f"{comment or kind}: element values must be finite")
        self._groups.append(ElementGroup(kind, names, node_idx, vals, comment))

    def build(self) -> Circuit:
        """Freeze the circuit."""
        names = [""] * len(self._index)
        for name, i in self._index.items():
            names[i] = name
        return Circuit(self.title, tuple(names), tuple(self._groups), tuple(self.header))
