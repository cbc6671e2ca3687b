"""The resistance-sum study of issue 29 (Jung et al., Nature 601, 211-216, 2022) as Markdown tables.

Runs the sweeps of ``examples/jung2022.toml`` (accuracy against string length, energy per MAC of
resistance sum against current sum on the same MTJs, with and without wire resistance) and
``examples/jung2022_variation.toml`` (accuracy against the MTJs' TMR and RA spread) through the
study API, exactly as ``circuitsim sweep`` does (resumable results folders under ``--out``), then
prints the tables that docs/tutorials/resistance-sum.md and the README quote::

    python examples/jung2022.py --out results            # the full study (~3 min on 2 cores)
    python examples/jung2022.py --out /tmp/j --smoke     # every point on the smoke run's few images
    python examples/jung2022.py --out /tmp/j --smoke --train-images 2000 --epochs 3   # the test's run

``--train-images`` and ``--epochs`` replace the specs' (or the smoke run's) training set size and
epochs: the smoke run's one epoch on 200 images leaves the binary network at chance.

Energy per MAC is the crossbar's read energy per image (``crossbar_energy``: the supply's power
over ``t_read``, ADCs excluded) divided by the multiply-accumulates of one image, the sum of
``n_in * n_out`` over the layers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from circuitsim.study import parse_spec, read_results, run_sweep
from circuitsim.study.smoke import smoke_text
from circuitsim.tile.topology import partition_slices

HERE = Path(__file__).resolve().parent
SPECS = ("jung2022", "jung2022_variation")
NAMES = {"mnist": "MNIST sample", "fashion-mnist": "Fashion-MNIST"}
TOPOLOGIES = {"resistance-sum": "resistance sum", "canonical": "current sum"}
WIRES = {"ideal": "no wires", "imac-14nm": "14 nm wires"}
PAPER = {"hardware": "93.23 %", "software": "95.24 %"}
"""Jung et al.'s two-layer perceptron on the 10,000 MNIST test digits (abstract)."""


def training(text: str, train_images: int | None, epochs: int | None) -> str:
    """The spec ``text`` with its ``train_limit`` and ``epochs`` replaced (None: kept)."""
    if train_images is not None or epochs is not None:
        text = f"# examples/jung2022.py: train_limit = {train_images}, epochs = {epochs} (None: the spec's)\n" + text
    for key, value in (("train_limit", train_images), ("epochs", epochs)):
        if value is not None:
            text, n = re.subn(rf"^{key} = .*$", f"{key} = {int(value)}", text, count=1, flags=re.MULTILINE)
            if n != 1:
                raise SystemExit(f"the spec has no {key} line to replace; add one to its TOML")
    return text


def run(out: Path, cache: Path | None, smoke: bool, workers: int, log=print, train_images: int | None = None,
        epochs: int | None = None) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Run (or resume) both sweeps; their results frames and specs' network layers by name."""
    frames = {}
    for name in SPECS:
        text = (HERE / f"{name}.toml").read_text()
        spec = parse_spec(training(smoke_text(text) if smoke else text, train_images, epochs))
        run_sweep(spec, out / name, cache_dir=cache, workers=workers, log=log)
        frame, _ = read_results(out / name)
        frames[name] = (frame, spec.base["network"])
    return frames


def strings(h_partitions: str, network: dict) -> str:
    """Longest string of every layer (``"61 / 64"``) for partitions ``"13-2"``."""
    rows = [n + int(network.get("bias", True)) for n in network["layers"][:-1]]
    return " / ".join(str(max(s.stop - s.start for s in partition_slices(n, int(h))))
                      for n, h in zip(rows, h_partitions.split("-")))


def macs(network: dict) -> int:
    """Multiply-accumulates of one image through the MLP's crossbar layers (biases included)."""
    layers = network["layers"]
    return sum((a + int(network.get("bias", True))) * b for a, b in zip(layers[:-1], layers[1:]))


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame[frame["status"] != "ok"]
    if len(bad):
        raise SystemExit(f"{len(bad)} points failed, e.g. point {bad['point'].iloc[0]}: {bad['error'].iloc[0]}")
    return frame


def string_tables(frame: pd.DataFrame, network: dict) -> tuple[str, str]:
    """Accuracy against string length, and energy per MAC (fJ), per data set and partitioning."""
    frame = _ok(frame)
    columns = [(t, w) for t in TOPOLOGIES for w in WIRES]
    acc_rows, energy_rows = [], []
    per_mac = 1e15 / macs(network)
    for (data, h), group in frame.groupby(["name", "h_partitions"], sort=False):
        cell = {(r.topology, r.preset): r for r in group.itertuples()}
        label = [NAMES.get(data, data), strings(h, network)]
        acc_rows.append(label + [_pct(group["digital_accuracy"].iloc[0])]
                        + [_pct(cell[c].accuracy) if c in cell else "–" for c in columns])
        energy = {c: cell[c].crossbar_energy * per_mac for c in columns if c in cell}
        ratio = [f"{energy[('canonical', w)] / energy[('resistance-sum', w)]:,.0f}×"
                 if ('canonical', w) in energy and ('resistance-sum', w) in energy else "–" for w in WIRES]
        energy_rows.append(label + [f"{energy[c]:.3g}" if c in energy else "–" for c in columns] + ratio)
    names = [f"{TOPOLOGIES[t]}, {WIRES[w]}" for t, w in columns]
    head = ["data set", "longest string (layer 1 / 2)"]
    return (_markdown(head + ["software"] + names, acc_rows),
            _markdown(head + [f"{n} (fJ)" for n in names] + [f"current / resistance, {w}" for w in WIRES.values()],
                      energy_rows))


def variation_table(frame: pd.DataFrame, network: dict) -> str:
    """Accuracy (mean ± sd over the seeds) against TMR spread (rows) and RA spread (columns)."""
    frame = _ok(frame)
    ras = sorted(frame["mtj_ra_spread"].unique())
    rows = []
    for (data, h, tmr), group in frame.groupby(["name", "h_partitions", "mtj_tmr_spread"], sort=False):
        point = group.set_index("mtj_ra_spread")
        rows.append([NAMES.get(data, data), strings(h, network), f"{tmr:g}"]
                    + [f"{100 * point.loc[r, 'accuracy']:.1f} ± {100 * point.loc[r, 'accuracy_std']:.1f}" for r in ras])
    return _markdown(["data set", "longest string (layer 1 / 2)", "TMR spread"]
                     + [f"RA spread {r:g} (%, {int(frame['n_seeds'].min())} seeds)" for r in ras], rows)


def summary_table(strings_frame: pd.DataFrame, variation: pd.DataFrame) -> str:
    """The README's table: the paper's MNIST figures beside this study's longest strings."""
    longest = strings_frame["h_partitions"].iloc[0]
    rs = strings_frame[(strings_frame["topology"] == "resistance-sum") & (strings_frame["preset"] == "imac-14nm")
                       & (strings_frame["h_partitions"] == longest)].set_index("name")
    var = variation[variation["h_partitions"] == longest]
    spread = var[(var["mtj_tmr_spread"] == var["mtj_tmr_spread"].max()) & (var["mtj_ra_spread"] == var["mtj_ra_spread"].max())]
    spread_acc = spread.set_index("name")["accuracy"]
    data = list(rs.index)
    rows = [["Jung et al., software", PAPER["software"]] + ["–"] * (len(data) - 1),
            ["Jung et al., 64 × 64 MRAM array", PAPER["hardware"]] + ["–"] * (len(data) - 1),
            ["here, software (binary 784 × 128 × 10)"] + [_pct(rs.loc[d, "digital_accuracy"]) for d in data],
            ["here, resistance sum, strings ≤ 64, 14 nm wires"] + [_pct(rs.loc[d, "accuracy"]) for d in data],
            [f"here, + TMR spread {spread['mtj_tmr_spread'].max():g}, RA spread {spread['mtj_ra_spread'].max():g}"]
            + [_pct(spread_acc[d]) for d in data]]
    return _markdown([""] + [NAMES.get(d, d) for d in data], rows)


def tables(frames: dict[str, tuple[pd.DataFrame, dict]]) -> str:
    """Every table of the study, as Markdown."""
    (strings_frame, network), (variation, _) = frames["jung2022"], frames["jung2022_variation"]
    accuracy, energy = string_tables(strings_frame, network)
    return "\n\n".join([f"Accuracy against string length ({int(strings_frame['n_images'].iloc[0])} test images):",
                        accuracy, "Energy per MAC (fJ; crossbar read, ADCs excluded):", energy,
                        "Accuracy against MTJ variation (resistance sum, 14 nm wires):",
                        variation_table(variation, network), "Summary, beside the paper's figures:",
                        summary_table(strings_frame, _ok(variation))])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder of the two results folders")
    parser.add_argument("--cache", type=Path, default=None, help="cache of networks and tiles (circuitsim's default)")
    parser.add_argument("--smoke", action="store_true", help="the specs' smoke runs (a few images, one epoch)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--train-images", type=int, default=None, help="training images (replaces the specs')")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (replaces the specs')")
    args = parser.parse_args(argv)
    text = tables(run(args.out, args.cache, args.smoke, args.workers, log=lambda line: None,
                      train_images=args.train_images, epochs=args.epochs))
    (args.out / "jung2022.md").write_text(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(main() and 0)
