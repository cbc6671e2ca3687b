"""Validate the evaluator against whole-circuit ngspice runs, point by point of a spec.

For every point of a sweep spec (:func:`circuitsim.study.spec.load_spec`), on the first ``N``
test images:

- **neurons** (:mod:`circuitsim.periphery.neurons`): the circuit neuron for the network's hidden
  activation, and a sigmoid circuit for the output layer (the trained softmax matters only
  through its argmax; a monotonic neuron keeps it), are extracted once by ngspice and
  fitted per layer to ``sigmoid(g·s)`` (or ``relu``), ``g`` the layer's trained gain; the
  output layer's ``g`` is chosen so that the largest output sum of 95 % of the
  calibration images maps to ``g·s = 3`` (a sigmoid neuron saturated on two classes would
  make their argmax a coin toss);
- **evaluator path**: the network as its tiles compute it (:func:`~circuitsim.network.mapped.map_network`,
  transfer matrices cached) with :class:`NeuronMLP`: every activation is the extracted
  neuron curve behind the fitted amplifier mapping instead of the ideal sigmoid;
- **circuit path**: the whole circuit in ngspice (:func:`circuitsim.study.whole_circuit.simulate_network`).

``DIR/validation.csv`` gets one row per point: the swept values, ``agreement`` (share of
images both paths classify alike), ``accuracy_circuit``, ``accuracy_evaluator``,
``accuracy_ideal`` (the evaluator with the ideal activation, as ``circuitsim sweep``),
``max_output_error`` / ``mean_output_error`` (last-layer neuron outputs, volts),
``circuit_seconds``, ``evaluator_seconds``, energies per inference (J) from the ngspice
source currents (``energy_per_inference`` = ``energy_crossbar`` + ``energy_amplifiers`` +
``energy_neurons``: the mean ``power`` in W over the images, times ``circuit.t_read``; see
:mod:`circuitsim.study.whole_circuit`) and ``energy_crossbar_evaluator`` (the evaluator's
``V·Y·V·t_read``, which ``energy_crossbar`` should equal).
ADC sections are ignored (the whole circuit is fully analog); charge readouts are refused; with
``circuit.readout = "sense"`` every bit line ends in its sense resistor in the deck as in the tiles.
CNN and ONNX networks are validated layer by layer (``--scope layer``), their tiles in ngspice
at a sample of output positions (:mod:`circuitsim.study.layer_validation`).
With nonlinear cells (``[cells]``) the deck holds the cells as the tiles' (imac-sim: the layer
circuits') own nonlinear decks write them (B-sources, MOSFETs) and the evaluator path's sums are
the tiles' exact solves (:class:`NeuronMLP` with the mapped network); ``--scope layer`` runs the
tiles' nonlinear decks (imac-sim: one whole-circuit deck per layer).
A point with ``compensation.method = "hwa"`` validates its fine-tuned network (the sweep's cache
entry); ``affine`` and ``lora`` are digital and refused (validate their analog circuit with ``none``).
With device statistics both paths use the same realized conductances (drawn from the point's
``device.seed``, layer and tile; with global drift compensation the deck scales each tile's
difference terms by its factor); read noise is left out of both (it is a new draw per read).

Public API
----------
NeuronMLP, design_network, validate_point, run_validation
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CircuitsimError, ConfigError, EnvironmentFailure
from ..network.mapped import MappedNetwork, map_network
from ..network.mlp import MLP
from ..periphery.neurons import Neuron, NeuronDesign, design_neuron, extract_curve
from .layer_validation import validate_layer_point, validation_inputs
from .network_spec import LAYER_KINDS, network_kind
from .compensation_spec import build_compensation_config
from .points import CALIBRATION_IMAGES, PointContext, column_name, hwa_network
from .provenance import provenance
from .spec import build_circuit_config
from .storage import default_cache_dir, write_atomic
from .whole_circuit import FullCircuitConfig, simulate_network

_CURVES: dict = {}


class NeuronMLP(MLP):
    """An :class:`MLP` whose activations are circuit neurons (:class:`NeuronDesign` per layer);
    with ``mapped`` of nonlinear cells its sums are the tiles' exact solves."""

    def __init__(self, base: MLP, designs: tuple[NeuronDesign, ...], mapped: MappedNetwork | None = None):
        super().__init__(base.weights, base.biases, base.config)
        self.designs = tuple(designs)
        self.mapped = mapped if mapped is not None and mapped.exact else None

    def layer_sums(self, k: int, h: np.ndarray) -> np.ndarray:
        """Layer ``k``'s sums: the effective weights', or its tiles' exact solves (no ADC)."""
        if self.mapped is None:
            return super().layer_sums(k, h)
        return self.mapped.crossbars[k].sums(h, use_adc=False)

    def activate(self, k: int, s: np.ndarray) -> np.ndarray:
        """Layer ``k``'s neuron activation for normalized sums ``s``."""
        return self.designs[k].activation(s)

    def output_voltages(self, x) -> np.ndarray:
        """Last-layer neuron output voltages for images ``x``, volts."""
        _, sums = self.forward(x, return_preactivations=True)
        return self.designs[-1].output_voltage(sums[-1])


def _curve(neuron: Neuron, backend: str):
    key = (neuron, backend)
    if key not in _CURVES:
        _CURVES[key] = extract_curve(neuron, backend=backend)
    return _CURVES[key]


def design_network(mapped: MappedNetwork, model: str = "transistor", x_calibration=None,
                   output_gain: float | None = None, backend: str = "shared") -> tuple[NeuronDesign, ...]:
    """Neuron designs for every layer of ``mapped`` (see the module docstring).

    Parameters
    ----------
    mapped : MappedNetwork
        The network as its tiles compute it (its gains are the trained ones or ``circuit.gains``).
    model : {"transistor", "behavioural"}
        Neuron circuits.
    x_calibration : array_like, optional
        Images that set the output layer's gain (required unless ``output_gain`` is given).
    output_gain : float, optional
        Output-layer gain ``g`` (dimensionless).
    backend : {"shared", "subprocess"}
        ngspice backend of the curve extraction.
    """
    net = mapped.mlp
    gains, kind = net.config.gains, net.config.activation
    hidden = _curve(Neuron(kind=kind, model=model), backend)
    designs = [design_neuron(hidden, kind, g) for g in gains[:-1]]
    if output_gain is None:
        if x_calibration is None:
            raise ConfigError("give calibration images or an output_gain for the output layer")
        probe = NeuronMLP(net, designs + [designs[0]], mapped)
        _, sums = probe.forward(np.asarray(x_calibration, dtype=float), return_preactivations=True)
        output_gain = 3.0 / max(float(np.percentile(np.abs(sums[-1]).max(axis=1), 95)), 1e-12)
    designs.append(design_neuron(_curve(Neuron(kind="sigmoid", model=model), backend), "sigmoid", output_gain))
    return tuple(designs)


def _row_base(point) -> dict:
    return {"point": point.index, **{column_name(k): v for k, v in point.values.items()}}


def validate_point(point, context, n_images: int, config: FullCircuitConfig = FullCircuitConfig(),
                   model: str = "transistor", keep_dir=None) -> dict:
    """Validate one point of a spec, at ``config.scope``; failures are recorded in
    ``status``/``error``, not raised.

    ``scope = "network"``: the whole circuit of an MLP (random cells included) in one ngspice
    deck; ``"layer"``: one deck per layer for an MLP, and for a CNN or ONNX network its tiles in
    ngspice layer by layer at sampled output positions
    (:func:`~circuitsim.study.layer_validation.validate_layer_point`).

    Parameters
    ----------
    point : Point
        A point of :meth:`SweepSpec.points`.
    context : circuitsim.study.points.PointContext
        Datasets, trained networks and the tile cache.
    n_images : int
        The first ``n_images`` test images are run through both paths.
    config : FullCircuitConfig
        How the whole circuit is simulated.
    model : {"transistor", "behavioural"}
        Neuron circuits.
    keep_dir : str or Path, optional
        Where a deck that does not converge is kept (a temporary folder otherwise).

    Returns
    -------
    dict
        One row of ``validation.csv`` (see the module docstring).
    """
    if point.config["circuit"].get("topology") == "resistance-sum":
        if config.scope != "layer":
            raise ConfigError("the resistance-sum topology is validated string by string (each image sets the "
                              "cells' FETs, which one deck cannot show): use --scope layer")
        return validate_layer_point(point, context, n_images)
    if (config.scope == "layer" and "cells" in point.config and point.config["circuit"].get("topology") != "imac-sim"
            and build_circuit_config(point.config).nonlinear):
        return validate_layer_point(point, context, n_images)  # the tiles' nonlinear decks, layer by layer
    if network_kind(point.config["network"]) in LAYER_KINDS:  # tiles in ngspice, layer by layer
        if config.scope != "layer":
            raise ConfigError("a CNN or ONNX network is validated layer by layer (its convolutions' tiles serve "
                              "every output position, which one deck cannot show): use --scope layer")
        return validate_layer_point(point, context, n_images)
    row = _row_base(point)
    try:
        circuit, net, data, x, y = validation_inputs(point, context, n_images)
        method = build_compensation_config(point.config).method
        if method in ("affine", "lora"):
            raise ConfigError(f"compensation.method = {method!r} is digital (no deck to validate); validate the "
                              "point with method \"none\" (its analog circuit) or \"hwa\"")
        if method == "hwa":  # the fine-tuned network's circuit
            net = hwa_network(point, context, net)
        row["compensation"] = method
        circuit = _static(circuit)
        mapped = map_network(net, point.partitions, circuit, context.tiles)
        start = time.perf_counter()
        designs = design_network(mapped, model, data.x_train[:CALIBRATION_IMAGES], backend=circuit.backend)
        design_seconds = time.perf_counter() - start
        evaluator = NeuronMLP(mapped.mlp, designs, mapped)
        start = time.perf_counter()
        volts_eval = evaluator.output_voltages(x)
        evaluator_seconds = time.perf_counter() - start
        inputs, _ = evaluator.forward(x, return_preactivations=True)  # every crossbar layer's inputs
        crossbar_energy = sum(c.energy(h, circuit.v_read, len(x)) for c, h in zip(mapped.crossbars, inputs))
        result = simulate_network(mapped, designs, x, config, keep_dir)
        volts_circ = result.outputs[len(designs) - 1]
        pred_eval, pred_circ = _classes(volts_eval, designs[-1]), _classes(volts_circ, designs[-1])
        err = np.abs(volts_circ - volts_eval)
        t_read, power = circuit.t_read, result.power
        row.update(
            n_tiles=mapped.n_tiles, n_images=len(y), neuron=f"{net.config.activation}-{model}",
            agreement=float(np.mean(pred_eval == pred_circ)),
            accuracy_circuit=float(np.mean(pred_circ == y)), accuracy_evaluator=float(np.mean(pred_eval == y)),
            accuracy_ideal=mapped.accuracy(x, y),
            max_output_error=float(err.max()), mean_output_error=float(err.mean()),
            circuit_seconds=result.seconds, evaluator_seconds=evaluator_seconds,
            design_seconds=design_seconds, mapping_seconds=mapped.seconds,
            energy_per_inference=float(power["total"].mean() * t_read),
            energy_crossbar=float(power["crossbar"].mean() * t_read),
            energy_amplifiers=float(power["amplifiers"].mean() * t_read),
            energy_neurons=float(power["neurons"].mean() * t_read),
            energy_crossbar_evaluator=crossbar_energy,
            power=float(power["total"].mean()),
            neuron_fit_rms=max(d.rms_error for d in designs), output_gain=designs[-1].gain,
            n_elements=result.n_elements, analysis=config.analysis, scope=config.scope,
            ngspice=result.metadata["ngspice_version"], status="ok", error="")
    except EnvironmentFailure:  # the machine failed: never a result
        raise
    except CircuitsimError as exc:
        row.update(status="error", error=str(exc).splitlines()[0])
    return row


def _static(circuit):
    """The circuit without read noise: both paths see the same realized, programmed and
    drifted conductances (read noise is a fresh draw per read, not a deck)."""
    stats = circuit.device.statistics
    if stats.read_noise == 0:
        return circuit
    device = dataclasses.replace(circuit.device, statistics=stats.replace(read_noise=0.0))
    return dataclasses.replace(circuit, device=device)


def _classes(volts: np.ndarray, design: NeuronDesign) -> np.ndarray:
    return np.argmax((volts - design.v_zero) / (design.v_one - design.v_zero), axis=-1)


def run_validation(spec, out, n_images: int = 200, cache_dir=None,
                   config: FullCircuitConfig = FullCircuitConfig(), model: str = "transistor",
                   points=None, log=print) -> pd.DataFrame:
    """Validate every point of ``spec`` (or those whose index is in ``points``) into ``out``.

    Writes ``out/validation.csv`` (after every point), ``out/spec.toml`` and
    ``out/provenance.json``; decks that do not converge are kept in ``out/decks``.
    """
    if not isinstance(n_images, int) or n_images < 1:
        raise ConfigError(f"--images must be a positive integer, got {n_images!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    context = PointContext(Path(cache_dir) if cache_dir else default_cache_dir())
    chosen = spec.points()
    if points is not None:
        unknown = sorted(set(points) - {p.index for p in chosen})
        if unknown:
            raise ConfigError(f"no point {unknown[0]} in the spec; points run from 0 to {len(chosen) - 1}")
        chosen = [p for p in chosen if p.index in set(points)]
    if any(network_kind(p.config["network"]) == "snn" for p in chosen):
        raise ConfigError("circuitsim validate runs DC decks; a spiking network's ([network] kind = \"snn\") "
                          "transient runs from Python: circuitsim.study.spiking_circuit.simulate_spiking")
    for point in chosen:
        context.dataset(point.config)
    write_atomic(out / "spec.toml", spec.text)
    meta = {"spec_title": spec.title, "images": n_images, "neuron_model": model,
            "full_circuit": dataclasses.asdict(config), **provenance()}
    rows = []
    from tqdm import tqdm

    for point in tqdm(chosen, desc="validate", unit="point", leave=False, file=sys.stderr,
                      disable=not sys.stderr.isatty()):  # a bar on a terminal, quiet in logs
        rows.append(validate_point(point, context, n_images, config, model, out / "decks"))
        frame = pd.DataFrame(rows)
        write_atomic(out / "validation.csv", frame.to_csv(index=False))
        write_atomic(out / "provenance.json", json.dumps({**meta, "finished_points": len(rows),
                                                          "complete": len(rows) == len(chosen)}, indent=2))
        r = rows[-1]
        log(f"[{len(rows)}/{len(chosen)}] h={r['h_partitions']} v={r['v_partitions']} status={r['status']}"
            + (f" agreement={r['agreement']:.4f} circuit={r['circuit_seconds']:.1f}s" if r["status"] == "ok"
               else f" error={r['error']}"))
    return pd.DataFrame(rows)
