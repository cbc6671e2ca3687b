"""Files a study writes: atomic writes and the cache folder.

Public API
----------
TEMP_PREFIX, default_cache_dir, write_atomic
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_PREFIX = ".part-"
"""Names of files being written (left behind only by a killed sweep, removed by the next)."""


def default_cache_dir() -> Path:
    """``$CIRCUITSIM_CACHE``, else ``$XDG_CACHE_HOME/circuitsim``, else ``~/.cache/circuitsim``."""
    if os.environ.get("CIRCUITSIM_CACHE"):
        return Path(os.environ["CIRCUITSIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "circuitsim"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file of its own and a rename."""
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
