"""Files circuitsim writes: only regular files, at exactly the path given, atomically.

Every file a command writes (``--out`` of ``characterize``, ``layer`` and ``export-onnx``,
the files of a results folder, cache entries) goes through :func:`write_atomic`, which
writes a temporary file beside the target and renames it over the target. A rename
replaces whatever the name points at, so the target is checked first: a missing name or
a regular file is written; a device (``/dev/null``, ``/dev/full``), a FIFO, a socket, a
folder or a symbolic link is refused with one line and left as it is.

Public API
----------
TEMP_PREFIX, output_file, check_replaceable, write_atomic, check_array_file
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


def _check_member(fp, available: int, name: str) -> None:
    """Refuse an ``.npy`` stream whose header declares more data than ``available`` bytes hold
    (a damaged or hostile header would otherwise make numpy allocate it: 10¹² values)."""
    from numpy.lib import format as npy

    start = fp.tell()
    try:
        version = npy.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # noqa: BLE001 - numpy parses the header with ast/tokenize: any error means damaged
        raise ValueError(f"{name}: not a readable .npy header ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects, not numbers")
    count = 1
    for n in shape:
        count *= int(n)
    declared = count * dtype.itemsize
    held = available - (fp.tell() - start)
    if declared > held:
        raise ValueError(f"{name}: its header declares {count} values of {dtype} ({declared} bytes) "
                         f"but it holds {max(held, 0)} bytes")


def check_array_file(path: str | Path) -> None:
    """Check the headers of a ``.npy`` or ``.npz`` file against the bytes it holds, before numpy
    reads it.

    Raises
    ------
    ValueError
        A header declares more values than the file holds, an archive member claims more
        bytes than the archive has, or the file holds Python objects.
    OSError
        The file cannot be read.
    """
    import zipfile

    path = Path(path)
    size = os.stat(path).st_size
    with open(path, "rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"
        fh.seek(0)
        if not zipped:
            _check_member(fh, size, str(path))
            return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            stored = info.compress_type == zipfile.ZIP_STORED
            if info.compress_size > size or info.file_size > (info.compress_size if stored
                                                              else 1100 * info.compress_size + 64):
                raise ValueError(f"{path}: member {info.filename} claims {info.file_size} bytes, "
                                 f"more than the archive holds")
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                _check_member(member, info.file_size, f"{path}: {info.filename}")
