"""Benchmark: whole-circuit ngspice images per second against the evaluator's.

For the partitioned configurations of ``examples/amin2022.toml`` (13-4-3 / 4-3-1 and
16-8-8 / 8-8-1, point indices 4 and 6) it times one whole-network deck (every tile with
its TIAs, difference amplifiers, BSIM4 sigmoid neurons and drivers) as one ``.dc`` sweep
over 5 and over ``--images`` test images (the difference gives the cost per image and
the fixed cost: writing, loading and setting up the deck), and the evaluator with the
extracted neuron curves on the same images (best of three). Networks and tiles come from the usual cache
(``$CIRCUITSIM_CACHE`` or ``~/.cache/circuitsim``).

Run: ``.venv/bin/python bench/bench_validate.py [--images N] [--points 4,6]``
"""

from __future__ import annotations

import argparse
import dataclasses

POINTS = (4, 6)
FEW = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--points", default=",".join(map(str, POINTS)))
    args = parser.parse_args()
    import benchlib

    print("start:", benchlib.environment())

    from importlib.resources import files

    from circuitsim.network.mapped import map_network
    from circuitsim.study.points import CALIBRATION_IMAGES, PointContext
    from circuitsim.study.spec import build_circuit_config, load_spec
    from circuitsim.study.storage import default_cache_dir
    from circuitsim.study.validation import NeuronMLP, design_network
    from circuitsim.study.whole_circuit import (
        FullCircuitConfig,
        network_deck,
        simulate_network,
    )

    spec = load_spec(files("circuitsim") / "specs" / "amin2022.toml")
    context = PointContext(default_cache_dir())
    wanted = [int(p) for p in args.points.split(",")]
    rows = []
    for point in (p for p in spec.points() if p.index in wanted):
        circuit = dataclasses.replace(build_circuit_config(point.config), adc=None)
        net, _ = context.network(point.config)
        data = context.dataset(point.config)
        x = data.x_test[: args.images]
        mapped = map_network(net, point.partitions, circuit, context.tiles)
        designs = design_network(mapped, "transistor", data.x_train[:CALIBRATION_IMAGES])
        evaluator = NeuronMLP(mapped.mlp, designs)
        best, best_cpu = min(benchlib.timed(lambda: evaluator.output_voltages(x))[1:] for _ in range(3))
        deck_seconds = benchlib.timed(lambda: network_deck(mapped, designs, x * circuit.v_read))[1]
        few = simulate_network(mapped, designs, x[:FEW], FullCircuitConfig())
        result = simulate_network(mapped, designs, x, FullCircuitConfig())
        per_image = (result.seconds - few.seconds) / (len(x) - FEW)
        rows.append((f"{point.values['h_partitions']} / {point.values['v_partitions']}", mapped.n_tiles,
                     result.n_elements, deck_seconds, few.seconds - FEW * per_image, per_image, result.seconds,
                     len(x) / result.seconds, len(x) / best, best_cpu))
    meta = result.metadata
    print(f"whole circuit vs evaluator, {args.images} images, {meta['ngspice_version']} ({meta['solver']}, "
          f"{meta['ngspice_backend']} backend, one .dc sweep); fixed and per-image cost from {FEW} and "
          f"{args.images} images")
    print(f"{'partitions':>16} {'tiles':>6} {'elements':>9} {'deck s':>7} {'fixed s':>8} {'s/image':>8} "
          f"{'circuit s':>10} {'circuit img/s':>14} {'evaluator img/s':>16}")
    for name, tiles, elements, deck, fixed, per_image, seconds, circuit_rate, eval_rate, eval_cpu in rows:
        print(f"{name:>16} {tiles:>6} {elements:>9} {deck:>7.2f} {fixed:>8.1f} {per_image:>8.3f} {seconds:>10.1f} "
              f"{circuit_rate:>14.3f} {eval_rate:>16,.0f} (evaluator CPU {eval_cpu:.3f} s)")
    print("end:  ", benchlib.environment())


if __name__ == "__main__":
    main()
