"""Files a study writes: atomic writes, verified point files, the cache folder.

Public API
----------
TEMP_PREFIX, OWN_FILES, default_cache_dir, write_atomic, read_point_file, remove_own_files
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path

from ..files import TEMP_PREFIX, write_atomic  # noqa: F401 - re-exported (Public API)

OWN_FILES = ("results.csv", "results.parquet", "provenance.json", "spec.toml", "pareto.csv", "pareto.pdf",
             "pareto.png", "search.json")
"""Files of a results folder that a sweep or a design search writes (besides ``points/``)."""

_POINT_FILE = re.compile(r"^[0-9a-f]{16}\.(json|cir)$")
_log = logging.getLogger("circuitsim")


def default_cache_dir() -> Path:
    """``$CIRCUITSIM_CACHE``, else ``$XDG_CACHE_HOME/circuitsim``, else ``~/.cache/circuitsim``."""
    if os.environ.get("CIRCUITSIM_CACHE"):
        return Path(os.environ["CIRCUITSIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "circuitsim"


def read_point_file(file: Path, index: int, values: dict) -> dict | None:
    """The result row stored in ``file`` for point ``index`` with swept ``values``
    (by results column), or None after one warning line when the file is damaged or
    belongs to another point (the caller computes the point again)."""
    try:
        row = json.loads(file.read_text())
        problem = _check_row(row, index, values)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        problem = f"unreadable ({type(exc).__name__})"
    if problem is None:
        return row
    what = "is not kept" if problem.startswith("it records a failure of the machine") else "is damaged"
    _log.warning(f"warning: point file {file} {what} ({problem}); computing the point again")
    return None


#: errors that earlier versions stored as a point's result although the machine, not the
#: configuration, failed (ngspice crashed, was killed, garbled or cut off its output; a cache
#: that could not be written): such a point is computed again, never kept
_ENVIRONMENT_ERRORS = re.compile(
    r"^(ngspice exited with code|ngspice did not finish within|ngspice produced no result|"
    r"raw file .* (ends inside|is garbled|is cut off)|out of memory|"
    r"cannot (write|save|store) .*(cache|\.npz|\.part)|.*(Read-only file system|No space left on device|"
    r"Permission denied|Disk quota exceeded))",
    re.IGNORECASE)


def _check_row(row, index: int, values: dict) -> str | None:
    if not isinstance(row, dict):
        return "not a result row"
    if row.get("point") != index:
        return f"it is for point {row.get('point')!r}, not {index}"
    for name, value in values.items():
        if name not in row or row[name] != value:
            return f"{name} = {row.get(name)!r}, expected {value!r}"
    status = row.get("status")
    if status not in ("ok", "error"):
        return f"status {status!r}"
    if status == "error" and isinstance(row.get("error"), str) and _ENVIRONMENT_ERRORS.match(row["error"]):
        return f"it records a failure of the machine, not of the configuration: {row['error'][:120]!r}"
    accuracy = row.get("accuracy")
    if status == "ok" and not (isinstance(accuracy, float | int) and math.isfinite(accuracy)
                               and 0 <= accuracy <= 1):
        return f"accuracy {accuracy!r}"
    return None


def remove_own_files(out: Path) -> list[Path]:
    """Remove the files a sweep wrote in ``out`` (point files named by their key, the tables,
    provenance and spec); anything else is left alone and returned."""
    points = out / "points"
    kept = []
    if points.is_dir() and not points.is_symlink():  # never delete through a link to another folder
        for file in points.iterdir():
            if file.is_file() and (_POINT_FILE.match(file.name) or file.name.startswith(TEMP_PREFIX)):
                file.unlink()
            else:
                kept.append(file)
        if not kept:
            points.rmdir()
    for name in OWN_FILES:
        (out / name).unlink(missing_ok=True)
    return kept
