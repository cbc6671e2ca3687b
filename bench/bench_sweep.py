"""Benchmark: examples/amin2022.toml with a cold and a warm cache, and the evaluator alone.

The evaluator timing runs one configuration ([16, 8, 8] / [8, 8, 1]) over 10,000
images: the test split of the default MNIST sample repeated to 10,000 rows (a
timing workload only; accuracies are not reported from it).

Run: ``.venv/bin/python bench/bench_sweep.py``
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def timed_sweep(out: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the sweep process and its children) of one sweep."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(ROOT / "examples" / "amin2022.toml"),
                    "--out", str(out), "--cache", str(cache)], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    from circuitsim.devices import device_preset, wire_preset
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mapped import map_network
    from circuitsim.network.mapping import Partition
    from circuitsim.network.mlp import MLPConfig, load_or_train
    from circuitsim.tile.tile_cache import TileCache

    import benchlib

    print("start:", benchlib.environment())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold, cold_cpu = timed_sweep(tmp / "cold", tmp / "cache")
        warm, warm_cpu = timed_sweep(tmp / "warm", tmp / "cache")
        print(f"examples/amin2022.toml, cold cache (training + every tile): {cold:6.2f} s, CPU {cold_cpu:6.2f} s")
        print(f"examples/amin2022.toml, warm cache:                          {warm:6.2f} s, CPU {warm_cpu:6.2f} s")

        data = load_dataset("mnist", binarize=True)
        net = load_or_train(data, MLPConfig(), tmp / "cache" / "networks")
        circuit = CircuitConfig(device=device_preset("sot-mram-amin2022"), wires=wire_preset("imac-14nm"))
        parts = [Partition(16, 8), Partition(8, 8), Partition(8, 1)]
        mapped = map_network(net, parts, circuit, TileCache(tmp / "cache" / "tiles"))
        reps = int(np.ceil(10_000 / len(data.y_test)))
        x = np.tile(data.x_test, (reps, 1))[:10_000]
        y = np.tile(data.y_test, reps)[:10_000]
        best, cpu = min(benchlib.timed(lambda: mapped.accuracy(x, y))[1:] for _ in range(3))
        print(f"evaluator, 10,000 images, 16-8-8 / 8-8-1 ({mapped.n_tiles} tiles):     {best:6.3f} s, CPU {cpu:6.3f} s")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
