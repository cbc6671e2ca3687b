"""The PRIME study of issue 28 (random RRAM spiking networks, pruned, with early stop) as Markdown tables.

Runs the sweep of ``examples/prime2024.toml`` through the study API, exactly as ``circuitsim
sweep`` does (a resumable results folder ``OUT/prime2024``), then prints the tables that
docs/tutorials/spiking.md and the README quote: per data set, network (random unpruned, pruned
at random, pruned to the edge-popup mask, fully trained) and early-stop margin, the accuracy,
the steps used, the computation saved and the energy per inference; then the pruned networks
beside PRIME's reported figures::

    python examples/prime2024.py --out results      # the full study (~5 min on 2 busy cores)
    python examples/prime2024.py --out /tmp/p --train-images 500 --test-images 60 --epochs 10 \\
        --steps 6 --side 8 --hidden 32              # the test suite's reduced run

``--train-images``, ``--test-images``, ``--epochs`` and ``--steps`` replace the spec's
``train_limit``, ``limit``, ``epochs`` and ``time_steps``; ``--side`` the images' side (and the
first layer's width) and ``--hidden`` the hidden layer's. A reduced run keeps every axis of the
sweep (``circuitsim sweep --smoke`` keeps the first and last value of each, which would drop the
mask-pruned network).

Energy per inference is the crossbar's read energy of the steps each image used (the supply's
power over ``t_read`` for every step's read pulses; no ADC in this study), averaged over the
test images; "energy efficiency" is that of the same network without early stop over it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from circuitsim.study import parse_spec, read_results, run_sweep

HERE = Path(__file__).resolve().parent
SPEC = HERE / "prime2024.toml"
NAMES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST sample"}
VARIANTS = {("none", 1.0): "random, unpruned", ("none", 0.5): "random, half pruned at random",
            ("mask", 0.5): "random, pruned to the mask (PRIME)", ("full", 1.0): "fully trained",
            ("full", 0.5): "fully trained, largest half"}
"""Rows of the table by (``training``, ``keep``); ("mask", 1.0) keeps every pair: the unpruned network."""
PRIME = {"computation saved": "77.0 %", "energy efficiency": "37.83×", "accuracy": "comparable to software"}
"""Wang et al. (arXiv:2407.18625, abstract): N-MNIST classification on a 40 nm 256 Kb memristor
macro — computation saved by early stop, energy-efficiency improvement, accuracy against the
software baseline (image inpainting: 12.5 % and 62.50×)."""
FIELDS = {"train_limit": "train_images", "limit": "test_images", "epochs": "epochs", "time_steps": "steps"}
"""Spec keys the command line can replace, and the options that do."""


def reduced(text: str, sizes: dict[str, int | None], side: int | None = None, hidden: int | None = None) -> str:
    """The spec ``text`` with the keys of :data:`FIELDS` replaced by ``sizes`` (None: kept), the
    images' ``side`` (and the first layer's width, ``side²``) and the ``hidden`` layer's width."""
    given: dict[str, object] = {key: int(value) for key, value in sizes.items() if value is not None}
    if side is not None or hidden is not None:
        layers = [int(n) for n in re.findall(r"\d+", re.search(r"^layers = (.*)$", text, re.MULTILINE).group(1))]
        given["layers"] = [side * side if side else layers[0], hidden or layers[1], layers[-1]]
        if side is not None:
            given["side"] = side
    if given:
        text = "# examples/prime2024.py: " + ", ".join(f"{k} = {v}" for k, v in given.items()) + "\n" + text
    for key, value in given.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
        if n != 1:
            raise SystemExit(f"the spec has no {key} line to replace; add one to its TOML")
    return text


def run(out: Path, cache: Path | None, workers: int = 1, log=print, side: int | None = None,
        hidden: int | None = None, **sizes: int | None) -> tuple[pd.DataFrame, list[int]]:
    """Run (or resume) the sweep; its results frame (every point must have succeeded) and the
    network's layer widths."""
    spec = parse_spec(reduced(SPEC.read_text(), sizes, side, hidden))
    run_sweep(spec, out / "prime2024", cache_dir=cache, workers=workers, log=log)
    frame, _ = read_results(out / "prime2024")
    failed = frame[frame["status"] != "ok"]
    if len(failed):
        raise SystemExit(f"{len(failed)} points failed, e.g. point {failed['point'].iloc[0]}: "
                         f"{failed['error'].iloc[0]}")
    return frame, list(spec.base["network"]["layers"])


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The points of :data:`VARIANTS` in table order: data set, network, margin; with
    ``efficiency``, the energy per inference without early stop over this point's."""
    order = {variant: i for i, variant in enumerate(VARIANTS)}
    frame = frame[[(t, k) in order for t, k in zip(frame["training"], frame["keep"])]].copy()
    frame["variant"] = [order[(t, k)] for t, k in zip(frame["training"], frame["keep"])]
    full = frame[frame["early_stop_margin"] == 0].set_index(["name", "variant"])["energy_per_inference"]
    frame["efficiency"] = [full[(n, v)] / e for n, v, e in zip(frame["name"], frame["variant"],
                                                                frame["energy_per_inference"])]
    return frame.sort_values(["name", "variant", "early_stop_margin"], kind="stable")


def _margin(m: float) -> str:
    return f"margin {m:g}" if m > 0 else "none"


def study_table(frame: pd.DataFrame) -> str:
    """Every network of the study at every early-stop margin."""
    steps = int(frame["time_steps"].iloc[0])
    rows = [[NAMES.get(r.name, r.name), VARIANTS[(r.training, r.keep)], _pct(r.connected), _margin(r.early_stop_margin),
             _pct(r.digital_accuracy), _pct(r.accuracy), f"{r.steps_mean:.2f}", _pct(r.computation_saved),
             f"{r.energy_per_inference * 1e9:.3f}", f"{r.efficiency:.2f}×"] for r in _rows(frame).itertuples()]
    return _table(["data set", "network", "pairs connected", "early stop", "software (spikes)", "accuracy on RRAM",
                   f"steps used (of {steps})", "computation saved", "energy (nJ/inference)",
                   "energy efficiency vs. no early stop"], rows)


def prime_table(frame: pd.DataFrame, layers: list[int]) -> str:
    """The pruned random networks (``layers`` wide) at every margin beside PRIME's figures (the
    README's table)."""
    pruned = _rows(frame)
    pruned = pruned[(pruned["training"] == "mask") & (pruned["keep"] == 0.5)]
    rows = [["PRIME: N-MNIST, conv SNN, 40 nm 256 Kb macro", "softmax confidence > 0.8", PRIME["accuracy"],
             "–", PRIME["computation saved"], "–", f"{PRIME['energy efficiency']} (vs. the paper's baseline)"]]
    shape = "-".join(str(n) for n in layers)
    rows += [[f"here: {NAMES.get(r.name, r.name)}, {shape}, half the pairs", _margin(r.early_stop_margin),
              f"{_pct(r.accuracy)} ({_pct(r.digital_accuracy)})", f"{r.steps_mean:.2f} of {r.time_steps}",
              _pct(r.computation_saved), f"{r.energy_per_inference * 1e9:.3f} nJ",
              f"{r.efficiency:.2f}× (vs. no early stop)"] for r in pruned.itertuples()]
    return _table(["pruned random SNN", "early stop", "accuracy (software)", "steps used", "computation saved",
                   "energy per inference", "energy efficiency gained"], rows)


def tables(frame: pd.DataFrame, layers: list[int]) -> str:
    """Every table of the study, as Markdown."""
    n = int(frame["n_images"].min())
    return "\n\n".join([f"Spiking networks on random RRAM cells, 14 nm wires, 2 % read noise ({n} test images):",
                        study_table(frame), "Beside PRIME's reported figures:", prime_table(frame, layers)])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder of the results folder")
    parser.add_argument("--cache", type=Path, default=None, help="cache of networks and tiles (circuitsim's default)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    for key, option in FIELDS.items():
        parser.add_argument(f"--{option.replace('_', '-')}", type=int, default=None,
                            help=f"replaces the spec's {key}")
    parser.add_argument("--side", type=int, default=None, help="image side (the first layer takes side² pixels)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden neurons (replaces the spec's)")
    args = parser.parse_args(argv)
    frame, layers = run(args.out, args.cache, args.workers, log=lambda line: None, side=args.side,
                        hidden=args.hidden, **{key: getattr(args, option) for key, option in FIELDS.items()})
    text = tables(frame, layers)
    (args.out / "prime2024.md").write_text(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(main() and 0)
