"""Where the points of a sweep run: this process, local worker processes, or a Dask cluster.

Points are independent. :meth:`Runner.map` takes the points still to do and yields
one result row per point as each finishes (in completion order, not sweep order);
the caller — the sweep's parent process — is the only one that writes results.

- ``workers=1`` (the default): points run one after another in this process.
- ``workers=N``: ``N`` local worker processes (``spawn`` start method, so that each
  has a fresh interpreter and its own libngspice, which keeps global state and is one
  per process). Workers ignore Ctrl-C (the parent stops them), and quit by themselves
  when the parent dies, even by ``kill -9``.
- ``scheduler="tcp://HOST:PORT"``: tasks on an existing Dask distributed cluster
  (``dask.distributed`` is imported only then). Start workers with ``--nthreads 1``:
  a worker process computes one point at a time whatever its threads, since
  libngspice is one per process and not thread-safe.

Every worker reads the dataset, the trained network and the tile transfer matrices
from the cache folder (train networks in the parent before dispatch, so that workers
only load them). On a cluster the cache folder must be one path every worker can
reach (a shared file system); a worker that cannot find a cached network trains it
again (same seed, same network) and a tile it cannot find is extracted again.

Public API
----------
Runner, run_in_worker, CONNECT_TIMEOUT
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..errors import CircuitsimError, ConfigError, EnvironmentFailure
from .points import PointContext, run_point
from .spec import Point

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler before giving up."""

_contexts: dict = {}
_lock = threading.Lock()


class Runner:
    """Computes the points of a sweep in this process, local workers or a Dask cluster.

    Parameters
    ----------
    cache_dir : str or Path
        Cache folder of networks and tiles that workers read (absolute path).
    workers : int
        Local worker processes (1: this process).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``), connected to at once.

    Raises
    ------
    ConfigError
        ``workers`` is not a positive integer, both ``workers > 1`` and ``scheduler``
        are given, or the scheduler cannot be reached.
    """

    def __init__(self, cache_dir: str | Path, workers: int = 1, scheduler: str | None = None):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
        if scheduler and workers != 1:
            raise ConfigError("give either --workers (local processes) or --scheduler (a Dask cluster), not both")
        self.cache_dir, self.workers, self.scheduler = str(cache_dir), workers, scheduler
        self._client = _connect(scheduler) if scheduler else None

    def map(self, points: Iterable[Point], context) -> Iterator[dict]:
        """Yield the result row of every point as it finishes.

        ``context`` (a :class:`~circuitsim.study.points.PointContext`) is used as is when points run
        in this process. Close the generator (``contextlib.closing``) when stopping
        early: that cancels the points not yet started and stops the local workers.
        """
        points = list(points)
        if not points:
            return
        if self._client is not None:
            yield from _on_dask(self._client, points, self.cache_dir)
        elif self.workers > 1:
            yield from _on_processes(points, self.cache_dir, min(self.workers, len(points)))
        else:
            for point in points:
                yield run_point(point, context)

    def close(self) -> None:
        """Disconnect from the Dask scheduler, if any."""
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close(timeout=CONNECT_TIMEOUT)
            except Exception:  # noqa: BLE001 - a scheduler that died mid-sweep cannot be told goodbye
                pass

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_in_worker(point: Point, cache_dir: str) -> dict:
    """Compute one point in a worker process, with that process's cached context."""
    with _lock:  # one point at a time per process: libngspice is one per process
        if cache_dir not in _contexts:
            _contexts[cache_dir] = PointContext(Path(cache_dir))
        return run_point(point, _contexts[cache_dir])


# -- local worker processes ---------------------------------------------------------


def _on_processes(points: list[Point], cache_dir: str, workers: int) -> Iterator[dict]:
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(), workers))
    finished = False
    try:
        futures = [pool.submit(run_in_worker, point, cache_dir) for point in points]
        for future in as_completed(futures):
            yield future.result()
        finished = True
    except BrokenProcessPool:
        raise EnvironmentFailure("a sweep worker process died (killed, or crashed inside ngspice); "
                              "finished points are kept: run the same command again to go on") from None
    finally:
        _stop(pool, wait=finished)


def _init_worker(parent: int, workers: int) -> None:
    """Set up a worker process: ignore Ctrl-C, follow the parent, share the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_follow_parent, args=(parent,), daemon=True, name="follow-parent").start()
    try:  # N workers on C cores: C/N BLAS threads each rather than C each
        from threadpoolctl import threadpool_limits

        threadpool_limits(max(1, (os.cpu_count() or 1) // workers))
    except ImportError:
        pass


def _follow_parent(parent: int) -> None:
    """Quit when the parent is gone (it was reparented): no orphan keeps computing."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _stop(pool: ProcessPoolExecutor, wait: bool) -> None:
    """Shut ``pool`` down; unless ``wait``, cancel what is queued and end running workers."""
    if wait:
        pool.shutdown(wait=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown clears it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


# -- Dask distributed ---------------------------------------------------------------


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed; install it with "
                          "pip install 'dask[distributed]'") from None
    import logging

    # dask logs a lost scheduler with tracebacks; the sweep reports it on one line itself
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        _check_reachable(address)
        _probe(address)  # before Client: a Client half-built on a wrong peer hangs and prints at exit
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except MemoryError:  # a peer that is no Dask scheduler announced a message of exabytes
        raise ConfigError(f"the address {address} answers, but not as a Dask scheduler; "
                          "start one with 'dask scheduler' or fix --scheduler") from None
    except Exception as exc:  # noqa: BLE001 - whatever a wrong address does (refused, timed out, garbled)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({reason[:200]}); "
                          "start one with 'dask scheduler' or fix --scheduler") from None


def _on_dask(client, points: list[Point], cache_dir: str) -> Iterator[dict]:
    import asyncio

    from distributed import as_completed as dask_completed
    from distributed.scheduler import KilledWorker

    futures = []
    try:
        futures = [client.submit(run_in_worker, point, cache_dir, pure=False) for point in points]
        for future in dask_completed(futures, loop=client.loop):
            yield future.result()
    except CircuitsimError:  # a point's own failure, raised again here
        raise
    except KilledWorker as exc:
        raise EnvironmentFailure(f"Dask workers kept dying on a point ({exc}); finished points are kept: "
                                 "run the same command again to go on") from None
    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the scheduler died or the link broke
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EnvironmentFailure(f"lost the Dask scheduler ({reason[:200]}); finished points are kept: start "
                                 "the scheduler again and run the same command to go on") from None
    finally:
        try:
            client.cancel([f for f in futures if not f.done()])
        except Exception:  # noqa: BLE001 - a scheduler that is gone cannot cancel anything
            pass


def _probe(address: str) -> None:
    """Ask the peer at ``address`` who it is; raise unless it answers as a Dask scheduler."""
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=CONNECT_TIMEOUT)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), CONNECT_TIMEOUT)
        finally:
            comm.abort()

    reply = asyncio.run(identity())
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise ValueError("it answers, but not as a Dask scheduler")


def _check_reachable(address: str) -> None:
    """Fail fast on a malformed address or a closed TCP port (before ``Client`` waits)."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    scheme, location = parse_address(address)
    if scheme == "tcp":
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
