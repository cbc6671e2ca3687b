"""The paper style of every figure, SI-prefixed axis units, atomic figure files.

Public API
----------
STYLE, COLUMN_WIDTH, paper_style, si_prefix, save_figure
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from ..files import check_replaceable

STYLE = "paper.mplstyle"
"""Name of the style file shipped in the package."""
COLUMN_WIDTH = 3.5
"""Single-column figure width of a two-column paper, inches."""
_PREFIXES = ((1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"), (1e-15, "f"))



@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Context manager applying the shipped ``paper.mplstyle`` (found with importlib.resources)."""
    with resources.as_file(resources.files("circuitsim.plots") / STYLE) as path:
        with matplotlib.style.context(str(path)):
            yield


def si_prefix(values, unit: str, log: bool = False) -> tuple[float, str]:
    """Factor and prefixed unit putting the largest (log: smallest) |value| in [1, 1000)."""
    v = np.abs(np.asarray(values, float))
    v = v[np.isfinite(v) & (v > 0)]
    peak = (v.min() if log else v.max()) if v.size else 0.0
    if peak == 0:
        return 1.0, unit
    factor, prefix = next((fp for fp in _PREFIXES if peak >= fp[0] * (1 - 1e-9)), _PREFIXES[-1])
    return factor, prefix + unit


def save_figure(fig: Figure, folder: str | Path, name: str) -> list[Path]:
    """Write ``name.pdf`` and ``name.png`` (300 dpi) into ``folder`` (created), atomically.

    Each file is rendered to a hidden temporary name in the same folder and renamed
    into place, so readers never see a partial file. Returns the two paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, meta in (("pdf", {"CreationDate": None}), ("png", {})):
        path = folder / f"{name}.{ext}"
        check_replaceable(path, "plots folder")  # a regular file, never a device or a link's target
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.{ext}.part"
        try:
            with paper_style():
                fig.savefig(tmp, format=ext, dpi=300, metadata=meta)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(path)
    return paths
