"""Benchmark: small tiles in bulk — the partition study's 200 tiles and 64² tiles, tile by tile
and together (:func:`circuitsim.tile.batch.transfer_many`), in fresh processes, interleaved.

Part 1: ``map_network`` of examples/amin2022.toml's network (400-120-84-10, binary weights,
SOT-MRAM cells, 14 nm wires) on 16-8-8 / 8-8-1 (200 tiles of about 26×30, 16×21 and 11×20),
tile cache cold (in memory only), the trained network cached on disk (trained once before the
timings). Variants, each round in a fresh process: ``after`` (this tree: a layer's tiles
together), ``serial`` (this tree, tile by tile: ``TileCache.prefetch`` disabled) and, with
``--before DIR``, ``before`` (an older tree; ``--before-blas reference`` puts netlib's BLAS
under its CHOLMOD). Printed: median CPU and wall seconds, and the median over rounds of
variant CPU / ``after`` CPU.

Part 2: ``--tiles`` tiles of 64² (2.5 ohm segments, G uniform in [1 uS, 100 uS]) in ``--reps``
fresh processes (medians and the range printed): tile by tile (``TileSolver``), together the
first time (pattern and symbolic analysis built) and together again with other conductances
(the analysis reused, as for another device realization); CPU and wall milliseconds per tile.

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_batch.py
[--reps 5] [--before DIR] [--cache DIR]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import benchlib


def network_worker(cache: str, serial: bool) -> dict:
    from circuitsim.devices import device_preset, wire_preset
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mapping import Partition
    from circuitsim.network.mlp import MLPConfig, load_or_train

    try:  # this tree, or a tree from before issue 21 (--before)
        from circuitsim.network.mapped import map_network
        from circuitsim.tile.tile_cache import TileCache
    except ImportError:
        from circuitsim.network.evaluator import map_network
        from circuitsim.network.tile_cache import TileCache

    if serial:
        TileCache.prefetch = lambda self, tiles, circuit: None
    data = load_dataset("mnist", binarize=True)
    net = load_or_train(data, MLPConfig(), Path(cache) / "networks")
    circuit = CircuitConfig(device=device_preset("sot-mram-amin2022"), wires=wire_preset("imac-14nm"))
    parts = [Partition(16, 8), Partition(8, 8), Partition(8, 1)]
    mapped, wall, cpu = benchlib.timed(lambda: map_network(net, parts, circuit, TileCache()))
    return {"wall": wall, "cpu": cpu, "tiles": mapped.n_tiles, "blas": benchlib.blas_line().split(",")[0],
            "w0": float(np.abs((getattr(mapped, "mlp", None) or mapped.network).weights[0]).sum())}


def tiles_worker(count: int, size: int) -> dict:
    from circuitsim.tile.batch import transfer_many
    from circuitsim.tile.crossbar import Tile
    from circuitsim.tile.native_tile import TileSolver

    rng = np.random.default_rng(0)

    def tiles():
        return [Tile(rng.uniform(1e-6, 100e-6, (size, size)), r_row=2.5, r_col=2.5) for _ in range(count)]

    first, second, serial = tiles(), tiles(), tiles()
    one, one_wall, one_cpu = benchlib.timed(lambda: [TileSolver(t).transfer() for t in serial])
    cold, cold_wall, cold_cpu = benchlib.timed(lambda: transfer_many(first))
    warm, warm_wall, warm_cpu = benchlib.timed(lambda: transfer_many(second))
    check = transfer_many(serial)
    diff = max(float(np.abs(a[0] - b[0]).max() / np.abs(b[0]).max()) for a, b in zip(check, one))
    ms = 1e3 / count
    return {"serial": [one_cpu * ms, one_wall * ms], "cold": [cold_cpu * ms, cold_wall * ms],
            "warm": [warm_cpu * ms, warm_wall * ms], "max_rel_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--before", default=None, metavar="DIR", help="folder holding an older circuitsim/")
    parser.add_argument("--before-blas", default="system", choices=["system", "reference"])
    parser.add_argument("--cache", default="/tmp/circuitsim-bench-cache", help="where the trained network is kept")
    parser.add_argument("--tiles", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind = args.worker[0]
        out = (network_worker(args.cache, kind == "serial") if kind in ("after", "serial", "before")
               else tiles_worker(args.tiles, args.size))
        print(json.dumps(out))
        return

    print("start:", benchlib.environment())
    variants = {"after": (None, None), "serial": (None, None)}
    if args.before:
        variants["before"] = (args.before, benchlib.REFERENCE_BLAS if args.before_blas == "reference" else None)
    cache = ["--cache", args.cache]
    benchlib.worker(__file__, ["after"] + cache)  # trains the network once (cached on disk)
    runs = {v: [] for v in variants}
    for _ in range(args.reps):  # interleaved, round by round
        for v, env in variants.items():
            runs[v].append(benchlib.worker(__file__, [v] + cache, *env))
    after_cpu = [r.get("cpu") for r in runs["after"]]
    print(f"16-8-8 / 8-8-1, {runs['after'][0].get('tiles')} tiles, tile cache cold, network cached; "
          f"{args.reps} rounds in fresh processes, medians:")
    for v, rs in runs.items():
        bad = [r["error"] for r in rs if "error" in r]
        if bad:
            print(f"  {v:>7}: failed: {bad[0]}")
            continue
        blas = rs[0]["blas"].replace("CHOLMOD BLAS ", "").split(" (")[0]
        print(f"  {v:>7} ({blas:>9}): CPU {benchlib.median([r['cpu'] for r in rs]):6.3f} s, "
              f"wall {benchlib.median([r['wall'] for r in rs]):6.3f} s, "
              f"CPU / after's CPU {benchlib.median_ratio([r['cpu'] for r in rs], after_cpu):5.2f} "
              f"(median of pairs); |W0| sum {rs[0]['w0']:.6f}", flush=True)
    rounds = [benchlib.worker(__file__, ["tiles", "--tiles", str(args.tiles), "--size", str(args.size)])
              for _ in range(args.reps)]
    bad = [r["error"] for r in rounds if "error" in r]
    if bad:
        print(f"{args.tiles} tiles of {args.size}²: failed: {bad[0]}")
    else:
        def ms(kind: str) -> str:
            return " / ".join(f"{benchlib.median([r[kind][i] for r in rounds]):.2f}" for i in (0, 1))

        warm = sorted(r["warm"][0] for r in rounds)
        print(f"{args.tiles} tiles of {args.size}², whole T, ms per tile (CPU / wall), medians of {args.reps} "
              f"fresh processes: one by one {ms('serial')}; together, first {ms('cold')}; together, "
              f"analysis reused {ms('warm')} (CPU {warm[0]:.2f}-{warm[-1]:.2f}); "
              f"max rel diff {max(r['max_rel_diff'] for r in rounds):.1e}")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
