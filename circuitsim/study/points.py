"""One point of a sweep: its dataset, trained network, mapped tiles and figures.

A point is computed wherever it runs (this process, a local worker, a Dask worker)
from a :class:`PointContext`, which keeps the datasets, networks and tile transfer
matrices that the points of one sweep share.

A failure of the configuration (e.g. ngspice does not converge on a tile) is the point's
result: ``status = "error"``, the first line of the message and, for ngspice, the deck.
A failure of the environment (:class:`~circuitsim.errors.EnvironmentFailure`, and the
``OSError``/``MemoryError`` it stands for) is raised instead: it is never a result.

Public API
----------
CALIBRATION_IMAGES, PointContext, hwa_network, run_point, column_name, linear_at_read
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import CircuitsimError, EnvironmentFailure, SimulationError
from ..network.compensation import compensate, load_or_finetune
from ..network.datasets import load_dataset
from ..network.mapped import map_network
from ..network.mlp import load_or_train
from ..network.random_weights import CellNetwork, load_or_build
from ..network.spiking import SpikingNetwork, evaluate_mapped
from ..network.spiking_training import load_or_train_mask_surrogate, load_or_train_surrogate
from ..tile.tile_cache import TileCache
from .compensation_spec import build_compensation_config
from .network_spec import build_layer_network, build_spiking_config, network_kind, spiking_weights
from .spec import Point, build_circuit_config, build_network_config

CALIBRATION_IMAGES = 512
"""Training images that set each tile's ADC range."""

class PointContext:
    """Datasets, networks and tiles shared by the points of one sweep."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.tiles = TileCache(cache_dir / "tiles")
        self._datasets, self._networks = {}, {}

    def dataset(self, config: dict):
        key = json.dumps(config["dataset"], sort_keys=True)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(**config["dataset"])
        return self._datasets[key]

    def network(self, config: dict):
        """The point's network (trained or loaded once) and its digital accuracy (a spiking
        network's: its float weights run as spikes)."""
        data = self.dataset(config)
        key = json.dumps([config["dataset"], config["network"]], sort_keys=True)
        kind = network_kind(config["network"])
        if kind == "snn":  # the weights of a spiking network: a random network's or a trained MLP's
            kind = spiking_weights(config["network"])
        if kind == "random":  # a random network's cells depend on the device's conductance range
            device = build_circuit_config(config).device
            key += repr((device.r_low, device.r_high, device.levels))
        if key not in self._networks:
            if kind == "random":
                net = load_or_build(data, build_network_config(config), device, self.cache_dir / "networks")
            elif kind == "mlp":
                net = load_or_train(data, build_network_config(config), self.cache_dir / "networks")
            else:  # a CNN (trained and cached) or an ONNX model
                net = build_layer_network(config, data, self.cache_dir / "networks")
            scorer = net
            if network_kind(config["network"]) == "snn":
                spiking = build_spiking_config(config["network"])
                if spiking.surrogate_epochs:  # the weights or the mask trained through time (cached)
                    train = load_or_train_mask_surrogate if kind == "random" else load_or_train_surrogate
                    net = train(data, net, spiking, spiking.surrogate_epochs, self.cache_dir / "networks")
                scorer = SpikingNetwork(net, spiking)
            self._networks[key] = (net, scorer.accuracy(data.x_test, data.y_test))
        return self._networks[key]

    def train(self, config: dict) -> None:
        """Train (or load) the network of ``config`` now; a configuration failure is left for
        the point to record, an environment failure is raised."""
        try:
            with environment_failures():
                self.network(config)
        except EnvironmentFailure:
            raise
        except CircuitsimError:
            pass


class environment_failures:
    """Context manager turning ``OSError`` and ``MemoryError`` into :class:`EnvironmentFailure`."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, MemoryError):
            raise EnvironmentFailure("out of memory; run fewer --workers or smaller tiles") from None
        if kind is not None and issubclass(kind, OSError):
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise EnvironmentFailure(f"{exc.strerror or exc}{where}; fix the folder or free disk space") from None
        return False


def column_name(name: str) -> str:
    """The results column of a spec field (``"wires.r_row"`` → ``"r_row"``; the compensation
    method is the column ``compensation``)."""
    if name == "cells.model":
        return "cells"
    return "compensation" if name == "compensation.method" else name.split(".")[-1]


def hwa_network(point: Point, context: PointContext, net):
    """The hardware-aware fine-tuned network of a point whose ``compensation.method`` is ``hwa``
    (the one its sweep evaluated: same circuit, ADC included, and cache entry)."""
    method = build_compensation_config(point.config)
    data = context.dataset(point.config)
    return load_or_finetune(net, point.partitions, build_circuit_config(point.config), context.tiles, data.x_train,
                            data.y_train, method, context.cache_dir / "networks", data.name)


def _spiking_point(point: Point, context: PointContext, net, digital: float, circuit) -> dict:
    """The figures of a spiking network's point (:func:`~circuitsim.network.spiking.evaluate_mapped`):
    accuracy, steps used, computation saved by early stop and energy per inference."""
    data = context.dataset(point.config)
    spiking = build_spiking_config(point.config["network"])
    mapped = map_network(net, point.partitions, circuit, context.tiles,
                         x_calibration=data.x_train[:CALIBRATION_IMAGES], spiking=spiking)
    start = time.perf_counter()
    result = evaluate_mapped(mapped, spiking, data.x_test, data.y_test)
    seconds = time.perf_counter() - start
    analog = result["accuracy"]
    if circuit.adc is not None:
        analog = evaluate_mapped(mapped, spiking, data.x_test, data.y_test, use_adc=False)["accuracy"]
    return {**result, "analog_accuracy": analog, "digital_accuracy": digital, "n_tiles": mapped.n_tiles,
            "n_images": len(data.y_test), "time_steps": spiking.time_steps,
            "conversions_per_inference": mapped.conversions_per_inference * result["steps_mean"],
            "characterization_seconds": mapped.seconds, "evaluation_seconds": seconds,
            "extra_parameters": 0, "extra_macs": 0}


def linear_at_read(mapped, x, y) -> dict:
    """The figures of a network of nonlinear cells that a linear simulator would give (every
    cell its conductance at the read voltage, no ADC), and the Newton iterations of its exact
    tile solves so far."""
    linear = mapped.linear_at_read()
    iterations = mapped.newton_iterations()
    return {"accuracy_linear": linear.analog_accuracy(x, y),
            "crossbar_energy_linear": linear.forward(x, use_adc=False)[1],
            "newton_iterations_mean": float(iterations.mean()) if iterations.size else 0.0,
            "newton_iterations_max": int(iterations.max(initial=0))}


def run_point(point: Point, context: PointContext) -> dict:
    """Evaluate one point; configuration failures are recorded in ``status``/``error`` (and
    ``deck``, the failing ngspice deck), environment failures raised."""
    row = {"point": point.index, **{column_name(k): v for k, v in point.values.items()}}
    circuit = build_circuit_config(point.config)
    adc = circuit.adc
    row.update(dataset=point.config["dataset"].get("name", "mnist"), device=circuit.device.name,
               r_row=circuit.wires.r_row, r_col=circuit.wires.r_col, engine=circuit.engine,
               readout=circuit.readout, t_int=circuit.t_int if circuit.charge_mode else 0.0,
               adc_kind=adc.kind if adc else "none", adc_bits=adc.bits if adc else 0)
    if circuit.readout == "sense":
        row["r_sense"] = circuit.r_sense
    if not circuit.device.statistics.is_exact:
        row["statistics"] = circuit.device.statistics.name
    if circuit.dac.kind != "none":
        row.update(dac_kind=circuit.dac.kind, dac_bits=circuit.dac.bits)
    if circuit.weight_bits is not None:
        row["weight_bits"] = circuit.weight_bits
    if "negative" in point.config.get("mapping", {}):
        row["negative"] = circuit.negative
    if circuit.cells is not None:
        row["cells"] = circuit.cells.kind
    method = build_compensation_config(point.config)
    row["compensation"] = method.method
    try:
        with environment_failures():
            net, digital = context.network(point.config)
            if isinstance(net, CellNetwork):  # training, keep, pruned cells, connected fraction
                row.update(net.summary())
            data = context.dataset(point.config)
            if network_kind(point.config["network"]) == "snn":
                row.update(_spiking_point(point, context, net, digital, circuit), status="ok", error="")
                return row
            mapped = map_network(net, point.partitions, circuit, context.tiles,
                                 x_calibration=data.x_train[:CALIBRATION_IMAGES])
            extra = {}
            if method.method != "none":  # circuitsim.network.compensation: the method's network and correction
                extra["accuracy_uncompensated"] = mapped.accuracy(data.x_test, data.y_test)  # = the none point's
                start = time.perf_counter()
                compensated = compensate(net, mapped, method, circuit, context.tiles, data.x_train, data.y_train,
                                         context.cache_dir / "networks", name=data.name)
                extra["compensation_seconds"] = time.perf_counter() - start
                mapped, scorer, (parameters, macs) = compensated.mapped, compensated, compensated.overhead
            else:
                scorer, parameters, macs = mapped, 0, 0
            start = time.perf_counter()
            mapped.reset_dac()
            accuracy = scorer.accuracy(data.x_test, data.y_test)
            seconds = time.perf_counter() - start
            if circuit.dac.kind != "none":  # clipped fraction of the activations the test images drove
                extra["dac_clipped"] = mapped.dac_clipped
            if not adc:
                analog = accuracy
            elif scorer is not mapped:
                analog = scorer.analog_accuracy(data.x_test, data.y_test)
            else:
                analog = mapped.analog_accuracy(data.x_test, data.y_test)
            if mapped.exact:  # nonlinear cells: what a linear simulator would predict, and the solves
                extra.update(linear_at_read(mapped, data.x_test, data.y_test))
            row.update(accuracy=accuracy, analog_accuracy=analog, digital_accuracy=digital,
                       n_tiles=mapped.n_tiles, n_images=len(data.y_test),
                       conversions_per_inference=mapped.conversions_per_inference,
                       **mapped.energy_per_inference(data.x_test), latency=mapped.latency()["latency"],
                       **{k: v for k, v in mapped.area().items() if not k.startswith("area_layer")},
                       characterization_seconds=mapped.seconds, evaluation_seconds=seconds,
                       extra_parameters=parameters, extra_macs=macs, **extra, status="ok", error="")
    except EnvironmentFailure:
        raise
    except CircuitsimError as exc:
        row.update(status="error", error=str(exc).splitlines()[0])
        if isinstance(exc, SimulationError) and exc.deck:
            row["deck"] = exc.deck
    return row
