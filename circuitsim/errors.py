"""Exception hierarchy of circuitsim.

Every error the package raises on purpose derives from :class:`CircuitsimError`,
so callers (and the command line) can catch one class and print one line.

Public API
----------
CircuitsimError, ConfigError, EnvironmentFailure, NetlistError,
SimulatorNotFoundError, SimulationError, SimulatorFailure, ConvergenceError
"""

from __future__ import annotations


class CircuitsimError(Exception):
    """Base class of every error raised by circuitsim."""


class ConfigError(CircuitsimError, ValueError):
    """A configuration value or an input file is invalid; the message says how to fix it."""


class EnvironmentFailure(CircuitsimError):
    """The machine, not the configuration, failed: simulator missing, a folder not writable,
    disk full, out of memory, another run holding the results folder.

    A sweep stops at once on it and never records it as a point result: the same command
    succeeds once the environment is fixed.
    """


class NetlistError(CircuitsimError):
    """A circuit cannot be written as a netlist."""


class SimulatorNotFoundError(EnvironmentFailure):
    """ngspice (executable or shared library) is missing or too old."""


class SimulationError(CircuitsimError):
    """ngspice failed on a deck.

    Parameters
    ----------
    message : str
        One-line summary of the failure.
    deck : str
        The netlist that was simulated.
    output : str
        What ngspice printed (its own error messages).
    version : str
        The ngspice version, when known.
    """

    def __init__(self, message: str, deck: str = "", output: str = "", version: str = ""):
        super().__init__(message)
        self.deck = deck
        self.output = output
        self.version = version

    def details(self) -> str:
        """Return the message followed by ngspice's output and the deck."""
        parts = [str(self)]
        if self.version:
            parts.append(f"ngspice version: {self.version}")
        if self.output:
            parts.append("--- ngspice output ---\n" + self.output.rstrip())
        if self.deck:
            parts.append("--- deck ---\n" + self.deck.rstrip())
        return "\n".join(parts)


class ConvergenceError(SimulationError):
    """ngspice did not converge (or found a singular matrix)."""


class SimulatorFailure(EnvironmentFailure, SimulationError):
    """ngspice itself failed, not the deck: it crashed or was killed (a signal), exited with a
    status it never uses for a deck's error, or wrote a garbled or cut-off result.

    An :class:`EnvironmentFailure` (a sweep stops and stores nothing for the point) that
    carries the deck and ngspice's output like a :class:`SimulationError`, for the report.
    """
