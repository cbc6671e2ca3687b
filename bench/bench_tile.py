"""Benchmark: the native engine's whole T against one ngspice operating point (KLU), in fresh
processes, interleaved.

Tiles with 2.5 ohm wire segments, conductances uniform in [1 uS, 100 uS], outputs at ideal
virtual ground (``R``) or through TIAs (``R+TIA``). For each size and readout, ``--reps``
rounds; in each round every variant of the native engine runs in a fresh process (the whole
``T`` by ``TileSolver``, then one native ``simulate``), then one ngspice operating point in a
fresh process (shared library, loaded before the timing) for tiles up to
``--ngspice-max-cells``; ``--large-reps`` rounds above 300,000 cells. Printed per variant:
median CPU and wall seconds of the whole ``T``, CPU seconds of one ``simulate``, the
process's peak RSS and its prediction
(:func:`~circuitsim.tile.checks.estimate_peak_bytes` on top of the RSS before the tile),
ngspice's median CPU and wall seconds, the median over rounds of ngspice CPU / native CPU
(each round's pair measured one after the other) and the largest relative difference of
``T @ v`` and of ``simulate`` from ngspice's outputs; ``/first`` is the median over rounds of
the variant's CPU / the first variant's CPU (pairs measured one after the other). The load
average and the BLAS are printed before and after the table.

Variants: ``after`` (this tree, the system's BLAS), ``refblas`` (this tree on netlib's
reference BLAS, by ``LD_LIBRARY_PATH``), ``before`` (the tree given by ``--before`` on the
reference BLAS: ``git archive <rev> circuitsim | tar -x -C DIR``).

``--stages`` prints, for the ``after`` variant, the memory and time of each stage
(assembly, factorization, ports' block, transfer) in one more process.

Run: ``OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/bench_tile.py
[--sizes 64x64,...] [--readouts R,R+TIA] [--variants after,refblas,before --before DIR] [--reps 3] [--large-reps 1]``
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import benchlib

SIZES = "64x64,128x128,256x256,400x120,512x512,1024x1024"


def _tile(rows: int, cols: int, readout: str):
    from circuitsim.tile.crossbar import TIA, Tile

    rng = np.random.default_rng(0)
    tia = TIA() if readout == "R+TIA" else None
    tile = Tile(rng.uniform(1e-6, 100e-6, (rows, cols)), r_row=2.5, r_col=2.5, tia=tia)
    return tile, rng.uniform(0.0, 0.8, rows)


def native_worker(rows: int, cols: int, readout: str, solver: str | None) -> dict:
    from circuitsim.tile.checks import estimate_peak_bytes
    from circuitsim.tile.extract import simulate
    from circuitsim.tile.native_tile import TileSolver

    tile, v = _tile(rows, cols, readout)
    before = benchlib.rss_bytes()
    solver_obj, wall, cpu = benchlib.timed(lambda: TileSolver(tile, backend=solver))
    (T, _), wall2, cpu2 = benchlib.timed(solver_obj.transfer)
    backend = solver_obj.backend
    del solver_obj
    peak = benchlib.peak_rss_bytes()
    fast, _, sim_cpu = benchlib.timed(lambda: simulate(tile, v))
    outputs = [T @ v, fast.output_currents] + ([fast.output_voltages] if tile.tia is not None else [])
    return {"T_wall": wall + wall2, "T_cpu": cpu + cpu2, "sim_cpu": sim_cpu, "peak_gb": peak / 1e9,
            "predicted_gb": (before + estimate_peak_bytes(rows, cols, 2.5, 2.5, tile.tia is not None, backend)) / 1e9,
            "solver": backend, "blas": benchlib.blas_line().split(",")[0], "outputs": [o.tolist() for o in outputs]}


def ngspice_worker(rows: int, cols: int, readout: str) -> dict:
    from circuitsim.tile.crossbar import Tile
    from circuitsim.tile.extract import simulate

    simulate(Tile(np.full((2, 2), 1e-5)), np.ones(2), engine="ngspice")  # load the library first
    tile, v = _tile(rows, cols, readout)
    ref, wall, cpu = benchlib.timed(lambda: simulate(tile, v, engine="ngspice"))
    outputs = [ref.output_currents] + ([ref.output_voltages] if tile.tia is not None else [])
    return {"wall": wall, "cpu": cpu, "outputs": [o.tolist() for o in outputs]}


def stages_worker(rows: int, cols: int, readout: str) -> dict:
    """RSS (GB) and CPU seconds after each stage of the whole T, one process."""
    from circuitsim.tile.assembly import assemble_tile
    from circuitsim.tile.factor import SPDFactor
    from circuitsim.tile.native_tile import TileSolver

    tile, _ = _tile(rows, cols, readout)
    out = {"start": [benchlib.rss_bytes() / 1e9, 0.0, benchlib.peak_rss_bytes() / 1e9]}
    system, _, cpu = benchlib.timed(lambda: assemble_tile(tile))
    out["assembly"] = [benchlib.rss_bytes() / 1e9, cpu, benchlib.peak_rss_bytes() / 1e9]
    f, _, cpu = benchlib.timed(lambda: SPDFactor(system.a_ff, None))
    out["factorization"] = [benchlib.rss_bytes() / 1e9, cpu, benchlib.peak_rss_bytes() / 1e9]
    _, _, cpu = benchlib.timed(lambda: f.trailing_cholesky(len(system.ports)))
    out["ports' block"] = [benchlib.rss_bytes() / 1e9, cpu, benchlib.peak_rss_bytes() / 1e9]
    solver = TileSolver.__new__(TileSolver)  # the same system and factor, for transfer()
    solver.tile, solver.backend, solver.system, solver.factor, solver._transfer = tile, f.backend, system, f, None
    _, _, cpu = benchlib.timed(solver.transfer)
    out["T, Y and the probe check"] = [benchlib.rss_bytes() / 1e9, cpu, benchlib.peak_rss_bytes() / 1e9]
    return out


def _diff(native: dict, spice: dict) -> float | None:
    if "outputs" not in native or "outputs" not in spice:
        return None
    refs = spice["outputs"] + [spice["outputs"][0]]  # T @ v and simulate against the currents
    pairs = [(native["outputs"][0], refs[0]), (native["outputs"][1], refs[0])]
    if len(native["outputs"]) > 2:
        pairs.append((native["outputs"][2], spice["outputs"][1]))
    return max(float(np.abs(np.subtract(a, b)).max() / np.abs(b).max()) for a, b in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--readouts", default="R,R+TIA")
    parser.add_argument("--solver", default=None, choices=[None, "cholmod", "superlu"])
    parser.add_argument("--variants", default="after", help="comma-separated: after, refblas, before")
    parser.add_argument("--before", default=None, metavar="DIR", help="folder holding an older circuitsim/")
    parser.add_argument("--reps", type=int, default=3, help="rounds per size up to 300,000 cells")
    parser.add_argument("--large-reps", type=int, default=1, help="rounds per size above 300,000 cells")
    parser.add_argument("--ngspice-max-cells", type=int, default=256 * 256)
    parser.add_argument("--stages", action="store_true", help="memory and time per stage (after variant)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, size, readout = args.worker[:3]
        rows, cols = (int(x) for x in size.split("x"))
        result = (native_worker(rows, cols, readout, args.solver) if kind == "native"
                  else stages_worker(rows, cols, readout) if kind == "stages" else ngspice_worker(rows, cols, readout))
        print(json.dumps(result))
        return

    variants = {"after": (None, None), "refblas": (None, benchlib.REFERENCE_BLAS),
                "before": (args.before, benchlib.REFERENCE_BLAS)}
    chosen = args.variants.split(",")
    if "before" in chosen and not args.before:
        parser.error("--variants before needs --before DIR")
    from circuitsim.spice import find_ngspice

    info = find_ngspice()
    print(f"ngspice-{info.version} ({info.solver}, shared backend), numpy {np.__version__}")
    print("start:", benchlib.environment())
    print(f"{'tile':>9} {'readout':>7} {'variant':>7} {'BLAS':>9} {'T cpu s':>8} {'T wall s':>8} {'/first':>6} {'sim cpu':>8} "
          f"{'peak GB':>7} {'pred GB':>7} {'ngspice cpu':>11} {'ngspice wall':>12} {'ngspice/T':>9} {'max rel diff':>12}")
    sys.stdout.flush()
    extra = ["--solver", args.solver] if args.solver else []
    for size in args.sizes.split(","):
        rows, cols = (int(x) for x in size.split("x"))
        reps = args.reps if rows * cols <= 300_000 else args.large_reps
        for readout in args.readouts.split(","):
            runs = {v: [] for v in chosen}
            spice = []
            for _ in range(reps):  # interleaved: every variant, then ngspice, round by round
                for v in chosen:
                    runs[v].append(benchlib.worker(__file__, ["native", size, readout] + extra, *variants[v]))
                if rows * cols <= args.ngspice_max_cells:
                    spice.append(benchlib.worker(__file__, ["ngspice", size, readout]))
            spice_cpu = [s.get("cpu") for s in spice]
            for v in chosen:
                ok = [r for r in runs[v] if "error" not in r]
                if not ok:
                    print(f"{size:>9} {readout:>7} {v:>7} failed: {runs[v][0]['error']}")
                    continue
                cpu = [r.get("T_cpu") for r in runs[v]]
                ratio = benchlib.median_ratio(spice_cpu, cpu) if spice else None
                diffs = [d for r, s in zip(runs[v], spice) if (d := _diff(r, s)) is not None]
                blas = ok[0]["blas"].replace("CHOLMOD BLAS ", "").split(" (")[0]
                spice_wall = benchlib.median([s.get('wall') for s in spice])
                spice_text = (f"{benchlib.median(spice_cpu):>11.3f} {spice_wall:>12.3f} "
                              f"{ratio:>8.1f}x {max(diffs):>12.2e}") if spice and diffs \
                    else f"{'-':>11} {'-':>12} {'-':>9} {'-':>12}"
                t_wall, sim_cpu = benchlib.median([r.get('T_wall') for r in ok]), benchlib.median([r.get('sim_cpu') for r in ok])
                first = benchlib.median_ratio(cpu, [r.get("T_cpu") for r in runs[chosen[0]]])
                print(f"{size:>9} {readout:>7} {v:>7} {blas:>9} {benchlib.median(cpu):>8.3f} {t_wall:>8.3f} "
                      f"{first:>5.2f}x {sim_cpu:>8.3f} "
                      f"{max(r['peak_gb'] for r in ok):>7.2f} {ok[0]['predicted_gb']:>7.2f} {spice_text}", flush=True)
    if args.stages:
        for size in args.sizes.split(","):
            for readout in args.readouts.split(","):
                st = benchlib.worker(__file__, ["stages", size, readout] + extra)
                print(f"stages of {size} {readout} (RSS now GB, CPU s, peak RSS GB): "
                      + "; ".join(f"{k} {v[0]:.2f} / {v[1]:.2f} s / {v[2]:.2f}" for k, v in st.items() if k != "error")
                      + (f" failed: {st['error']}" if "error" in st else ""), flush=True)
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
