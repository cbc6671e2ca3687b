"""Layer-by-layer ngspice validation of layer networks (CNNs, ONNX models).

``circuitsim validate --scope layer`` on a spec whose network is a CNN or an ONNX model runs
two paths over the first test images:

- **evaluator path**: :func:`~circuitsim.network.mapped.map_network` (tiles as their
  cached transfer matrices ``T``; tiles of nonlinear cells, ``[cells]``, solved exactly by the
  native Newton engine, :mod:`circuitsim.network.nonlinear_tiles`);
- **circuit path**: the same network in which the sums of every crossbar layer come from
  ngspice operating points of its tiles (the very circuits whose ``T`` the evaluator uses,
  driven by the layer's actual input voltages ``x · v_read``): for a dense layer every
  image, for a convolution a sample of ``positions`` output positions per image (seeded),
  the other positions from the evaluator. Digital layers (pooling, activations, …) are the
  same float64 code on both paths. With ``circuit.readout = "sense"`` the tiles' bit lines end
  in their sense resistors (:func:`~circuitsim.tile.readout.sense_resistor_circuit`). Tiles of
  nonlinear cells are their decks of :func:`~circuitsim.tile.nonlinear_run.nonlinear_deck` (the
  cells' B-sources, resistors and MOSFETs; ngspice at tight tolerances); an MLP of nonlinear
  cells is validated this way.
  With ``circuit.topology = "resistance-sum"`` (any network, MLPs included) the circuits are
  the tiles' strings (their realized MTJs, FETs set by the 0/1 inputs) and the sums the
  readout's (:func:`~circuitsim.network.resistance_sum.string_sums`).

The row reports the share of images both paths classify alike (``agreement``), both
accuracies, the largest difference of a simulated sum (normalized units, 1 = one unit weight
at full input), the number of ngspice operating points and their time. No ADC (as the
whole-circuit validation).

Public API
----------
validate_layer_point, validation_inputs
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..errors import CircuitsimError, ConfigError, EnvironmentFailure
from ..network.layers import weight_scale
from ..network.mapped import map_network
from ..network.resistance_sum import string_sums
from ..tile.crossbar import Tile, build_circuit, input_source_names, sense_source_names
from ..tile.netlist import write_netlist
from ..tile.nonlinear_run import ngspice_currents
from ..tile.readout import sense_resistor_circuit
from .spec import build_circuit_config


def _ngspice_currents(tile: Tile, volts: np.ndarray, backend: str, r_sense: float = 0.0) -> np.ndarray:
    """Output currents of ``tile`` for each row of input voltages, one operating point each (through
    sense resistors of ``r_sense`` ohm to ground when > 0, else into virtual grounds)."""
    from ..spice import get_backend

    deck = write_netlist(sense_resistor_circuit(tile, r_sense) if r_sense > 0 else build_circuit(tile))
    sources = [s.lower() for s in input_source_names(tile.rows)]
    sensed = [f"i({s.lower()})" for s in sense_source_names(tile.cols)]
    steps = [[f"alter {src} dc = {v:.12g}" for src, v in zip(sources, row)] + ["op"] for row in volts]
    results = get_backend(backend).run(deck, steps, save=sensed)
    return np.array([[r[name][0] for name in sensed] for r in results])


def validation_inputs(point, context, n_images: int):
    """``(circuit without ADC, network, dataset, x, y)`` of a point to validate on its first
    ``n_images`` test images (DC readouts: current or sense)."""
    circuit = dataclasses.replace(build_circuit_config(point.config), adc=None)
    if circuit.charge_mode:
        raise ConfigError(f"validate runs DC decks; circuit.readout = {circuit.readout!r} integrates a transient: "
                          "validate the point with readout = 'current' or 'sense'")
    if circuit.weight_bits is not None or circuit.dac.kind != "none" or circuit.negative != "differential":
        raise ConfigError("validate compares circuits of one cell pair per weight driven at h · v_read; "
                          "remove [mapping] weight_bits, negative and [dac] from the spec to validate it")
    net, _ = context.network(point.config)
    data = context.dataset(point.config)
    return circuit, net, data, data.x_test[:n_images], data.y_test[:n_images]


def validate_layer_point(point, context, n_images: int, positions: int = 4, seed: int = 0) -> dict:
    """Validate one point of a CNN or ONNX spec layer by layer (see the module notes)."""
    row = {"point": point.index, **{k.split(".")[-1]: v for k, v in point.values.items()}}
    try:
        circuit, net, data, x, y = validation_inputs(point, context, n_images)
        if circuit.topology == "imac-sim":
            raise ConfigError("layer-by-layer validation compares canonical tiles with ngspice; an imac-sim layer "
                              "circuit is checked whole against ngspice by `circuitsim layer --topology imac-sim`")
        mapped = map_network(net, point.partitions, circuit, context.tiles)
        start = time.perf_counter()
        pred_eval = mapped.predict(x)
        evaluator_seconds = time.perf_counter() - start
        by_index = {c.index: c for c in mapped.crossbars}
        rng = np.random.default_rng(seed)
        dg, stats = circuit.device.g_max - circuit.device.g_min, {"ops": 0, "err": 0.0, "seconds": 0.0}

        def mac(k, rows):
            layer = by_index[k]
            sums = layer.scale * layer.sums(rows, use_adc=False)
            per_image = layer.positions
            chosen = np.concatenate([n * per_image + np.sort(rng.choice(per_image, min(positions, per_image),
                                                                        replace=False))
                                     for n in range(len(rows) // per_image)])
            rows_aug = np.hstack([rows[chosen], np.ones((len(chosen), 1))]) if layer.bias else rows[chosen]
            circ = np.zeros((len(chosen), layer.n_out))
            t0 = time.perf_counter()
            if circuit.topology == "resistance-sum":  # its strings in ngspice, read by the readout
                w, b = mapped.network.layers[k].matrix()
                target = (np.vstack([w, b[None, :]]) if b is not None else w) / weight_scale(mapped.network.layers[k])
                for block in layer.blocks:
                    circ[:, block.outs] += string_sums(block.conductances, rows_aug[:, block.rows],
                                                       target[block.rows, block.outs], circuit)
                    stats["ops"] += len(chosen)
            for block in layer.blocks if circuit.topology == "canonical" else ():  # the realized cells
                volts = circuit.v_read * rows_aug[:, block.rows]
                if block.exact is not None:  # the same nonlinear cells, their deck's operating points
                    currents = ngspice_currents(block.exact.tile, volts, circuit.backend).output_currents
                else:
                    currents = _ngspice_currents(Tile(block.conductances, **dataclasses.asdict(circuit.wires)), volts,
                                                 circuit.backend, circuit.sense_ohms)
                currents = block.drift_scale * currents
                circ[:, block.outs] += (currents[:, 0::2] - currents[:, 1::2]) / (circuit.v_read * dg)
                stats["ops"] += len(chosen)
            stats["seconds"] += time.perf_counter() - t0
            circ *= layer.scale
            stats["err"] = max(stats["err"], float(np.abs(circ - sums[chosen]).max() / layer.scale))
            sums[chosen] = circ
            return sums

        out = mapped.network.forward(x, mac)
        pred_circ = np.argmax(out.reshape(len(x), -1), axis=-1)
        row.update(n_tiles=mapped.n_tiles, n_images=len(y), positions=positions,
                   agreement=float(np.mean(pred_eval == pred_circ)),
                   accuracy_circuit=float(np.mean(pred_circ == y)), accuracy_evaluator=float(np.mean(pred_eval == y)),
                   max_output_error=stats["err"], n_operating_points=stats["ops"],
                   circuit_seconds=stats["seconds"], evaluator_seconds=evaluator_seconds,
                   mapping_seconds=mapped.seconds, scope="layer", status="ok", error="")
    except EnvironmentFailure:  # the machine failed: never a result
        raise
    except CircuitsimError as exc:
        row.update(status="error", error=str(exc).splitlines()[0])
    return row
