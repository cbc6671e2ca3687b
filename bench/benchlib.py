"""What every benchmark in ``bench/`` reports with its figures, and how it compares programs.

- :func:`environment` — one line: UTC time, load averages (1, 5, 15 min), cores allowed,
  the BLAS CHOLMOD binds to and numpy's, ``OPENBLAS_NUM_THREADS``; printed before and after
  the figures, so that a figure taken under load is seen to be.
- :func:`timed` — wall and CPU seconds of one call (CPU: this process, all its threads).
- :func:`worker` — one measurement in a fresh process (cold caches, its own peak memory),
  optionally with other code (``PYTHONPATH``) or another BLAS (``LD_LIBRARY_PATH``).
- :func:`median_ratio` — the median of the ratios of interleaved pairs: programs compared
  run one after the other, pair by pair, so that load that comes and goes hits both.

Imported by the scripts next to it (``python bench/bench_x.py`` puts ``bench/`` on the path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np

REFERENCE_BLAS = "/usr/lib/x86_64-linux-gnu/blas:/usr/lib/x86_64-linux-gnu/lapack"
"""``LD_LIBRARY_PATH`` that puts Debian's netlib reference BLAS and LAPACK under CHOLMOD
whatever the system's ``libblas.so.3`` alternative is (the "before" of issue 24)."""


def blas_line() -> str:
    """The BLAS CHOLMOD binds to (kind and path) and numpy's own BLAS."""
    try:
        from circuitsim.tile.factor import blas_kind, cholmod_blas

        path = cholmod_blas()
        cholmod = f"CHOLMOD BLAS {blas_kind(path)} ({path})" if path else "CHOLMOD not installed"
    except ImportError:  # an older circuitsim: the BLAS mapped into this process
        path = _mapped_blas()
        kind = "OpenBLAS" if "openblas" in path else "reference" if "/blas/" in path else "unknown"
        cholmod = f"CHOLMOD BLAS {kind} ({path or 'not loaded'})"
    try:
        from threadpoolctl import threadpool_info

        mine = [f"{i['internal_api']} {i.get('version')}" for i in threadpool_info()
                if i["user_api"] == "blas" and "scipy_openblas" in i.get("prefix", "")]
        numpy_blas = mine[0] if mine else "unknown"
    except ImportError:
        numpy_blas = "unknown"
    return f"{cholmod}, numpy BLAS {numpy_blas}"


def _mapped_blas() -> str:
    """Path of the system BLAS (``libblas.so.3``'s target) mapped into this process, or ''."""
    import sksparse.cholmod  # noqa: F401 - loads libcholmod and its BLAS

    with open("/proc/self/maps") as fh:
        paths = {line.rsplit(None, 1)[-1] for line in fh}
    found = sorted(p for p in paths if "/blas/libblas" in p or "openblas-pthread/libblas" in p)
    return found[0] if found else ""


def environment() -> str:
    """One line: time (UTC), load averages, cores allowed, BLAS, BLAS threads."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}, load average {load} (1/5/15 min) on {os.cpu_count()} cores, "
            f"cpus allowed {len(os.sched_getaffinity(0))}, {blas_line()}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")


def timed(fn):
    """``(result, wall seconds, CPU seconds)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_bytes() -> float:
    """Peak resident memory of this process so far, bytes."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def rss_bytes() -> float:
    """Resident memory of this process now, bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(script: str, args: list[str], pythonpath: str | None = None, ld_library_path: str | None = None) -> dict:
    """Run ``script --worker …`` in a fresh process and return the JSON of its last line.

    Parameters
    ----------
    script : str
        The benchmark script (``__file__``).
    args : list of str
        Its worker arguments.
    pythonpath : str, optional
        Put this folder first on ``PYTHONPATH`` (e.g. an exported older ``circuitsim``).
    ld_library_path : str, optional
        Put these folders first on ``LD_LIBRARY_PATH`` (e.g. :data:`REFERENCE_BLAS`).
    """
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    if ld_library_path:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [ld_library_path, env.get("LD_LIBRARY_PATH")]))
    done = subprocess.run([sys.executable, script, "--worker", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_ratio(numerators, denominators) -> float:
    """Median of ``numerators[i] / denominators[i]`` (pairs measured one after the other)."""
    pairs = [a / b for a, b in zip(numerators, denominators) if a is not None and b]
    return float(np.median(pairs)) if pairs else float("nan")


def median(values) -> float:
    """Median of the values that are not None (nan when there are none)."""
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else float("nan")
