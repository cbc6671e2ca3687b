"""Files circuitsim writes: only regular files, at exactly the path given, atomically.

Every file a command writes (``--out`` of ``characterize``, ``layer`` and ``export-onnx``,
the files of a results folder, cache entries) goes through :func:`write_atomic`, which
writes a temporary file beside the target and renames it over the target. A rename
replaces whatever the name points at, so the target is checked first: a missing name or
a regular file is written; a device (``/dev/null``, ``/dev/full``), a FIFO, a socket, a
folder or a symbolic link is refused with one line and left as it is.

Public API
----------
TEMP_PREFIX, output_file, check_replaceable, write_atomic
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from .errors import ConfigError, EnvironmentFailure

TEMP_PREFIX = ".part-"
"""Names of files being written (left behind only by a killed process, removed by the next sweep)."""

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_replaceable(path: str | Path, option: str = "--out") -> None:
    """Raise unless ``path`` is missing or a regular file (not a symbolic link to one).

    Raises
    ------
    ConfigError
        ``path`` is a folder, a symbolic link, a device, a FIFO or a socket.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a new file (its folder is checked by the caller)
        return
    except OSError as exc:
        raise EnvironmentFailure(f"cannot inspect {path}: {exc.strerror or exc}; choose another {option}") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path} is {_kind(mode)}, not a regular file: circuitsim writes only regular files; "
                          f"choose another {option}")


def output_file(path: str | Path, option: str = "--out", example: str = "T.npz") -> Path:
    """``path`` as a file that can be written, checked before any work is done.

    The path is used exactly as given (no suffix is added), so the file written is the
    file a command prints.

    Parameters
    ----------
    path : str or Path
        The output file named on the command line.
    option : str
        The option that named it, for the messages.
    example : str
        An example file name, for the messages.

    Raises
    ------
    ConfigError
        The path is empty, a folder, not a regular file, or its folder does not exist.
    EnvironmentFailure
        Its folder cannot be written.
    """
    if not str(path).strip():
        raise ConfigError(f"{option} is empty; give the output file, e.g. {option} {example}")
    out = Path(path)
    if out.is_dir() and not out.is_symlink():
        raise ConfigError(f"{option} {path} is a folder; give a file name, e.g. {out / example}")
    check_replaceable(out, option)
    if not out.parent.is_dir():
        raise ConfigError(f"output folder {out.parent} does not exist (or is a file); create it first")
    probe = out.parent / f"{TEMP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.open("xb").close()
        probe.unlink()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write in {out.parent}: {exc.strerror or exc}; "
                                 f"choose a writable {option}") from None
    return out


def write_atomic(path: str | Path, data: str | bytes, option: str = "--out") -> None:
    """Write ``data`` to ``path`` through a temporary file of its own and a rename.

    Raises
    ------
    ConfigError
        ``path`` exists and is not a regular file (see :func:`check_replaceable`).
    EnvironmentFailure
        The folder is not writable or the disk is full (nothing is left half-written).
    """
    path = Path(path)
    check_replaceable(path, option)
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        check_replaceable(path, option)  # made a device or a link while we wrote
        os.replace(tmp, path)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write {path}: {exc.strerror or exc}; "
                                 "free disk space or choose a writable folder") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
