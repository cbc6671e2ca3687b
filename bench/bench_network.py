"""LeNet-5 through its mapped tiles, and ONNX import of a 1-million-parameter model.

Run with ``.venv/bin/python bench/bench_network.py``. Part 1 maps a LeNet-5
(conv 5x5x6, pool, conv 5x5x16, pool, dense 120-84-10; ternary weights, random — the time
does not depend on their values) onto 64 x 64 tiles of SOT-MRAM pairs with 14 nm wires,
once to characterize the tiles and once more from the tile cache, then runs 10,000
28 x 28 images through the tiles (Fashion-MNIST's test set when installed, else random
images), without and with an 8-bit SAR ADC after every tile output, and reports the best of
three. Part 2 writes an ONNX model (conv 5x5x32, 2x2 pool, conv 5x5x64, dense 1024-... with
about 10^6 parameters) and times ``circuitsim.load_network`` (best of three).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import benchlib
import circuitsim
from circuitsim.devices import wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.cnn_training import CNNConfig, build_cnn
from circuitsim.network.mapped import auto_partition_layers, map_layers
from circuitsim.tile.tile_cache import TileCache
from circuitsim.periphery.adc import ADCConfig

N_IMAGES = 10_000


def _images(rng):
    try:
        from circuitsim.network.datasets import load_dataset

        data = load_dataset("fashion-mnist", side=28, crop=False)
        return data.x_test[:N_IMAGES], "Fashion-MNIST test set"
    except circuitsim.ConfigError:
        return rng.uniform(size=(N_IMAGES, 784)), "random images"


def _best(fn, repeats=3):
    """Best wall seconds of ``repeats`` calls; the CPU seconds of that call are left in
    ``_best.cpu``."""
    best = np.inf
    for _ in range(repeats):
        _, wall, cpu = benchlib.timed(fn)
        if wall < best:
            best, _best.cpu = wall, cpu
    return best


def bench_lenet(rng) -> None:
    config = CNNConfig(weights="ternary")
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (400, 120), (120,), (120, 84), (84,), (84, 10), (10,)]
    net = build_cnn(config, (1, 28, 28), 10, [rng.uniform(-1, 1, s) for s in shapes])
    x, source = _images(rng)
    parts = auto_partition_layers(net, 64)
    print(f"LeNet-5, {net.layers[0].weight.size + sum(net.layers[k].weight.size for k in net.crossbar_layers[1:])} "
          f"weights, 64x64 tiles, {N_IMAGES} images ({source}), {os.cpu_count()} cores")
    for adc in (None, ADCConfig.preset("sar", bits=8, v_min=-1, v_max=1)):
        circuit = CircuitConfig(wires=wire_preset("imac-14nm"), adc=adc)
        cache = TileCache()
        first = map_layers(net, parts, circuit, cache, x_calibration=x[:512])
        again = map_layers(net, parts, circuit, cache, x_calibration=x[:512])
        seconds = _best(lambda: again.predict(x))
        cpu = _best.cpu
        label = "8-bit SAR ADC" if adc else "no ADC       "
        print(f"  {label}  tiles {again.n_tiles:3d}  map {first.seconds:6.2f} s (cached {again.seconds:5.2f} s)  "
              f"{N_IMAGES} images {seconds:6.2f} s, CPU {cpu:6.2f} s  ({N_IMAGES / seconds:,.0f} images/s)")


def bench_onnx_import(rng) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, shape):
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)

    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2, 2, 2]), n("Relu", ["c1"], ["r1"]),
             n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p1", "w2", "b2"], ["c2"]), n("Relu", ["c2"], ["r2"]),
             n("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Flatten", ["p2"], ["f"]), n("Gemm", ["f", "w3", "b3"], ["g3"]), n("Relu", ["g3"], ["r3"]),
             n("Gemm", ["r3", "w4", "b4"], ["y"])]
    inits = [const("w1", (32, 1, 5, 5)), const("b1", (32,)), const("w2", (64, 32, 5, 5)), const("b2", (64,)),
             const("w3", (1024, 896)), const("b3", (896,)), const("w4", (896, 10)), const("b4", (10,))]
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    params = sum(int(np.prod(t.dims)) for t in inits)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.onnx")
        onnx.save(model, path)
        seconds = _best(lambda: circuitsim.load_network(path))
        size = os.path.getsize(path) / 1e6
    print(f"ONNX import: {params:,} parameters ({size:.1f} MB), load_network best of 3: {seconds:.3f} s, "
          f"CPU {_best.cpu:.3f} s")


def main() -> None:
    rng = np.random.default_rng(0)
    print("start:", benchlib.environment())
    print(f"numpy {np.__version__}")
    bench_lenet(rng)
    bench_onnx_import(rng)
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
