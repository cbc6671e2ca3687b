"""In-process backend: ngspice's shared library driven through PySpice.

libngspice keeps global state, so there is one instance per process and runs
are serialized with a lock. PySpice's own error detection treats ngspice's
``Note:`` lines and solver banner as errors, so its exceptions are caught and
the output is checked here instead.

Public API
----------
SharedBackend
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np

from ..errors import SimulationError, SimulatorNotFoundError
from .base import SpiceBackend, check_output, normalize_vector_name, with_options
from .discovery import require_ngspice

_LOCK = threading.Lock()
_MAX_COMMAND = 1000


class SharedBackend(SpiceBackend):
    """Run ngspice in this process through PySpice's ``NgSpiceShared``."""

    name = "shared"

    def __init__(self):
        self.info = require_ngspice(shared=True)
        os.environ.setdefault("NGSPICE_LIBRARY_PATH", self.info.library)
        # PySpice logs every ngspice stderr line as an error and warns about new versions
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
        except ImportError as exc:
            raise SimulatorNotFoundError(f"PySpice is not installed ({exc}); pip install PySpice") from None
        try:
            self.ngspice = NgSpiceShared.new_instance()
        except (OSError, NameError, AttributeError) as exc:  # AttributeError: not libngspice
            library = os.environ.get("NGSPICE_LIBRARY_PATH", self.info.library)
            raise SimulatorNotFoundError(
                f"cannot load libngspice from {library}: {str(exc).splitlines()[0]}; "
                "point NGSPICE_LIBRARY_PATH at libngspice.so.0 or unset it"
            ) from None
        self._output: list[str] = []

    @property
    def version(self) -> str:
        return f"ngspice-{self.ngspice.ngspice_version}"

    def _command(self, command: str) -> None:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError

        try:
            self.ngspice.exec_command(command)
        except NgSpiceCommandError:
            pass  # judged from the output below
        self._output.extend(self.ngspice._stdout + self.ngspice._stderr)

    def _vectors(self, save) -> dict[str, np.ndarray]:
        from PySpice.Spice.NgSpice.Shared import ffi

        ng = self.ngspice
        lib = ng._ngspice_shared
        plot = ng.last_plot
        wanted = {normalize_vector_name(s) for s in save}
        vectors = {}
        names = ng._convert_string_array(lib.ngSpice_AllVecs(plot.encode()))
        for raw_name in names:
            name = normalize_vector_name(raw_name)
            if wanted and name not in wanted:
                continue
            info = lib.ngGet_Vec_Info(f"{plot}.{raw_name}".encode())
            length = info.v_length
            if info.v_realdata != ffi.NULL:
                buffer = ffi.buffer(info.v_realdata, length * 8)
                vectors[name] = np.frombuffer(buffer, dtype=np.float64).copy()
            else:
                buffer = ffi.buffer(info.v_compdata, length * 16)
                vectors[name] = np.frombuffer(buffer, dtype=np.complex128).copy()
        return vectors

    def run(self, deck, steps, save=()) -> list[dict[str, np.ndarray]]:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError

        deck = with_options(deck, self.info.klu)
        results = []
        with _LOCK:
            self._output = []
            ng = self.ngspice
            try:
                ng.load_circuit(deck)
            except NgSpiceCircuitError:
                pass
            self._output.extend(ng._stdout + ng._stderr)
            try:
                check_output("\n".join(self._output), deck, self.version)
                for name in save:
                    self._command(f"save {name}")
                for step in steps:
                    before = ng.plot_names
                    for command in step:
                        if len(command) > _MAX_COMMAND:
                            raise SimulationError(f"ngspice command too long: {command[:60]}...", deck)
                        self._command(command)
                    check_output("\n".join(self._output), deck, self.version)
                    if ng.plot_names == before:
                        raise SimulationError(
                            f"ngspice produced no result for step {step!r}",
                            deck, "\n".join(self._output), self.version,
                        )
                    results.append(self._vectors(save))
            finally:
                self._command("destroy all")
                self._command("remcirc")
        return results
