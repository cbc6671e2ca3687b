"""Spiking-network evaluation speed with and without input-aware early stop (issue 28).

A 400-120-10 ReLU MLP trained on the MNIST sample (20 × 20 images) runs as an
integrate-and-fire spiking network (rate coding, reset by subtraction) on RRAM tiles of at
most 64 × 64 pairs with 14 nm wires and read noise, every step's crossbar product through the
tiles (:func:`circuitsim.network.spiking.evaluate_mapped`). The runs without and with early
stop alternate, pair by pair; the script prints wall and CPU seconds of each, images per
second and image-steps per second (images × time steps each image used), the median over the
pairs of the speed-up, the accuracy and the steps used, and the load before and after.

Run: ``python bench/bench_snn.py [--pairs 3] [--steps 16] [--margin 2]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile

from benchlib import environment, median_ratio, timed

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import device_preset, wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import auto_partition_layers, map_network
from circuitsim.network.mlp import MLPConfig, load_or_train
from circuitsim.network.spiking import SpikingConfig, evaluate_mapped
from circuitsim.tile.tile_cache import TileCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--margin", type=float, default=2.0)
    args = parser.parse_args()
    print(environment())
    data = load_dataset("mnist", side=20)
    with tempfile.TemporaryDirectory() as cache:
        mlp = load_or_train(data, MLPConfig(layers=(400, 120, 10), activation="relu", epochs=10), cache)
    device = dataclasses.replace(device_preset("rram-zhang2020"), statistics=DeviceStatistics(read_noise=0.02))
    circuit = CircuitConfig(device=device, wires=wire_preset("imac-14nm"))
    mapped = map_network(mlp, auto_partition_layers(mlp, 64), circuit, TileCache())
    config = SpikingConfig.preset("if").replace(time_steps=args.steps)
    n = len(data.y_test)
    print(f"{n} test images, {args.steps} steps, {mapped.n_tiles} tiles, ANN accuracy on the tiles "
          f"{mapped.accuracy(data.x_test, data.y_test):.4f}")
    walls: dict[str, list[float]] = {"full": [], "early": []}
    results = {}
    for _ in range(args.pairs):
        for name, margin in (("full", 0.0), ("early", args.margin)):
            result, wall, cpu = timed(lambda m=margin: evaluate_mapped(
                mapped, config.replace(early_stop_margin=m), data.x_test, data.y_test))
            walls[name].append(wall)
            results[name] = result
            print(f"  {name:5s} margin {margin:g}: wall {wall:.2f} s, CPU {cpu:.2f} s, {n / wall:.0f} images/s, "
                  f"{n * result['steps_mean'] / wall:.0f} image-steps/s, accuracy {result['accuracy']:.4f}, "
                  f"steps {result['steps_mean']:.2f}, saved {result['computation_saved']:.3f}, "
                  f"energy {result['energy_per_inference'] * 1e9:.3f} nJ/inference")
    for name in walls:
        wall = statistics.median(walls[name])
        print(f"median {name}: {wall:.2f} s, {n / wall:.0f} images/s, {n * args.steps / wall:.0f} images/s "
              f"per time step (images × {args.steps} / s)")
    print(f"median speed-up of early stop (pairs): {median_ratio(walls['full'], walls['early']):.2f}x; "
          f"computation saved {results['early']['computation_saved']:.3f}")
    print(environment())


if __name__ == "__main__":
    main()
