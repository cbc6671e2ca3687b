"""Find ngspice (executable and shared library) and tell what it can do.

Public API
----------
MIN_VERSION, NgspiceInfo, find_ngspice, require_ngspice, find_library
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimulatorNotFoundError

MIN_VERSION = 42
"""Oldest ngspice release accepted (the first with the KLU solver)."""

INSTALL_HINT = (
    "install ngspice >= 42 with libngspice: `bash scripts/install-ngspice.sh` on Debian 12, "
    "your distribution's ngspice and libngspice0 packages elsewhere, "
    "or `conda install -c conda-forge ngspice ngspice-lib`"
)


@dataclass(frozen=True)
class NgspiceInfo:
    """What is known about the installed ngspice."""

    executable: str | None
    """Path of the ``ngspice`` executable, or None."""
    version: int | None
    """Major version of the executable (e.g. 46), or None."""
    banner: str
    """What ``ngspice -v`` printed."""
    klu: bool
    """True when the executable was built with the KLU solver."""
    library: str | None
    """Path of ``libngspice.so.0`` (or the platform's equivalent), or None."""

    @property
    def solver(self) -> str:
        """Name of the sparse solver circuitsim asks for."""
        return "KLU" if self.klu else "Sparse 1.3"


def find_library() -> str | None:
    """Return the path of the ngspice shared library, or None.

    ``NGSPICE_LIBRARY_PATH`` wins when set; then ``$CONDA_PREFIX/lib`` and the
    dynamic linker's cache.
    """
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        return env if Path(env).exists() else None
    names = ("libngspice.so.0", "libngspice.so", "libngspice.dylib", "ngspice.dll")
    prefix = os.environ.get("CONDA_PREFIX") or sys.prefix
    for name in names:
        candidate = Path(prefix) / "lib" / name
        if candidate.exists():
            return str(candidate)
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        cache = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        cache = ""
    for name in names:
        match = re.search(rf"\s{re.escape(name)} \(.*\) => (\S+)", cache)
        if match:
            return match.group(1)
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/local/lib", "/opt/homebrew/lib"):
        for name in names:
            if (Path(folder) / name).exists():
                return str(Path(folder) / name)
    return None


@functools.cache
def find_ngspice() -> NgspiceInfo:
    """Probe the installed ngspice (cached for the process)."""
    exe = shutil.which("ngspice")
    version, banner, klu = None, "", False
    if exe:
        try:
            banner = subprocess.run(
                [exe, "-v"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            banner = ""
        match = re.search(r"ngspice-(\d+)", banner)
        version = int(match.group(1)) if match else None
        klu = "KLU" in banner
    return NgspiceInfo(exe, version, banner.strip(), klu, find_library())


def require_ngspice(shared: bool = False) -> NgspiceInfo:
    """Return :func:`find_ngspice` or raise :class:`SimulatorNotFoundError`.

    Parameters
    ----------
    shared : bool
        Also require the shared library (for the in-process backend).
    """
    info = find_ngspice()
    if info.executable is None:
        raise SimulatorNotFoundError(f"ngspice not found on PATH; {INSTALL_HINT}")
    if info.version is None or info.version < MIN_VERSION:
        raise SimulatorNotFoundError(
            f"ngspice {info.version or '(unknown version)'} at {info.executable} is older than "
            f"{MIN_VERSION}; {INSTALL_HINT}"
        )
    if shared and info.library is None:
        raise SimulatorNotFoundError(
            f"libngspice (the ngspice shared library) not found; set NGSPICE_LIBRARY_PATH or {INSTALL_HINT}"
        )
    return info
