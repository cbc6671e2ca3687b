"""Benchmark: factorizations and orderings of a tile's reduced system (the choice behind
the native engine).

For each size, the same matrix (R-only tile, 2.5 ohm segments, assembled from the
grid) is factorized by SuperLU with its own orderings (MMD on A^T + A, COLAMD),
by SuperLU in the grid's nested-dissection order, and, when scikit-sparse is
installed, by CHOLMOD with its own AMD and METIS orderings and in the grid's
order. Printed: CPU and wall seconds of the factorization alone (ordering of the
library included, the grid ordering excluded: it is part of assembly; median of
``--reps`` rounds, the methods interleaved round by round), the median over rounds of
its CPU / CHOLMOD-in-grid-order's CPU, and the entries of the factor (L + U for
SuperLU, L for CHOLMOD). The load average and the BLAS are printed before and after.

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_factor.py
[--sizes 256x256,512x512] [--only "grid ND,AMD"]``
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse.linalg as spla

import benchlib

from circuitsim.tile.assembly import assemble_tile
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.factor import available_backends


def _superlu(a, permc):
    lu, wall, cpu = benchlib.timed(lambda: spla.splu(a, permc_spec=permc, diag_pivot_thresh=0.0,
                                                     options={"SymmetricMode": True}))
    return wall, cpu, lu.nnz


def _cholmod(a, ordering):
    from sksparse.cholmod import cholesky

    f, wall, cpu = benchlib.timed(lambda: cholesky(a, ordering_method=ordering))
    return wall, cpu, f.L().nnz  # entries counted after the timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,512x512,1024x1024")
    parser.add_argument("--only", default="", help="comma-separated parts of method names to run")
    parser.add_argument("--reps", type=int, default=3, help="rounds (1 above 300,000 cells)")
    args = parser.parse_args()
    print("start:", benchlib.environment())
    print(f"{'tile':>9} {'factorization':>30} {'CPU s':>8} {'wall s':>8} {'CPU / grid ND':>13} {'entries':>10}")
    methods = [("SuperLU, MMD_AT_PLUS_A", _superlu, "MMD_AT_PLUS_A"),
               ("SuperLU, COLAMD", _superlu, "COLAMD"),
               ("SuperLU, grid ND", _superlu, "NATURAL")]
    if "cholmod" in available_backends():
        methods += [("CHOLMOD, AMD", _cholmod, "amd"), ("CHOLMOD, METIS", _cholmod, "metis"),
                    ("CHOLMOD, grid ND", _cholmod, "natural")]
    if args.only:
        methods = [m for m in methods if any(k in m[0] for k in args.only.split(","))]
    for size in args.sizes.split(","):
        rows, cols = (int(x) for x in size.split("x"))
        rng = np.random.default_rng(0)
        # assembled in grid nested-dissection order; a random relabelling gives the
        # libraries' orderings no head start from it
        a = assemble_tile(Tile(rng.uniform(1e-6, 100e-6, (rows, cols)), r_row=2.5, r_col=2.5)).a_ff
        shuffle = rng.permutation(a.shape[0])
        shuffled = a[shuffle][:, shuffle].tocsc()
        results = {name: [] for name, _, _ in methods}
        for _ in range(args.reps if rows * cols <= 300_000 else 1):  # interleaved, round by round
            for name, run, option in methods:
                results[name].append(run(a if option.lower() == "natural" else shuffled, option))
        base = results.get("CHOLMOD, grid ND")
        for name, runs in results.items():
            cpu = [r[1] for r in runs]
            ratio = f"{benchlib.median_ratio(cpu, [r[1] for r in base]):>12.2f}x" if base else f"{'-':>13}"
            print(f"{size:>9} {name:>30} {benchlib.median(cpu):>8.2f} {benchlib.median([r[0] for r in runs]):>8.2f} "
                  f"{ratio} {runs[0][2] / 1e6:>9.1f}M", flush=True)
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
