"""Subprocess backend: ``ngspice -b`` on a deck file, results from its raw file.

A run's failure is told apart by ngspice's exit status, signal and output: a deck that does
not converge or that ngspice rejects (ngspice says so; exit status 0 or 1) is a
:class:`~circuitsim.errors.SimulationError` (a configuration failure, stored with its deck);
ngspice crashing or killed (a signal), another exit status, status 1 without a reason, a
timeout, or a missing, garbled or cut-off raw file is a
:class:`~circuitsim.errors.SimulatorFailure` (an environment failure, never stored).

Public API
----------
BatchBackend
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SimulationError, SimulatorFailure
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
                    capture_output=True, timeout=self.timeout, cwd=folder,
                )
            except subprocess.TimeoutExpired:
                raise SimulatorFailure(
                    f"ngspice did not finish within {self.timeout:g} s and was stopped", full, "", self.version
                ) from None
            except OSError as exc:
                raise SimulatorFailure(f"cannot run {self.info.executable}: {exc.strerror or exc}; "
                                       "check the ngspice installation", full, "", self.version) from None
            output = (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
            plots = self._classify(proc.returncode, output, raw, len(steps), full)
        return [
            {normalize_vector_name(k): v for k, v in plot.vectors.items()} for plot in plots
        ]

    def _classify(self, status: int, output: str, raw: Path, n_steps: int, deck: str) -> list:
        """The plots of ``raw``, or the failure: the deck's (ngspice said why, exit status 0 or 1)
        or ngspice's own (a signal, another exit status, a missing, garbled or cut-off result)."""
        signal_number = -status if status < 0 else status - 128 if status > 128 else 0
        if signal_number:  # killed or crashed (a shell wrapper reports a signal as 128 + n)
            try:
                name = signal.Signals(signal_number).name
            except ValueError:
                name = f"signal {signal_number}"
            raise SimulatorFailure(f"ngspice crashed or was killed ({name}); nothing is stored: check the "
                                   "ngspice installation and the machine, then run again", deck, output, self.version)
        if status not in (0, 1):  # ngspice exits 1 on a deck's error, 0 otherwise
            raise SimulatorFailure(f"ngspice exited with status {status}, which it never uses for a deck's error; "
                                   "check the ngspice installation", deck, output, self.version)
        check_output(output, deck, self.version)  # the deck's failures: convergence, invalid lines
        if status != 0:
            raise SimulatorFailure("ngspice exited with status 1 without naming an error in the deck; check the "
                                   "ngspice installation and the machine, then run again", deck, output, self.version)
        try:
            plots = read_raw(raw) if raw.exists() else []
        except SimulationError as exc:
            raise SimulatorFailure(f"ngspice wrote a damaged result: {exc}; check the ngspice installation "
                                   "and free disk space, then run again", deck, output, self.version) from None
        except OSError as exc:
            raise SimulatorFailure(f"cannot read ngspice's result {raw}: {exc.strerror or exc}",
                                   deck, output, self.version) from None
        if len(plots) != n_steps:
            raise SimulatorFailure(f"ngspice stopped after {len(plots)} of {n_steps} results without naming an "
                                   "error in the deck; check the ngspice installation and the machine, then run "
                                   "again", deck, output, self.version)
        return plots

        return [
            {normalize_vector_name(k): v for k, v in plot.vectors.items()} for plot in plots
        ]
