"""A small vision transformer trained on Fashion-MNIST, imported through ONNX, on crossbars.

PyTorch trains :func:`circuitsim.network.torch_models.vision_transformer` (28 × 28 images,
7 × 7 patches: 16 tokens and a class token, width 32, 4 heads, 2 encoder blocks, GELU MLP 64)
for ``--epochs`` epochs (AdamW, one-cycle learning rate, batches of 128);
``circuitsim.from_torch`` exports it to ONNX (``OUT/vit.onnx``, kept: a second run skips the
training) and imports it. Its crossbar layers — the patch embedding, QKV, the attention's
projection, the MLP, the head — are then mapped onto tiles of at most ``size × size`` cells
(partitioned by ``auto_partition_layers``) of SOT-MRAM pairs with 256 conductance levels, for
every wire preset, without and with an 8-bit SAR ADC after every tile output (calibrated on 64
test images); attention's products, LayerNorm, softmax and GELU run digitally. The table
(``OUT/vit_fashion_mnist.csv``, printed as Markdown) holds each point's tiles and accuracy on the
first ``--images`` test images.

    OPENBLAS_NUM_THREADS=1 python examples/vit_fashion_mnist.py --out results/vit

needs ``pip install 'aimc-circuitsim[torch]'``; ``--smoke`` (the test suite's run) trains one
epochs on 2,000 images, exports with the (faster) legacy exporter, scores 500 test images and
maps one point on 200.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.devices import Device, wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import auto_partition_layers, map_network
from circuitsim.network.torch_models import vision_transformer
from circuitsim.periphery.adc import ADCConfig
from circuitsim.tile.tile_cache import TileCache

VIT = dict(side=28, patch=7, d=32, heads=4, depth=2, classes=10)


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0):
    """The ViT trained on images ``x`` ``(N, 1, 28, 28)`` with labels ``y``."""
    import torch

    torch.manual_seed(seed)
    module = vision_transformer(**VIT)
    images, labels = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)
    batch = 128
    steps = epochs * max(1, len(images) // batch)
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, max(1, len(images) - batch + 1), batch):
            chosen = order[start:start + batch]
            loss = torch.nn.functional.cross_entropy(module(images[chosen]), labels[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return module.eval()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/vit_fashion_mnist"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=1000, help="test images per mapped point")
    parser.add_argument("--sizes", default="32,64,128", help="maximum tile sizes")
    parser.add_argument("--wires", default="ideal,neurosim-14nm,imac-14nm", help="wire presets")
    parser.add_argument("--exporter", default="auto", choices=["auto", "dynamo", "legacy"],
                        help="PyTorch's ONNX exporter (auto: the default one, else the legacy one)")
    parser.add_argument("--smoke", action="store_true", help="2 epochs on 2,000 images, one point")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.images, args.sizes, args.wires, args.exporter = 2, 200, "64", "imac-14nm", "legacy"
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("fashion-mnist", side=28, crop=False, train_limit=2000 if args.smoke else None)
    x_test, y_test = data.x_test.reshape(-1, 1, 28, 28), data.y_test
    if args.smoke:
        x_test, y_test = x_test[:500], y_test[:500]
    model = args.out / "vit.onnx"
    if model.exists():
        net = circuitsim.load_network(model)
    else:
        start = time.perf_counter()
        module = train(data.x_train.reshape(-1, 1, 28, 28), data.y_train, args.epochs)
        print(f"trained {args.epochs} epochs on {len(data.y_train)} images in {time.perf_counter() - start:.0f} s")
        net = circuitsim.from_torch(module, np.zeros((1, 1, 28, 28)), path=model, name="vit",
                                  exporter=args.exporter)
    digital = net.accuracy(x_test, y_test)
    print(f"digital accuracy {digital:.1%} on {len(y_test)} test images; crossbar layers "
          f"{len(net.crossbar_layers)} of {len(net.layers)}; MACs per image {net.macs()}")
    x, y = x_test[:args.images], y_test[:args.images]
    rows, cache = [], TileCache()
    for wires in args.wires.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            parts = auto_partition_layers(net, size)
            row = {"wires": wires, "max_array": size, "digital_accuracy": digital}
            for label, adc in (("accuracy", None), ("accuracy_adc8", ADCConfig(bits=8))):
                circuit = CircuitConfig(device=Device(8.49e3, 25.46e3, levels=256), wires=wire_preset(wires), adc=adc)
                mapped = map_network(net, parts, circuit, cache, x_test[-64:] if adc else None)
                row[label] = mapped.accuracy(x, y)
                row["tiles"] = mapped.n_tiles
            rows.append(row)
    with open(args.out / "vit_fashion_mnist.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"| wires | max array | tiles | accuracy ({len(y)} images) | with 8-bit ADC |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['wires']} | {r['max_array']} | {r['tiles']} | {r['accuracy']:.1%} | {r['accuracy_adc8']:.1%} |")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
