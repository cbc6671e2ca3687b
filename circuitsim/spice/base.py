"""What every ngspice backend shares: the job, the output check, vector names.

A job is a deck (elements and dot lines, ending with ``.end``, no ``.control``
block) and a list of steps; each step is a list of ngspice commands ending
with an analysis (``op``, ``tran ...``), and gives one plot of vectors.

Public API
----------
SpiceBackend, check_output, normalize_vector_name, with_options, run_deck, kept_deck
"""

from __future__ import annotations

import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConvergenceError, SimulationError

#: ngspice output lines that mean the analysis did not converge
_CONVERGENCE = re.compile(
    r"singular matrix|timestep too small|could not be simulated|simulation\(s\) aborted|"
    r"no convergence|iteration limit",
    re.IGNORECASE,
)
#: lines that mean the deck is wrong (ngspice often just warns and ignores the line)
_ERROR = re.compile(
    r"^\s*error|not a valid .* line|unknown (subckt|model|device|parameter)|"
    r"unable to find definition|cannot (find|open)|no such (vector|device)",
    re.IGNORECASE,
)
#: ngspice's own harmless chatter that contains the word "error"
_HARMLESS = re.compile(r"please file your bug-reports|bug reports", re.IGNORECASE)


def check_output(output: str, deck: str, version: str = "") -> None:
    """Raise when ngspice's output reports a failure.

    Raises
    ------
    ConvergenceError
        For singular matrices and non-convergence.
    SimulationError
        For deck errors (unknown elements, invalid lines, missing models).
    """
    lines = [ln for ln in output.splitlines() if ln.strip() and not _HARMLESS.search(ln)]
    bad = [ln.strip() for ln in lines if _CONVERGENCE.search(ln)]
    if bad:
        raise ConvergenceError(f"ngspice did not converge: {bad[0]}", deck, output, version)
    bad = [ln.strip() for ln in lines if _ERROR.search(ln)]
    if bad:
        raise SimulationError(f"ngspice rejected the deck: {bad[0]}", deck, output, version)


def normalize_vector_name(name: str) -> str:
    """Return ``v(node)`` / ``i(source)`` for the many spellings ngspice uses."""
    name = name.lower()
    if name.endswith("#branch"):
        return f"i({name[:-7]})"
    if name.startswith(("v(", "i(")) or name in ("time", "frequency", "v-sweep", "i-sweep"):
        return name
    return f"v({name})"


def with_options(deck: str, klu: bool) -> str:
    """Insert ``.options klu`` before the final ``.end`` when ``klu`` is true."""
    if not klu:
        return deck
    body = deck.rstrip()
    if not body.lower().endswith(".end"):
        raise SimulationError("a deck must end with .end", deck)
    return body[:-4] + ".options klu\n.end\n"


class SpiceBackend(ABC):
    """An ngspice runner: ``setup`` (find ngspice) → ``run`` (simulate) → parse."""

    name: str = ""

    @abstractmethod
    def run(
        self, deck: str, steps: Sequence[Sequence[str]], save: Sequence[str] = ()
    ) -> list[dict[str, np.ndarray]]:
        """Simulate ``deck`` once per step.

        Parameters
        ----------
        deck : str
            Elements and dot lines, ending with ``.end``.
        steps : sequence of sequence of str
            ngspice commands per step, the last one an analysis.
        save : sequence of str
            Vectors to keep (``v(node)``, ``i(source)``); all when empty.

        Returns
        -------
        list of dict
            Per step, vectors by normalized name.
        """

    @property
    @abstractmethod
    def version(self) -> str:
        """ngspice version string."""


def run_deck(text: str, steps, save, backend: SpiceBackend, keep_dir: Path | None,
             tag: str) -> list[dict[str, np.ndarray]]:
    """Run ``text`` on ``backend`` (``steps``, ``save`` and the vectors returned as
    :meth:`SpiceBackend.run`). A :class:`SimulationError` (ngspice's message, deck and output)
    keeps the deck as ``failed-<tag>.cir`` in ``keep_dir`` (else a new temporary folder) and
    names that file."""
    try:
        return backend.run(text, steps, save=save)
    except SimulationError as exc:  # ConvergenceError included: keep the deck for inspection
        raise kept_deck(exc, text, keep_dir, tag) from None


def kept_deck(exc: SimulationError, text: str, keep_dir: Path | None, tag: str) -> SimulationError:
    """``exc`` (its type) naming the file its deck (or ``text``) is now kept in: ``failed-<tag>.cir`` in
    ``keep_dir``, else in a new temporary folder."""
    folder = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="circuitsim-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"failed-{tag}.cir"
    path.write_text(exc.deck or text)
    return type(exc)(f"{exc}; deck kept in {path}", exc.deck or text, exc.output, exc.version)
