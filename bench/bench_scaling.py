"""Benchmark: a 50-point sweep with 1 and with 2 local worker processes.

The sweep is the Amin et al. network of ``examples/amin2022.toml`` (MNIST sample,
400-120-84-10, binary weights) over 10 word-line resistances × 5 partitionings.
Every point has tiles of its own (each r_row gives new tiles, and no two
partitionings share a layer's (h, v)), so no point reuses another's tiles and the
work per point does not depend on the order in which points finish. Each timed run
starts from a warm network cache (trained once before timing) and a cold tile
cache, and is the whole command line (``circuitsim sweep ... --workers N``),
start-up included. BLAS is held to one thread in both runs (``OPENBLAS_NUM_THREADS=1``
and friends), so that the figure measures worker processes, not BLAS threads
competing with them; the load average before and after is printed, since other
work on the machine skews the figure.

Run: ``.venv/bin/python bench/bench_scaling.py`` (``--workers 4`` for a bigger
machine: times 1 and N workers).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
R_ROW = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.24, 10.0]
PARTITIONS = """partitions = [
  {h = [1, 1, 1], v = [1, 1, 1]},
  {h = [2, 2, 2], v = [2, 2, 2]},
  {h = [4, 4, 4], v = [4, 4, 4]},
  {auto = 32},
  {h = [16, 8, 8], v = [8, 8, 1]},
]
"wires.r_row" = [""" + ", ".join(map(str, R_ROW)) + "]\n"


def spec_text() -> str:
    """``examples/amin2022.toml`` with the 50-point ``[sweep]`` above."""
    base = (ROOT / "examples" / "amin2022.toml").read_text()
    return base[: base.index("[sweep]")] + "[sweep]\n" + PARTITIONS


ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def timed_sweep(spec: Path, out: Path, cache: Path, workers: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, worker processes included) of one
    ``circuitsim sweep`` command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(out),
                    "--cache", str(cache), "--workers", str(workers)], check=True, capture_output=True,
                   env={**os.environ, **ONE_THREAD})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def warm_networks(spec: Path, folder: Path) -> None:
    """Train the spec's network into ``folder`` (as a sweep's cache would hold it)."""
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mlp import load_or_train
    from circuitsim.study.spec import build_network_config, load_spec

    base = load_spec(spec).base
    load_or_train(load_dataset(**base["dataset"]), build_network_config(base), folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel run (default 2)")
    args = parser.parse_args()
    import benchlib

    print("start:", benchlib.environment())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = tmp / "scaling.toml"
        spec.write_text(spec_text())
        warm_networks(spec, tmp / "warm" / "networks")
        load = os.getloadavg()[0]
        times = {}
        for workers in (1, args.workers):
            cache = tmp / f"cache-{workers}"
            shutil.copytree(tmp / "warm" / "networks", cache / "networks")  # warm networks, cold tiles
            times[workers] = timed_sweep(spec, tmp / f"out-{workers}", cache, workers)
        print(f"50-point sweep (amin2022 network, 10 r_row x 5 partitionings), {os.cpu_count()} cores, "
              "warm network cache, cold tile cache, 1 BLAS thread per process:")
        for workers, (wall, cpu) in times.items():
            label = f"{workers} worker" + ("s" if workers > 1 else " ")
            print(f"  {label}: {wall:7.2f} s  (CPU {cpu:7.2f} s)")
        print(f"  speed-up : {times[1][0] / times[args.workers][0]:7.2f}x")
        print(f"  load average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
