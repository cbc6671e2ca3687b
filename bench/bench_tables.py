"""Cost of keeping a sweep's results tables up to date, per point, against the number of points.

The sweep rewrites results.csv/results.parquet only when the time since the last rewrite is at
least ten times what that rewrite took (``circuitsim.study.sweep._Tables``), so the cost per
point stays flat; rewriting them after every point (0.2.0) grows linearly per point
(quadratically in total). Run: ``.venv/bin/python bench/bench_tables.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from circuitsim.study.sweep import _Tables


def row(k: int) -> dict:
    return {"point": k, "h_partitions": "4-2", "v_partitions": "2-2", "r_row": 2.0, "accuracy": 0.9,
            "digital_accuracy": 0.91, "n_tiles": 12, "status": "ok", "error": ""}


def run(n: int, every_point: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        tables, rows = _Tables(Path(tmp), {"points": n}), {}
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(n):
            rows[k] = row(k)
            tables.computed += 1
            tables.write(rows) if every_point else tables.maybe_write(rows)
        tables.write(rows)
        return time.perf_counter() - start, time.process_time() - cpu


if __name__ == "__main__":
    import benchlib

    print("start:", benchlib.environment())
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 4000, 16000]
    for n in sizes:
        t, cpu = run(n, False)
        line = f"{n:6d} points: incremental {t:7.2f} s, CPU {cpu:7.2f} s ({1e3 * t / n:.3f} ms/point)"
        if n <= 4000:
            t_all, cpu_all = run(n, True)
            line += f"   every point {t_all:7.2f} s, CPU {cpu_all:7.2f} s ({1e3 * t_all / n:.3f} ms/point)"
        print(line, flush=True)
    print("end:  ", benchlib.environment())
