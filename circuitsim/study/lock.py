"""One writer per results folder: an advisory lock held for the whole run.

The lock is ``DIR/.circuitsim.lock``, locked with ``fcntl.flock``, and the folder ``DIR``
itself, locked the same way (so a lock file deleted during a run lets no second run in). The kernel releases it
when the holding process ends in any way (``kill -9`` included), so a lock left by a
killed run is recovered by the next run without any clean-up; the file itself records
who holds it (process id, host, start time) so that a refused run can name the holder.

Public API
----------
LOCK_NAME, FolderLock
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path

from ..errors import ConfigError, EnvironmentFailure

LOCK_NAME = ".circuitsim.lock"
"""Name of the lock file in a results folder."""


class FolderLock:
    """Exclusive lock of a results folder, as a context manager.

    Parameters
    ----------
    folder : str or Path
        The results folder (created when missing).

    Raises
    ------
    EnvironmentFailure
        Another process holds the folder (the message names it), or the folder cannot
        be created or written.
    ConfigError
        The lock file's name holds something else (a symbolic link, a folder, a FIFO).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._fd: int | None = None
        self._dir_fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise at once when another run holds it."""
        path = self.folder / LOCK_NAME
        writable = True
        if path.is_symlink() or (path.exists() and not path.is_file()):  # never write through it
            raise ConfigError(f"{path} is not a regular file (a link, a folder, a FIFO?); remove it: circuitsim "
                              "makes its own lock file there")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            try:  # a read-only folder of a finished run can still be read under its lock
                fd, writable = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), False
            except OSError:
                raise EnvironmentFailure(f"cannot write the results folder {self.folder}: "
                                         f"{exc.strerror or exc}; choose a writable --out") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # made a FIFO or a device since the check above
            os.close(fd)
            raise ConfigError(f"{path} is not a regular file; remove it: circuitsim makes its own lock file there")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._dir_fd = _lock_folder(self.folder)
        except BlockingIOError:
            holder = _read_holder(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise EnvironmentFailure(f"{self.folder} is being written by another circuitsim run ({holder}); "
                                     "wait for it to finish or choose another --out") from None
        self._fd = fd
        if not writable:
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode(), 0)
        except OSError as exc:
            self.release()
            raise EnvironmentFailure(f"cannot write the results folder {self.folder}: "
                                     f"{exc.strerror or exc}; free space or choose another --out") from None

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race with a waiting run)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._dir_fd is not None:
            fcntl.flock(self._dir_fd, fcntl.LOCK_UN)
            os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock_folder(folder: Path) -> int | None:
    """Lock the folder itself too, so that deleting the lock file while a run holds it lets no
    second run in (``BlockingIOError`` when another run holds it); None where the file system
    cannot lock a folder (the lock file alone then)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:  # e.g. a network file system that locks only files opened for writing
        os.close(fd)
        return None
    return fd


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError, RecursionError):
        info = {}
    if not isinstance(info, dict):
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
