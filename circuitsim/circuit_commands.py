"""Commands on single circuits: ``circuitsim characterize`` (one tile), ``circuitsim simulate``
(one tile of linear or nonlinear cells, many inputs) and
``circuitsim layer`` (one partitioned layer), with their file checks.

Public API
----------
load_array, writable_file, characterize_command, layer_command, simulate_command
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .files import check_array_file, output_file, write_atomic


def load_array(path: str, what: str = "conductance",
               holds: str = "a rows x cols array in siemens") -> np.ndarray:
    """The numeric array of the ``.npy`` file ``path`` (one clear ``ConfigError`` otherwise)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{what} file {path} does not exist; give a .npy file of {holds}")
    try:
        with open(file, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise ConfigError(f"{path} is not a numpy .npy file; save it with numpy.save")
        check_array_file(file)  # a damaged header (10¹² values) is refused, not allocated
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as a numeric .npy array ({exc}); save it again "
                          "with numpy.save") from None


def characterize_command(args) -> int:
    """``circuitsim characterize``: the transfer matrix of a tile from a conductance file."""
    from .tile.crossbar import TIA, Tile
    from .tile.extract import characterize

    g = load_array(args.conductances)
    tia = TIA(gain=args.tia_gain, r_feedback=args.tia_r_feedback) if args.tia else None
    tile = Tile(g, r_row=args.r_row, r_col=args.r_col, c_row=args.c_row, c_col=args.c_col,
                r_driver=args.r_driver, tia=tia)
    out = writable_file(args.out)
    if args.memory_limit is not None and not (math.isfinite(args.memory_limit) and args.memory_limit > 0):
        raise ConfigError(f"--memory-limit must be a positive number of GiB, got {args.memory_limit!r}")
    limit = None if args.memory_limit is None else args.memory_limit * 2**30
    if args.readout == "current":
        result = characterize(tile, engine=args.engine, backend=args.backend, memory_limit=limit)
    else:
        from .tile.charge import charge_characterize_from_args

        mode = "integrator" if args.readout == "charge" else "passive"
        result = charge_characterize_from_args(tile, mode, args.t_int, args.c_int, args.backend,
                                               encoding=args.encoding)
    result.save(out)
    meta = result.metadata
    unit = "S" if args.readout == "current" else "V/V"
    print(f"tile {tile.rows}x{tile.cols}, engine {meta['engine']}"
          + (f" ({meta['ngspice_version']}, {meta['solver']})" if "solver" in meta else "")
          + f": T ({tile.cols}x{tile.rows} {unit}) in {meta['seconds']:.3f} s -> {out}")
    return 0


def writable_file(path: str, example: str = "T.npz") -> Path:
    """``path`` when a regular file can be written there, checked before any work is done
    (:func:`circuitsim.files.output_file`)."""
    return output_file(path, "--out", example)


def layer_command(args) -> int:
    """``circuitsim layer``: one partitioned layer (canonical or IMAC-Sim topology) for given inputs."""
    from .devices import Wires, device_preset
    from .network.layer_circuit import layer_circuit, layer_input_voltages
    from .network.mapping import Partition, parse_partitions
    from .tile.layer_circuit import build_layer_circuit, solve_layer
    from .tile.netlist import write_netlist
    from .tile.topology import TopologyConfig, topology_preset

    w = load_array(args.weights, "weights", "an n_in x n_out array of weights in [-1, 1]")
    if w.ndim != 2:
        raise ConfigError(f"{args.weights}: weights must be a 2-D n_in x n_out array, got shape {w.shape}")
    bias = None if args.bias is None else load_array(args.bias, "bias", "n_out biases in [-1, 1]")
    x = np.atleast_2d(load_array(args.inputs, "inputs", "vectors x n_in input voltages"))
    if x.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ConfigError(f"{args.inputs}: inputs must be vectors x {w.shape[0]} voltages, got shape {x.shape}")
    parts = parse_partitions(args.partitions.replace("/", "-"))
    if len(parts) != 2:
        raise ConfigError(f"--partitions must be H/V (e.g. 2/2), got {args.partitions!r}")
    if args.topology == "imac-sim":
        topology = TopologyConfig.imac_sim(args.amp_gain, args.opamp_gain)
    else:
        topology = topology_preset(args.topology)
    out = writable_file(args.out, "Y.npz")
    deck = None if args.deck is None else output_file(args.deck, "--deck", "layer.cir")
    layer = layer_circuit(w, bias, device_preset(args.device), Wires(args.r_row, args.r_col),
                          Partition(*parts), topology)
    v = layer_input_voltages(x, None if bias is None else args.v_read, topology)
    if deck is not None:
        write_atomic(deck, write_netlist(build_layer_circuit(layer, v[0]), options=(".op",)), "--deck")
    outputs = solve_layer(layer, v, engine=args.engine, backend=args.backend)
    unit = "V (neuron inputs)" if topology.voltage_output else "A (differential currents)"
    buffer = io.BytesIO()  # np.savez(path) would add ".npz" to a path without it
    np.savez(buffer, outputs=outputs, row_slices=[[s.start, s.stop] for s in layer.row_slices],
             out_slices=[[s.start, s.stop] for s in layer.out_slices], unit=unit, topology=topology.name)
    write_atomic(out, buffer.getvalue())
    print(f"layer {w.shape[0]}x{w.shape[1]}, {topology.name} topology, h/v {parts[0]}/{parts[1]}, "
          f"engine {args.engine}: {len(v)} vectors, outputs in {unit} -> {out}")
    return 0


def simulate_command(args) -> int:
    """``circuitsim simulate``: output currents of a tile of (nonlinear) cells for a batch of inputs."""
    from .tile.nonlinear_tile import NonlinearTile
    from .tile.nonlinear_run import load_cells, simulate_cells

    cells = load_cells(args.cells)
    x = load_array(args.inputs, "inputs", "vectors x rows input volts")
    tile = NonlinearTile(cells, r_row=args.r_row, r_col=args.r_col, name=Path(args.cells).name, r_sense=args.r_sense)
    x = tile.check_inputs(x)
    out = writable_file(args.out, "Y.npz")
    result = simulate_cells(cells, x, r_row=args.r_row, r_col=args.r_col, engine=args.engine, backend=args.backend,
                            r_sense=args.r_sense)
    buffer = io.BytesIO()  # np.savez(path) would add ".npz" to a path without it
    np.savez(buffer, output_currents=result.output_currents, iterations=result.iterations,
             engine=result.engine, model=cells.kind, unit="A")
    write_atomic(out, buffer.getvalue())
    its = (f", Newton iterations {int(result.iterations.min())}-{int(result.iterations.max())}"
           if result.engine == "native" else "")
    print(f"tile {tile.rows}x{tile.cols} {cells.kind} cells, engine {result.engine}: {len(x)} vectors in "
          f"{result.seconds:.3f} s{its}; output currents (A) -> {out}")
    return 0
