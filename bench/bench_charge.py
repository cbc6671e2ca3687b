"""Benchmark: charge-mode characterization, replayed unit inputs against one ngspice
transient per input (issue 22).

Part 1 (``--tiles``): ``characterize_charge`` of a 32 × 32 tile like readout.toml's
(SOT-MRAM conductances, imac-14nm wires, integrator of 100 pF, 50 ns window), in a fresh
process per measurement, this tree's replay and the same tree with the replay refused
(``REPLAY_TOL = -1``: one ngspice transient per input, the method before), interleaved
round by round; printed: CPU and wall seconds (medians), the median ratio of the pairs'
CPU and the largest relative difference of ``T``.

Part 2 (``--before DIR``): the smoke run of ``examples/readout.toml`` with a cold cache,
this tree and the tree at DIR interleaved (``--rounds``), CPU (children) and wall seconds,
and whether the two results tables agree (every column but the timings).

Run: ``.venv/bin/python bench/bench_charge.py [--tiles 3] [--before /path/to/old/tree --rounds 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import benchlib

ROOT = Path(__file__).resolve().parent.parent


def _tile():
    from circuitsim.tile.crossbar import Tile

    g = np.random.default_rng(0).choice([1 / 3e6, 1 / 1e6], (32, 32))
    return Tile(g, r_row=9.24, r_col=11.55, c_row=0.05e-15, c_col=0.05e-15)


def _worker(method: str) -> None:
    import circuitsim.tile.charge as charge

    tile = _tile()
    if method == "per-input":
        charge.REPLAY_TOL = -1.0
    charge.characterize_charge(tile, 50e-9, 100e-12)  # loads ngspice; not timed
    result, wall, cpu = benchlib.timed(lambda: charge.characterize_charge(tile, 50e-9, 100e-12))
    print(json.dumps({"wall": wall, "cpu": cpu, "T": result.T.tolist(), "method": result.metadata["t_method"]}))


def _smoke(tree: Path) -> tuple[float, float, Path]:
    out = Path(tempfile.mkdtemp(prefix="bench_charge_"))
    before = os.times()
    wall = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from circuitsim.cli import main; sys.exit(main())", "sweep",
                    "examples/readout.toml", "--smoke", "--out", str(out / "out"), "--cache", str(out / "cache")],
                   cwd=tree, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(tree)})
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return cpu, time.perf_counter() - wall, out / "out" / "results.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tiles", type=int, default=3, help="rounds of part 1 (0: skip)")
    parser.add_argument("--before", help="an older tree for part 2 (the smoke run of readout.toml)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of part 2")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    print("start:", benchlib.environment())
    if args.tiles:
        runs: dict[str, list[dict]] = {"replay": [], "per-input": []}
        for _ in range(args.tiles):
            for method in runs:
                runs[method].append(benchlib.worker(__file__, [method]))
        for method, rs in runs.items():
            print(f"32x32 tile, {method:>9} ({rs[0].get('method')}): CPU {benchlib.median([r['cpu'] for r in rs]):.3f} s, "
                  f"wall {benchlib.median([r['wall'] for r in rs]):.3f} s")
        ratio = benchlib.median_ratio([r["cpu"] for r in runs["per-input"]], [r["cpu"] for r in runs["replay"]])
        t_new, t_old = np.array(runs["replay"][0]["T"]), np.array(runs["per-input"][0]["T"])
        print(f"CPU per-input / replay (median of pairs): {ratio:.2f}; "
              f"max |T diff| / max |T|: {np.abs(t_new - t_old).max() / np.abs(t_old).max():.2e}")
    if args.before:
        import pandas as pd

        for k in range(args.rounds):
            tables = {}
            for name, tree in (("before", Path(args.before)), ("after", ROOT)):
                cpu, wall, table = _smoke(tree)
                tables[name] = pd.read_csv(table).drop(columns=["characterization_seconds", "evaluation_seconds"])
                print(f"round {k + 1}, readout.toml --smoke, {name}: CPU {cpu:.1f} s, wall {wall:.1f} s")
            a, b = tables["before"], tables["after"]
            numeric = a.select_dtypes("number").columns
            rel = (np.abs(a[numeric] - b[numeric]) / np.maximum(np.abs(a[numeric]), 1e-300)).max().max()
            same = a.drop(columns=numeric).astype(str).equals(b.drop(columns=numeric).astype(str))
            print(f"tables: text columns equal {same}, largest relative difference of numbers {rel:.1e}")
    print("end:", benchlib.environment())


if __name__ == "__main__":
    main()
