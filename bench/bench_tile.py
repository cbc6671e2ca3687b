"""Benchmark: ngspice (KLU) operating points against the native engine's whole T.

Tiles of R only (2.5 ohm segments), conductances uniform in [1 uS, 100 uS].
For each size: ngspice seconds per operating point (median of the three runs),
native seconds for the whole transfer matrix (best of three), and the largest
relative difference between ``T @ v`` and ngspice's output currents over three
random input vectors.

Run: ``.venv/bin/python bench/bench_tile.py [--sizes 32x32,64x64,...] [--backend shared]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from circuitsim.spice import find_ngspice
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.extract import characterize, simulate


def bench(rows: int, cols: int, backend: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    tile = Tile(rng.uniform(1e-6, 100e-6, (rows, cols)), r_row=2.5, r_col=2.5)
    native_seconds, T = [], None
    for _ in range(3):
        start = time.perf_counter()
        T = characterize(tile, engine="native").T
        native_seconds.append(time.perf_counter() - start)
    spice_seconds, worst = [], 0.0
    for _ in range(3):
        v = rng.uniform(0.0, 0.8, rows)
        start = time.perf_counter()
        ref = simulate(tile, v, engine="ngspice", backend=backend).output_currents
        spice_seconds.append(time.perf_counter() - start)
        worst = max(worst, float(np.abs(T @ v - ref).max() / np.abs(ref).max()))
    return {
        "tile": f"{rows}x{cols}",
        "ngspice_s_per_op": statistics.median(spice_seconds),
        "native_s_whole_T": min(native_seconds),
        "max_rel_diff": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="32x32,64x64,128x128,400x120")
    parser.add_argument("--backend", default="shared", choices=["shared", "subprocess"])
    args = parser.parse_args()
    info = find_ngspice()
    print(f"ngspice-{info.version} ({info.solver}, {args.backend} backend), numpy {np.__version__}")
    print(f"{'tile':>9} {'ngspice s/op':>13} {'native s (T)':>13} {'max rel diff':>13}")
    for size in args.sizes.split(","):
        rows, cols = (int(x) for x in size.split("x"))
        r = bench(rows, cols, args.backend)
        print(f"{r['tile']:>9} {r['ngspice_s_per_op']:>13.3f} {r['native_s_whole_T']:>13.3f} "
              f"{r['max_rel_diff']:>13.2e}", flush=True)


if __name__ == "__main__":
    main()
