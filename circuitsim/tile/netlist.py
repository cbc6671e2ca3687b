"""Write a :class:`~circuitsim.tile.circuit.Circuit` as a readable ngspice deck.

Public API
----------
write_netlist, format_value
"""

from __future__ import annotations

import io
from typing import TextIO

from .circuit import Circuit


def format_value(value: float) -> str:
    """Format a number for a deck with 15 significant digits (round-trips doubles well enough)."""
    return f"{value:.15g}"


def write_netlist(
    circuit: Circuit,
    stream: TextIO | None = None,
    *,
    options: tuple[str, ...] = (),
    control: tuple[str, ...] = (),
) -> str:
    """Write ``circuit`` as an ngspice deck.

    Parameters
    ----------
    circuit : Circuit
        The circuit.
    stream : file-like, optional
        Where to write; the deck is also returned as a string.
    options : tuple of str
        Dot lines placed after the elements (e.g. ``".options klu"``, ``".op"``).
    control : tuple of str
        Commands for a ``.control`` block (omitted when empty).

    Returns
    -------
    str
        The deck text.
    """
    out = io.StringIO()
    names = circuit.node_names
    out.write(f"{circuit.title}\n")
    for line in circuit.header:
        out.write(f"* {line}\n")
    for group in circuit.groups:
        out.write(f"\n* {group.comment or group.kind}\n")
        value_prefix = "DC " if group.kind == "V" else ""
        for name, nodes, value in zip(group.names, group.nodes, group.values):
            node_text = " ".join(names[n] for n in nodes)
            out.write(f"{name} {node_text} {value_prefix}{format_value(value)}\n")
    if options:
        out.write("\n" + "\n".join(options) + "\n")
    if control:
        out.write("\n.control\n" + "\n".join(control) + "\n.endc\n")
    out.write(".end\n")
    text = out.getvalue()
    if stream is not None:
        stream.write(text)
    return text
