"""Many tasks, one analog model (Li et al.): a ViT programmed once, a digital LoRA adapter per task and age.

The vision transformer of ``examples/vit_fashion_mnist.py`` (trained on Fashion-MNIST by
PyTorch, imported through ONNX; ``--model`` reuses its ``vit.onnx``) is programmed once onto
tiles of at most ``--size`` cells: PCM cells (aihwkit's statistical model: programming noise,
read noise, drift ν ~ N(0.049, 0.008), *no* global drift compensation), ``--wires`` wires and an
8-bit ADC after every tile output. One device seed, so one realization: at every age the cells
hold the same programmed conductances, drifted to 1 h, 1 day or 1 month after programming
(the ADC ranges are calibrated on 64 Fashion-MNIST training images at each age).

Per row (a task at an age) the analog weights stay as programmed and
:func:`circuitsim.network.compensation.compensate` trains rank-``--rank`` low-rank adapters
(``lora``, digital) through that hardware's forward pass (tiles, read noise, ADCs straight
through): (a) Fashion-MNIST at 1 h, (b) a new task, the MNIST sample, on the *same* analog
weights, (c) Fashion-MNIST and MNIST after 1 day and 1 month of drift. Against it, the ``hwa``
method of the same function fine-tunes every weight through the hardware at that age (device
noise injected, the drift of that age included) and **reprograms** the tiles with the result.
The stale column reuses the adapters trained at 1 h on the drifted hardware. The table
(``OUT/many_tasks.csv``, printed as Markdown) gives test accuracies and the adapters' overhead
(parameters and multiply-accumulates per image as a fraction of the model's).

    OPENBLAS_NUM_THREADS=1 python examples/many_tasks_one_analog_model.py --model results/vit/vit.onnx \\
        --out results/many_tasks

``--smoke`` (the test suite's run) trains a ViT for one epoch on 1,000 images and every adapter
and fine-tuning for one epoch on 300 images, on ideal wires, scoring 200 test images.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.device_statistics import statistics_preset
from circuitsim.devices import Device, wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.compensation import CompensatedNetwork, CompensationConfig, compensate
from circuitsim.network.compensation.adapters import adapter_overhead
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import auto_partition_layers, map_network
from circuitsim.periphery.adc import ADCConfig
from circuitsim.tile.tile_cache import TileCache

AGES = {"1 h": 3600.0, "1 day": 86400.0, "1 month": 30 * 86400.0}
"""Time from programming to inference, seconds."""

ROWS = (("fashion-mnist", "1 h"), ("mnist", "1 h"), ("fashion-mnist", "1 day"), ("fashion-mnist", "1 month"),
        ("mnist", "1 month"))
"""(task, age) of each row: the pre-training task, a new task, the same hardware after drift."""


def circuit_at(age: float, wires: str, seed: int) -> CircuitConfig:
    """The hardware ``age`` seconds after programming (one realization per ``seed``)."""
    stats = statistics_preset("pcm-aihwkit").replace(t_inference=age, drift_compensation="none", seed=seed)
    return CircuitConfig(device=Device(40e3, 40e6, levels=256, statistics=stats), wires=wire_preset(wires),
                         adc=ADCConfig(bits=8))


def vit(out: Path, model: Path | None, smoke: bool, fashion) -> circuitsim.Network:
    """The Fashion-MNIST ViT: ``model`` when given, else trained by ``examples/vit_fashion_mnist.py``."""
    if model is not None:
        return circuitsim.load_network(model)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from vit_fashion_mnist import train

    images = 1000 if smoke else len(fashion.y_train)
    module = train(fashion.x_train[:images].reshape(-1, 1, 28, 28), fashion.y_train[:images], 1 if smoke else 3)
    return circuitsim.from_torch(module, np.zeros((1, 1, 28, 28)), path=out / "vit.onnx", name="vit",
                                 exporter="legacy" if smoke else "auto")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/many_tasks"))
    parser.add_argument("--model", type=Path, help="the ViT's ONNX file (default: train one)")
    parser.add_argument("--size", type=int, default=64, help="maximum tile size, cells")
    parser.add_argument("--wires", default="imac-14nm", help="wire preset")
    parser.add_argument("--rank", type=int, default=2, help="rank of every layer's adapter")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of adapters and of fine-tuning")
    parser.add_argument("--train", type=int, default=10000, help="training images per task (at most)")
    parser.add_argument("--test", type=int, default=2000, help="test images per task (at most)")
    parser.add_argument("--seed", type=int, default=0, help="device seed: the one realization")
    parser.add_argument("--smoke", action="store_true", help="one epoch on 300 images, ideal wires, 200 test images")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.train, args.test, args.wires = 1, 300, 200, "ideal"
    args.out.mkdir(parents=True, exist_ok=True)
    tasks = {name: load_dataset(name, side=28, crop=False, limit=args.test, train_limit=1000 if args.smoke else None)
             for name in ("fashion-mnist", "mnist")}
    net = vit(args.out, args.model, args.smoke, tasks["fashion-mnist"])

    def split(name: str, part: str, limit: int):
        data = tasks[name]
        x, y = (data.x_train, data.y_train) if part == "train" else (data.x_test, data.y_test)
        return x[:limit].reshape(-1, 1, 28, 28), y[:limit]

    parts, cache = auto_partition_layers(net, args.size), TileCache()
    x_adc = split("fashion-mnist", "train", 64)[0]
    lora = CompensationConfig("lora", rank=args.rank, epochs=args.epochs, calibration_images=512)
    hwa = CompensationConfig("hwa", epochs=args.epochs, calibration_images=512)
    rows, fresh = [], {}
    for task, age in ROWS:
        circuit = circuit_at(AGES[age], args.wires, args.seed)
        mapped = map_network(net, parts, circuit, cache, x_calibration=x_adc)
        x_train, y_train = split(task, "train", args.train)
        x_test, y_test = split(task, "test", args.test)
        start = time.perf_counter()
        adapted = compensate(net, mapped, lora, circuit, cache, x_train, y_train)
        seconds = time.perf_counter() - start
        fresh.setdefault(task, adapted)
        stale = CompensatedNetwork(mapped, lora, adapters=fresh[task].adapters, network=net)
        tuned = compensate(net, mapped, hwa, circuit, cache, x_train, y_train)
        params, macs = adapter_overhead(mapped, args.rank)
        rows.append({"task": task, "age": age, "digital": net.accuracy(x_test, y_test),
                     "analog": mapped.accuracy(x_test, y_test), "lora": adapted.accuracy(x_test, y_test),
                     "lora_1h": stale.accuracy(x_test, y_test), "hwa_reprogrammed": tuned.accuracy(x_test, y_test),
                     "lora_seconds": seconds, "adapter_params": params, "adapter_macs": macs})
        print(rows[-1], flush=True)
    analog_weights = sum(c.weights.size for c in mapped.crossbars)
    model_macs = sum(net.macs().values())
    for row in rows:
        row.update(analog_weights=analog_weights, model_macs=model_macs, test_images=len(y_test))
    with open(args.out / "many_tasks.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"adapters of rank {args.rank}: {params} parameters per task ({params / analog_weights:.1%} of the "
          f"{analog_weights} analog weights), {macs} MACs per image ({macs / model_macs:.1%} of {model_macs})")
    print("| task | age | digital | analog, as programmed | + LoRA (this row's) | + LoRA of 1 h | "
          "HWA fine-tuned, reprogrammed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        stale = "" if r["age"] == "1 h" else f"{r['lora_1h']:.1%}"
        print(f"| {r['task']} | {r['age']} | {r['digital']:.1%} | {r['analog']:.1%} | {r['lora']:.1%} | {stale} | "
              f"{r['hwa_reprogrammed']:.1%} |")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
