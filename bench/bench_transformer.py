"""A vision transformer through ONNX and its mapped tiles (issue 27).

Run with ``.venv/bin/python bench/bench_transformer.py`` (needs torch, onnx, onnxruntime,
onnxscript: the test extras). A ViT for 28 x 28 images (7 x 7 patches, 16 tokens and a class
token, width 32, 4 heads, 2 encoder blocks, MLP 64, random weights — the time does not depend
on their values; ``circuitsim.network.torch_models.vision_transformer``) is exported by PyTorch's
default (dynamo) exporter and its legacy one and imported with ``circuitsim.load_network``;
part 1 reports each import's largest absolute and relative difference from onnxruntime on the
same file (64 images, one at a time: the exports fix the batch size at 1). Part 2 maps the
dynamo import's crossbar layers (patch embedding, QKV, projection, MLP, head) onto 64 x 64
canonical tiles of SOT-MRAM pairs with 14 nm wires and runs 1,000 images through them
(Fashion-MNIST's test set when installed, else random images), without and with an 8-bit SAR
ADC after every tile output, best of three, with the float forward for comparison.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

import benchlib
import circuitsim
from circuitsim.devices import wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import auto_partition_layers, map_network
from circuitsim.periphery.adc import ADCConfig
from circuitsim.tile.tile_cache import TileCache

N_IMAGES = 1000


def _images():
    try:
        from circuitsim.network.datasets import load_dataset

        data = load_dataset("fashion-mnist", side=28, crop=False)
        return data.x_test[:N_IMAGES].reshape(-1, 1, 28, 28), "Fashion-MNIST test set"
    except circuitsim.ConfigError:
        return np.random.default_rng(0).uniform(size=(N_IMAGES, 1, 28, 28)), "random images"


def _best(fn, repeats=3):
    best = (np.inf, 0.0)
    for _ in range(repeats):
        _, wall, cpu = benchlib.timed(fn)
        best = min(best, (wall, cpu))
    return best


def main() -> None:
    import onnxruntime as ort
    import torch
    from circuitsim.network.torch_models import vision_transformer

    print(benchlib.environment())
    torch.manual_seed(0)
    module = vision_transformer(side=28, patch=7, d=32, heads=4, depth=2, classes=10).eval()
    x, source = _images()
    nets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, dynamo in (("default exporter (dynamo)", True), ("legacy exporter", False)):
            path = Path(tmp) / f"vit-{dynamo}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=dynamo)
            net, load_wall, _ = benchlib.timed(lambda: circuitsim.load_network(path))
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            want = np.concatenate([session.run(None, {name: x[i:i + 1].astype(np.float32)})[0]
                                   for i in range(64)]).astype(np.float64)
            got = net.forward(x[:64].astype(np.float32).astype(np.float64))
            worst = float(np.abs(got - want).max())
            print(f"{label}: {len(net.layers)} layers, {len(net.crossbar_layers)} on crossbars, import "
                  f"{load_wall:.2f} s; vs onnxruntime on 64 images: max abs {worst:.2e}, "
                  f"max rel {worst / np.abs(want).max():.2e}")
            nets[dynamo] = net
    net = nets[True]
    print(f"MACs per image: {net.macs()}")
    float_wall, float_cpu = _best(lambda: net.forward(x))
    print(f"float forward       {N_IMAGES} images {float_wall:6.2f} s wall {float_cpu:6.2f} s CPU "
          f"({N_IMAGES / float_wall:.0f} images/s)  [{source}]")
    parts = auto_partition_layers(net, 64)
    for label, adc in (("no ADC", None), ("8-bit SAR ADC", ADCConfig(bits=8))):
        circuit = CircuitConfig(device=circuitsim.devices.Device(8.49e3, 25.46e3, levels=16),
                                wires=wire_preset("imac-14nm"), adc=adc)
        cache = TileCache()
        mapped, map_wall, _ = benchlib.timed(lambda: map_network(net, parts, circuit, cache, x[:64]))
        wall, cpu = _best(lambda: mapped.forward(x, energy=False))
        agree = float(np.mean(mapped.predict(x) == net.predict(x)))
        print(f"{label:14s} tiles {mapped.n_tiles:3d}  map {map_wall:5.2f} s  {N_IMAGES} images {wall:6.2f} s wall "
              f"{cpu:6.2f} s CPU ({N_IMAGES / wall:.0f} images/s); same class as float: {agree:.1%}")
    print(benchlib.environment())


if __name__ == "__main__":
    main()
