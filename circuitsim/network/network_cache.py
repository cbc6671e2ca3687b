"""One verified, atomic cache for every trained network (MLP, CNN, random cells, fine-tuned).

A trained network is kept in ``<folder>/<kind>-<name>-<key[:20]>.npz``: the network's own
weights file with the full cache ``key`` stored beside its arrays (``cache_key``). The key
hashes whatever the network is a function of (training code version, configuration,
training data, …; the caller computes it with :func:`cache_key`). An entry is used only when
it is a regular file whose array headers fit its size, that loads, holds this key and passes
the caller's check; anything else (unreadable, another key, another configuration) is one
warning line naming the file, and the network is built again. A folder, device or link where
the entry goes is named and left alone (the network is then not cached). A new entry is
written to a temporary file in the same folder and renamed into place
(:func:`circuitsim.files.write_atomic`), so a reader never sees half a file; a folder that
cannot be written is an :class:`~circuitsim.errors.EnvironmentFailure` (never a result).

Public API
----------
cache_key, cached_network, stored_key
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from ..errors import CircuitsimError, EnvironmentFailure
from ..files import check_array_file, write_atomic

Net = TypeVar("Net")


def cache_key(head: str, config: Any, arrays: tuple[np.ndarray, ...] = ()) -> str:
    """SHA-256 hex digest of ``head``, the JSON of ``config`` (plain data) and ``arrays``
    (dtype, shape and bytes of each)."""
    h = hashlib.sha256(head.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.asarray(a)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def stored_key(path: str | Path) -> str:
    """The cache key stored in a network file ("" when it holds none)."""
    with np.load(path, allow_pickle=False) as f:
        return str(f["cache_key"]) if "cache_key" in f.files else ""


def cached_network(folder: str | Path, kind: str, name: str, key: str, build: Callable[[], Net],
                   load: Callable[[Path], Net], save: Callable[[Net, Any, str], None],
                   check: Callable[[Net], str | None] | None = None) -> Net:
    """The network of ``key``: read from ``folder`` when a verified entry is there, else built
    and written.

    Parameters
    ----------
    folder : str or Path
        The cache folder (created when missing).
    kind, name : str
        The entry's file name is ``<kind>-<name>-<key[:20]>.npz`` (``name``: e.g. the dataset's,
        with characters other than letters, digits, ``_.-`` replaced).
    key : str
        The full cache key (:func:`cache_key`), stored in the entry and compared on reading.
    build : callable
        Trains or builds the network (called only on a miss).
    load : callable
        Reads a network from an entry's path (raises :class:`~circuitsim.errors.CircuitsimError`
        or ``OSError``/``ValueError``/… on a damaged file).
    save : callable
        ``save(net, file, key)`` writes the network and its key to ``file`` (a binary file object).
    check : callable, optional
        ``check(net)``: None when the loaded network is the one wanted, else what is wrong.
    """
    folder = Path(folder)
    target = folder / f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{key[:20]}.npz"
    log = logging.getLogger("circuitsim")
    regular = target.is_file() and not target.is_symlink()
    if regular:
        found = _problem(target, key, load, check)
        if isinstance(found, str):
            log.warning(f"warning: network cache entry {target} is damaged ({found}); building it again")
        else:
            return found[0]
    net = build()
    if not regular and (target.exists() or target.is_symlink()):  # never replace a folder, a device or a link
        log.warning(f"warning: network cache entry {target} is not a regular file; the network is not cached")
        return net
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot create the network cache {folder}: {exc.strerror or exc}; "
                                 "pass a writable --cache") from None
    buffer = io.BytesIO()
    save(net, buffer, key)
    write_atomic(target, buffer.getvalue(), "--cache")
    return net


def _problem(target: Path, key: str, load: Callable[[Path], Net],
             check: Callable[[Net], str | None] | None) -> str | tuple[Net]:
    """What is wrong with an entry, or ``(net,)`` when it is good."""
    try:
        check_array_file(target)  # a header declaring 10¹² values is damage, not a request
        stored = stored_key(target)
        if stored != key:
            return "it holds another network's key" if stored else "it holds no key"
        net = load(target)
    except (CircuitsimError, OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        return f"unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    problem = check(net) if check is not None else None
    return problem if problem is not None else (net,)
