"""Benchmark: the native engine's whole T and one-vector simulate against ngspice (KLU).

Tiles with 2.5 ohm wire segments, conductances uniform in [1 uS, 100 uS], outputs
at ideal virtual ground (``R``) or through TIAs (``R+TIA``). Each size runs in a
fresh subprocess so that its peak RSS is its own. Per size: native seconds for
the whole transfer matrix (best of three below 10^5 cells, else one run), peak
RSS of the process up to then and the predicted peak
(:func:`~circuitsim.tile.checks.estimate_peak_bytes`, on top of the
process's RSS before the tile), seconds of one native ``simulate`` (assembly,
factorization and solve of one vector), and for tiles up to ``--ngspice-max-cells``
one ngspice operating point (seconds) with the largest relative difference of
``T @ v`` and of the native ``simulate`` from ngspice's output currents (and TIA
output voltages), relative to their largest magnitude.

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_tile.py
[--sizes 64x64,...] [--readouts R,R+TIA] [--solver cholmod|superlu]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = "64x64,128x128,256x256,400x120,512x512,1024x1024"


def _rss_bytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def _current_rss_bytes() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(rows: int, cols: int, readout: str, solver: str, ngspice_max_cells: int) -> dict:
    from circuitsim.tile.checks import estimate_peak_bytes
    from circuitsim.tile.crossbar import TIA, Tile
    from circuitsim.tile.extract import simulate
    from circuitsim.tile.native_tile import TileSolver

    rng = np.random.default_rng(0)
    tia = TIA() if readout == "R+TIA" else None
    tile = Tile(rng.uniform(1e-6, 100e-6, (rows, cols)), r_row=2.5, r_col=2.5, tia=tia)
    v = rng.uniform(0.0, 0.8, rows)
    before = _current_rss_bytes()
    seconds = []
    for _ in range(3 if rows * cols < 100_000 else 1):
        start = time.perf_counter()
        solver_obj = TileSolver(tile, backend=solver)
        T, _ = solver_obj.transfer()
        seconds.append(time.perf_counter() - start)
        backend = solver_obj.backend
        del solver_obj
    peak = _rss_bytes()
    start = time.perf_counter()
    fast = simulate(tile, v)
    sim_seconds = time.perf_counter() - start
    out = {
        "tile": f"{rows}x{cols}", "readout": readout, "solver": backend,
        "T_s": min(seconds), "sim_s": sim_seconds, "peak_gb": peak / 1e9,
        "predicted_gb": (before + estimate_peak_bytes(rows, cols, 2.5, 2.5, tia is not None, backend)) / 1e9,
        "ngspice_s": None, "max_rel_diff": None,
    }
    if rows * cols <= ngspice_max_cells:
        start = time.perf_counter()
        ref = simulate(tile, v, engine="ngspice")
        out["ngspice_s"] = time.perf_counter() - start
        pairs = [(T @ v, ref.output_currents), (fast.output_currents, ref.output_currents)]
        if tia is not None:
            pairs.append((fast.output_voltages, ref.output_voltages))
        out["max_rel_diff"] = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in pairs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--readouts", default="R,R+TIA")
    parser.add_argument("--solver", default=None, choices=[None, "cholmod", "superlu"])
    parser.add_argument("--ngspice-max-cells", type=int, default=256 * 256)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        size, readout = args.worker.split(":")
        rows, cols = (int(x) for x in size.split("x"))
        print(json.dumps(worker(rows, cols, readout, args.solver, args.ngspice_max_cells)))
        return

    from circuitsim.spice import find_ngspice
    from circuitsim.tile.factor import available_backends

    info = find_ngspice()
    print(f"ngspice-{info.version} ({info.solver}, shared backend), numpy {np.__version__}, "
          f"backends available: {', '.join(available_backends())}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"cpus allowed: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    head = (f"{'tile':>9} {'readout':>7} {'solver':>7} {'T s':>7} {'sim s':>7} {'peak GB':>7} "
            f"{'pred GB':>7} {'ngspice s':>9} {'speedup':>7} {'max rel diff':>12}")
    print(head)
    for size in args.sizes.split(","):
        for readout in args.readouts.split(","):
            cmd = [sys.executable, __file__, "--worker", f"{size}:{readout}",
                   "--ngspice-max-cells", str(args.ngspice_max_cells)]
            if args.solver:
                cmd += ["--solver", args.solver]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"{size:>9} {readout:>7} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            spice = "-" if r["ngspice_s"] is None else f"{r['ngspice_s']:.3f}"
            speedup = "-" if r["ngspice_s"] is None else f"{r['ngspice_s'] / r['T_s']:.1f}x"
            diff = "-" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.2e}"
            print(f"{r['tile']:>9} {r['readout']:>7} {r['solver']:>7} {r['T_s']:>7.3f} "
                  f"{r['sim_s']:>7.3f} {r['peak_gb']:>7.2f} {r['predicted_gb']:>7.2f} "
                  f"{spice:>9} {speedup:>7} {diff:>12}", flush=True)


if __name__ == "__main__":
    main()
