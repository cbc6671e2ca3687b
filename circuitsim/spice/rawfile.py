"""Reader for ngspice raw files (binary or ASCII, one or more plots).

Public API
----------
RawPlot, read_raw
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SimulationError


@dataclass(frozen=True, eq=False)
class RawPlot:
    """One plot of a raw file."""

    title: str
    """The deck title."""
    name: str
    """Plot name, e.g. ``"Operating Point"`` or ``"Transient Analysis"``."""
    vectors: dict[str, np.ndarray]
    """Vectors by lower-case name as ngspice writes them (``v(node)``, ``i(vsrc)``, ``time``)."""


def read_raw(path: str | Path) -> list[RawPlot]:
    """Read every plot of an ngspice raw file.

    Parameters
    ----------
    path : str or Path
        The raw file (``set filetype=binary`` or ``ascii``).

    Returns
    -------
    list of RawPlot
        The plots in file order.

    Raises
    ------
    SimulationError
        The file is garbled or cut off (a header, a name or a value missing).
    """
    data = Path(path).read_bytes()
    plots, pos = [], 0
    while pos < len(data):
        if not data[pos:].strip():
            break
        try:
            plot, pos = _read_plot(data, pos, path)
        except SimulationError:
            raise
        except (KeyError, ValueError, IndexError, TypeError, OverflowError) as exc:
            raise SimulationError(f"raw file {path} is garbled ({type(exc).__name__}: {exc})") from None
        plots.append(plot)
    return plots


def _read_plot(data: bytes, pos: int, path) -> tuple[RawPlot, int]:
    header: dict[str, str] = {}
    names: list[str] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise SimulationError(f"raw file {path} ends inside a header")
        line = data[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "variables":
            n_vars = int(header["no. variables"])
            for _ in range(n_vars):
                end = data.find(b"\n", pos)
                if end < 0:
                    raise SimulationError(f"raw file {path} ends inside its list of variables")
                fields = data[pos:end].decode("latin-1").split()
                names.append(fields[1].lower())
                pos = end + 1
        elif key in ("binary", "values"):
            break
        elif line.strip():
            header[key] = value.strip()
    n_vars, n_points = int(header["no. variables"]), int(header["no. points"])
    complex_data = "complex" in header.get("flags", "")
    width = 2 if complex_data else 1
    if n_vars < 1 or n_points < 0 or len(names) != n_vars:
        raise SimulationError(f"raw file {path} has a garbled header ({n_vars} variables, {len(names)} names)")
    count = n_vars * n_points * width
    if pos + count * (8 if key == "binary" else 2) > len(data):  # an ASCII value takes 2 bytes at least
        raise SimulationError(f"raw file {path} is cut off: {count} values announced, "
                              f"{max(0, len(data) - pos)} bytes written")
    if key == "binary":
        values = np.frombuffer(data, dtype="<f8", count=count, offset=pos).copy()
        pos += count * 8
        values = values.reshape(n_points, n_vars * width)
        if complex_data:
            values = values[:, 0::2] + 1j * values[:, 1::2]
    else:
        values, pos = _read_ascii_values(data, pos, n_vars, n_points, complex_data)
    vectors = {name: values[:, k] for k, name in enumerate(names)}
    return RawPlot(header.get("title", ""), header.get("plotname", ""), vectors), pos


def _read_ascii_values(data, pos, n_vars, n_points, complex_data):
    dtype = complex if complex_data else float
    values = np.zeros((n_points, n_vars), dtype=dtype)
    for p in range(n_points):
        for v in range(n_vars):
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            fields = data[pos:end].decode("latin-1").split()
            pos = end + 1
            text = fields[-1]
            if complex_data:
                re_, im_ = text.split(",")
                values[p, v] = complex(float(re_), float(im_))
            else:
                values[p, v] = float(text)
    return values, pos
