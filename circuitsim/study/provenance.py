"""What produced a result: versions, git commit, ngspice, machine.

Public API
----------
provenance
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance() -> dict:
    """Versions of circuitsim, Python, numpy, scipy and ngspice (with its solver), the git
    commit of the checkout when there is one, the host and the time."""
    import numpy
    import scipy

    from .._version import __version__
    from ..spice import find_ngspice

    info = find_ngspice()
    return {
        "circuitsim_version": __version__,
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "ngspice_version": f"ngspice-{info.version}" if info.version else None,
        "ngspice_solver": info.solver if info.version else None,
        "platform": platform.platform(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
