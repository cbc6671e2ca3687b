"""Benchmark: factorizations and orderings of a tile's reduced system (the choice behind
the native engine).

For each size, the same matrix (R-only tile, 2.5 ohm segments, assembled from the
grid) is factorized by SuperLU with its own orderings (MMD on A^T + A, COLAMD),
by SuperLU in the grid's nested-dissection order, and, when scikit-sparse is
installed, by CHOLMOD with its own AMD and METIS orderings and in the grid's
order. Printed: seconds of the factorization alone (ordering of the library
included, the grid ordering excluded: it is part of assembly) and the entries of
the factor (L + U for SuperLU, L for CHOLMOD).

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_factor.py
[--sizes 256x256,512x512] [--only "grid ND,AMD"]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse.linalg as spla

from circuitsim.tile.assembly import assemble_tile
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.factor import available_backends


def _superlu(a, permc):
    start = time.perf_counter()
    lu = spla.splu(a, permc_spec=permc, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return time.perf_counter() - start, lu.nnz


def _cholmod(a, ordering):
    from sksparse.cholmod import cholesky

    start = time.perf_counter()
    f = cholesky(a, ordering_method=ordering)
    return time.perf_counter() - start, f.L().nnz  # entries counted after the timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,512x512,1024x1024")
    parser.add_argument("--only", default="", help="comma-separated parts of method names to run")
    args = parser.parse_args()
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"cpus allowed: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'tile':>9} {'factorization':>30} {'seconds':>8} {'entries':>10}")
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
        for name, run, option in methods:
            matrix = a if option.lower() == "natural" else shuffled
            seconds, entries = run(matrix, option)
            print(f"{size:>9} {name:>30} {seconds:>8.2f} {entries / 1e6:>9.1f}M", flush=True)


if __name__ == "__main__":
    main()
