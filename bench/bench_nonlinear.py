"""Benchmark: the native nonlinear solve (issue 25) against ngspice on the same deck.

1. One ``--size`` (256×256) tile of sinh RRAM cells (``v0 = 0.1 V``, ``r_series = 1 kohm``,
   conductances at 0.2 V uniform in [1 uS, 10 uS]) with 2 ohm wire segments, one input vector
   uniform in [0, 0.2] V: the native solve (solver set-up included) and one ngspice operating
   point of the same deck (shared library loaded before timing; the deck's text written
   before timing; ngspice parses and solves it inside the timing, with the reference
   tolerances of :data:`~circuitsim.tile.nonlinear_run.SPICE_OPTIONS`), ``--reps`` pairs run one
   after the other; printed: median CPU and wall seconds of each, the median of the pairs'
   CPU ratios and the largest relative difference of the output currents.
2. ``--vectors`` (1,000) input vectors on a ``--batch-size`` (128×128) tile of the same cells:
   the native solve, CPU and wall seconds, Newton iterations.
3. ``--images`` (1,000) test images through the network of ``examples/nonlinear_cells.toml``
   (examples/amin2022.toml's 400-120-84-10 MLP, partition 13-4-3 / 4-3-1, sinh cells with
   ``v0 = 0.2 V``, ``r_series = 1 kohm``; every tile solved exactly for every image):
   ``circuitsim sweep --workers 2`` of that one point, after a run on 10 images has trained
   the network and characterized the tiles into the cache; wall and CPU seconds (the sweep
   and its workers).

1 and 2 in this process, one BLAS thread (the native engine limits itself to one below
200,000 nodes); 3 in its own processes. The load average and the BLAS are printed before and
after.

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_nonlinear.py
[--size 256] [--reps 3] [--vectors 1000] [--batch-size 128] [--images 1000]`` (3 is the sweep
with two workers, one of which computes the point: run it without ``taskset``, i.e. 1 and 2
with ``--images 0`` under it and 3 with ``--reps 0 --vectors 0`` after)
"""

from __future__ import annotations

import argparse
import csv
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import benchlib


def _tile(n: int):
    from circuitsim.tile.cell_mapping import map_conductance
    from circuitsim.tile.cells import SinhCell
    from circuitsim.tile.nonlinear_tile import NonlinearTile

    rng = np.random.default_rng(0)
    cells = map_conductance(SinhCell(i0=1.0, v0=0.1, r_series=1e3), rng.uniform(1e-6, 10e-6, (n, n)), 0.2)
    return NonlinearTile(cells, r_row=2.0, r_col=2.0), rng


def single(n: int, reps: int) -> None:
    from circuitsim.spice import get_backend
    from circuitsim.tile.crossbar import sense_source_names
    from circuitsim.tile.nonlinear import NonlinearSolver
    from circuitsim.tile.nonlinear_run import nonlinear_deck

    tile, rng = _tile(n)
    v = rng.uniform(0.0, 0.2, n)
    deck = nonlinear_deck(tile, v)
    backend = get_backend("shared")
    sensed = [f"i({s.lower()})" for s in sense_source_names(n)]
    native, spice = [], []
    for _ in range(reps):
        result, wall, cpu = benchlib.timed(lambda: NonlinearSolver(tile).solve(v))
        native.append((wall, cpu))
        (vectors,), s_wall, s_cpu = benchlib.timed(lambda: backend.run(deck.replace("\n.op\n", "\n"), [["op"]],
                                                                       save=sensed))
        spice.append((s_wall, s_cpu))
    ref = np.array([vectors[name][0] for name in sensed])
    diff = np.abs(result.output_currents[0] - ref).max() / np.abs(ref).max()
    print(f"{n}x{n} sinh tile, one vector: native {benchlib.median(c for _, c in native):.2f} s CPU "
          f"({benchlib.median(w for w, _ in native):.2f} s wall, {int(result.iterations[0])} Newton iterations); "
          f"ngspice op {benchlib.median(c for _, c in spice):.2f} s CPU "
          f"({benchlib.median(w for w, _ in spice):.2f} s wall); ngspice/native CPU "
          f"{benchlib.median_ratio([c for _, c in spice], [c for _, c in native]):.1f}x (median of {reps} pairs); "
          f"max relative difference {diff:.2e}")


def batch(n: int, vectors: int) -> None:
    from circuitsim.tile.nonlinear import NonlinearSolver

    tile, rng = _tile(n)
    x = rng.uniform(0.0, 0.2, (vectors, n))
    result, wall, cpu = benchlib.timed(lambda: NonlinearSolver(tile).solve(x))
    its = result.iterations
    print(f"{n}x{n} sinh tile, {vectors} vectors: native {cpu:.1f} s CPU ({wall:.1f} s wall), "
          f"{cpu / vectors * 1e3:.1f} ms CPU per vector, Newton iterations {its.min()}-{its.max()} "
          f"(mean {its.mean():.2f})")


def network(images: int) -> None:
    spec = (Path(__file__).resolve().parent.parent / "examples" / "nonlinear_cells.toml").read_text()
    spec = re.sub(r"(?m)^limit = \d+", "limit = {limit}", spec)
    spec = spec[:spec.index("[sweep]")]  # the spec's own point: v0 = 0.2 V, the partition 13-4-3 / 4-3-1
    spec += '[sweep]\npartitions = [{auto = 32}]\n'
    with tempfile.TemporaryDirectory() as tmp:
        def sweep(limit: int, out: str) -> tuple[float, float]:
            path = Path(tmp) / f"{out}.toml"
            path.write_text(spec.replace("{limit}", str(limit)))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(path), "--out", f"{tmp}/{out}",
                                   "--cache", f"{tmp}/cache", "--workers", "2"], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"the sweep failed: {done.stderr.strip()}")
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return time.perf_counter() - start, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

        sweep(10, "warm")  # trains the network, characterizes the tiles into the cache
        wall, cpu = sweep(images, "timed")
        with open(Path(tmp) / "timed" / "results.csv", newline="") as fh:
            (row,) = csv.DictReader(fh)
    print(f"examples/nonlinear_cells.toml network (400-120-84-10, 13-4-3 / 4-3-1, sinh v0 = 0.2 V), {images} images, "
          f"sweep --workers 2: {wall:.1f} s wall, {cpu:.1f} s CPU; status {row['status']}, {row['n_images']} images, accuracy "
          f"{row['accuracy']} (linear at v_read {row.get('accuracy_linear', '?')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    print(benchlib.environment(), flush=True)
    if args.reps:
        single(args.size, args.reps)
    if args.vectors:
        batch(args.batch_size, args.vectors)
    if args.images:
        network(args.images)
    print(benchlib.environment())


if __name__ == "__main__":
    main()
