"""Subprocess backend: ``ngspice -b`` on a deck file, results from its raw file.

Public API
----------
BatchBackend
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SimulationError
from .base import SpiceBackend, check_output, normalize_vector_name, with_options
from .discovery import require_ngspice
from .rawfile import read_raw

#: longest line written into a .control block
_LINE = 900


def _save_lines(save: Sequence[str]) -> list[str]:
    lines, line = [], "save"
    for name in save:
        if len(line) + len(name) + 1 > _LINE:
            lines.append(line)
            line = "save"
        line += " " + name
    if line != "save":
        lines.append(line)
    return lines


class BatchBackend(SpiceBackend):
    """Run ngspice as a subprocess in batch mode.

    Parameters
    ----------
    timeout : float
        Seconds before a run is abandoned.
    keep_dir : str or Path, optional
        Folder where decks and raw files are kept (a temporary folder otherwise).
    """

    name = "subprocess"

    def __init__(self, timeout: float = 3600.0, keep_dir: str | Path | None = None):
        self.info = require_ngspice()
        self.timeout = timeout
        self.keep_dir = Path(keep_dir) if keep_dir else None

    @property
    def version(self) -> str:
        return f"ngspice-{self.info.version}"

    def control_block(self, steps, save, raw: Path) -> list[str]:
        """The ``.control`` commands that run ``steps`` and append each plot to ``raw``."""
        lines = ["set filetype=binary", "set appendwrite", *_save_lines(save)]
        for step in steps:
            lines.extend(step)
            lines.append(f"write {raw}")
        return lines

    def run(self, deck, steps, save=()) -> list[dict[str, np.ndarray]]:
        deck = with_options(deck, self.info.klu)
        with tempfile.TemporaryDirectory(prefix="circuitsim-") as tmp:
            folder = self.keep_dir or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            raw, deck_file = folder / "result.raw", folder / "deck.cir"
            raw.unlink(missing_ok=True)
            control = "\n".join([".control", *self.control_block(steps, save, raw), ".endc"])
            full = deck.rstrip()[:-4] + control + "\n.end\n"
            deck_file.write_text(full)
            try:
                proc = subprocess.run(
                    [self.info.executable, "-b", str(deck_file)],
                    capture_output=True, text=True, timeout=self.timeout, cwd=folder,
                )
            except subprocess.TimeoutExpired:
                raise SimulationError(
                    f"ngspice did not finish within {self.timeout:g} s", full, "", self.version
                ) from None
            output = proc.stdout + proc.stderr
            check_output(output, full, self.version)
            plots = read_raw(raw) if raw.exists() else []
            if proc.returncode != 0 or len(plots) != len(steps):
                raise SimulationError(
                    f"ngspice exited with code {proc.returncode} and wrote "
                    f"{len(plots)} of {len(steps)} results", full, output, self.version,
                )
        return [
            {normalize_vector_name(k): v for k, v in plot.vectors.items()} for plot in plots
        ]
