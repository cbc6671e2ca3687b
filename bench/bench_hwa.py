"""Benchmark: hardware-aware fine-tuning of the 400-120-84-10 network (target: < 5 min on 2 cores).

The network of examples/amin2022.toml (binary, MNIST sample, trained once and cached in a
temporary folder: the training is timed apart) on SOT-MRAM tiles with 14 nm wires, 13-4-3 /
4-3-1 partitions (67 tiles), fine-tuned with examples/compensation.toml's settings (10 epochs
over the 4,000 training images, Adam 0.003, effective weights re-extracted from the tiles
every 20 steps) with a cold tile cache, without and with a 4-bit SAR ADC after every tile.
Each run reports its wall time, the tile extractions it needed (cache misses) and the test
accuracy before and after.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_hwa.py``
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path


def main() -> None:
    from circuitsim.devices import device_preset, wire_preset
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.network.compensation import CompensationConfig, hwa_finetune
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mapped import map_network
    from circuitsim.network.mapping import auto_partition
    from circuitsim.network.mlp import MLPConfig, load_or_train
    from circuitsim.tile.tile_cache import TileCache
    from circuitsim.periphery.adc import ADCConfig

    import benchlib

    print("start:", benchlib.environment())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = load_dataset("mnist", binarize=True)
        start = time.perf_counter()
        net = load_or_train(data, MLPConfig(), tmp / "networks")
        print(f"training 400-120-84-10 (binary, 40 epochs, not part of the target): {time.perf_counter() - start:.1f} s")
        parts = auto_partition(net.config.layers, 32)
        plain = CircuitConfig(device=device_preset("sot-mram-amin2022"), wires=wire_preset("imac-14nm"))
        adc = dataclasses.replace(plain, adc=ADCConfig.preset("sar", bits=4, v_min=-1.0, v_max=1.0))
        config = CompensationConfig("hwa", epochs=10, learning_rate=0.003, refresh_steps=20)
        x_cal = data.x_train[:512]
        print(f"digital accuracy {net.accuracy(data.x_test, data.y_test):.3f}")
        for name, circuit in (("14 nm wires", plain), ("14 nm wires, 4-bit SAR ADC", adc)):
            cache = TileCache(tmp / f"tiles-{len(name)}")
            before = map_network(net, parts, circuit, cache, x_calibration=x_cal).accuracy(data.x_test, data.y_test)
            cache = TileCache(tmp / f"tiles-cold-{len(name)}")
            tuned, seconds, cpu = benchlib.timed(
                lambda: hwa_finetune(net, parts, circuit, cache, data.x_train, data.y_train, config))
            after = map_network(tuned, parts, circuit, cache, x_calibration=x_cal).accuracy(data.x_test, data.y_test)
            print(f"hwa fine-tuning, 13-4-3 / 4-3-1 (67 tiles), {name}: {seconds:6.1f} s (target < 300 s), "
                  f"CPU {cpu:6.1f} s, {cache.misses} tile extractions; accuracy {before:.3f} -> {after:.3f}")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
