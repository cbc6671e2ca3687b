"""Commands on single circuits: ``circuitsim characterize`` (one tile) and
``circuitsim layer`` (one partitioned layer), with their file checks.

Public API
----------
load_array, writable_file, characterize_command, layer_command
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ConfigError, EnvironmentFailure


def load_array(path: str, what: str = "conductance",
               holds: str = "a rows x cols array in siemens") -> np.ndarray:
    """The numeric array of the ``.npy`` file ``path`` (one clear ``ConfigError`` otherwise)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{what} file {path} does not exist; give a .npy file of {holds}")
    try:
        with open(file, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise ConfigError(f"{path} is not a numpy .npy file; save G with numpy.save")
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as a numeric .npy array ({exc})") from None


def characterize_command(args) -> int:
    """``circuitsim characterize``: the transfer matrix of a tile from a conductance file."""
    from .tile.crossbar import TIA, Tile
    from .tile.extract import characterize

    g = load_array(args.conductances)
    tia = TIA(gain=args.tia_gain, r_feedback=args.tia_r_feedback) if args.tia else None
    tile = Tile(g, r_row=args.r_row, r_col=args.r_col, c_row=args.c_row, c_col=args.c_col,
                r_driver=args.r_driver, tia=tia)
    out = writable_file(args.out)
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


def writable_file(path: str) -> Path:
    """``path`` when a file can be written there, checked before any work is done."""
    if not path.strip():
        raise ConfigError("--out is empty; give the output file, e.g. --out T.npz")
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name, e.g. {out / 'T.npz'}")
    if not out.parent.is_dir():
        raise ConfigError(f"output folder {out.parent} does not exist (or is a file); create it first")
    probe = out.parent / f".circuitsim-probe-{os.getpid()}"
    try:
        probe.open("xb").close()
        probe.unlink()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write in {out.parent}: {exc.strerror or exc}; choose a writable --out") from None
    return out


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
    out = writable_file(args.out)
    layer = layer_circuit(w, bias, device_preset(args.device), Wires(args.r_row, args.r_col),
                          Partition(*parts), topology)
    v = layer_input_voltages(x, None if bias is None else args.v_read, topology)
    if args.deck:
        Path(args.deck).write_text(write_netlist(build_layer_circuit(layer, v[0]), options=(".op",)))
    outputs = solve_layer(layer, v, engine=args.engine, backend=args.backend)
    unit = "V (neuron inputs)" if topology.voltage_output else "A (differential currents)"
    np.savez(out, outputs=outputs, row_slices=[[s.start, s.stop] for s in layer.row_slices],
             out_slices=[[s.start, s.stop] for s in layer.out_slices], unit=unit, topology=topology.name)
    print(f"layer {w.shape[0]}x{w.shape[1]}, {topology.name} topology, h/v {parts[0]}/{parts[1]}, "
          f"engine {args.engine}: {len(v)} vectors, outputs in {unit} -> {out}")
    return 0
