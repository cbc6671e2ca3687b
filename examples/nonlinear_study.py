"""The nonlinear-cells study of issue 25 as Markdown tables and one figure.

Reads the results folders of the four sweeps (run first, as the README says)::

    circuitsim sweep examples/nonlinear_cells.toml --out results/nonlinear_cells --workers 2
    circuitsim sweep examples/nonlinear_1t1r.toml --out results/nonlinear_1t1r
    circuitsim sweep examples/nonlinear_lenet5.toml --out results/nonlinear_lenet5 --workers 2
    circuitsim sweep examples/nonlinear_lenet5_1t1r.toml --out results/nonlinear_lenet5_1t1r
    python examples/nonlinear_study.py --results results --plot results/nonlinear_study.png

and prints, per network (the MLP of the partition study, LeNet-5), one row per cell model and
partitioning: the accuracy exact and "linear at the read voltage" (what a linear simulator
predicts for the same cells), the crossbar energy per inference both ways and the mean Newton
iterations; the figure plots both accuracies against ``v0`` per partitioning (1T1R at the right).
A folder that is missing is skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from circuitsim.errors import ConfigError
from circuitsim.study import read_results

STUDIES = {"MLP 400-120-84-10": ("nonlinear_cells", "nonlinear_1t1r"),
           "LeNet-5": ("nonlinear_lenet5", "nonlinear_lenet5_1t1r")}
"""Network name: its sinh and 1T1R results folders."""


def study_frame(folders: list[Path]) -> pd.DataFrame:
    """The finished points of ``folders`` (those that exist) in one table, a ``cells`` label per row."""
    frames = []
    for folder in folders:
        try:
            frame, _ = read_results(folder)
        except ConfigError:
            continue
        frames.append(frame[frame["status"] == "ok"])
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    v0 = frame["v0"] if "v0" in frame else pd.Series(float("nan"), index=frame.index)
    frame["label"] = [f"sinh, v0 = {v:g} V" if c == "sinh" else c.upper() for c, v in zip(frame["cells"], v0)]
    return frame.sort_values(["cells", "v0" if "v0" in frame else "cells", "n_tiles"],
                             ascending=[False, False, True], kind="stable")


def table(frame: pd.DataFrame) -> str:
    """Markdown rows of a study (see the module notes)."""
    lines = ["| cells | h partitions | v partitions | tiles | accuracy, exact | accuracy, linear at v_read | "
             "crossbar energy, exact / linear (nJ) | Newton iterations (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r['label']} | {r['h_partitions']} | {r['v_partitions']} | {r['n_tiles']} | "
                     f"{100 * r['accuracy']:.0f} % | {100 * r['accuracy_linear']:.0f} % | "
                     f"{1e9 * r['crossbar_energy']:.2f} / {1e9 * r['crossbar_energy_linear']:.2f} | "
                     f"{r['newton_iterations_mean']:.1f} |")
    return "\n".join(lines)


def plot(frames: dict[str, pd.DataFrame], path: Path) -> None:
    """Accuracy exact (solid) and linear at the read voltage (dashed) against ``v0`` per
    partitioning, one panel per network; 1T1R cells as the points at the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(5.5 * len(frames), 4), squeeze=False)
    for ax, (name, frame) in zip(axes[0], frames.items()):
        sinh, other = frame[frame["cells"] == "sinh"], frame[frame["cells"] != "sinh"]
        v0 = sorted(sinh["v0"].unique()) if len(sinh) else [1.0]
        right = 3 * max(v0)  # where the 1T1R points go
        for i, (parts, group) in enumerate(frame.groupby("h_partitions", sort=False)):
            color = f"C{i}"
            s = group[group["cells"] == "sinh"].sort_values("v0")
            ax.plot(s["v0"], 100 * s["accuracy"], "o-", color=color, label=f"h {parts}, exact")
            ax.plot(s["v0"], 100 * s["accuracy_linear"], "--", color=color, label=f"h {parts}, linear at v_read")
            t = group[group["cells"] != "sinh"]
            ax.plot([right] * len(t), 100 * t["accuracy"], "*", color=color, markersize=11)
            ax.plot([right] * len(t), 100 * t["accuracy_linear"], "_", color=color, markersize=14)
        ax.set_xscale("log")
        ax.set_xticks(list(v0) + ([right] if len(other) else []))
        ax.set_xticklabels([f"{v:g}" for v in v0] + (["1T1R"] if len(other) else []))
        ax.set_xlabel("sinh cells' v0 (V): strongly to weakly nonlinear")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="folder of the sweeps' folders")
    parser.add_argument("--plot", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args(argv)
    frames = {}
    for name, folders in STUDIES.items():
        frame = study_frame([args.results / f for f in folders])
        if len(frame):
            frames[name] = frame
            print(f"{name} ({frame['n_images'].iloc[0]} test images; the digital network at "
                  f"{100 * frame['digital_accuracy'].iloc[0]:.0f} %)\n\n{table(frame)}\n")
    if not frames:
        print(f"no finished study under {args.results}; run the sweeps first (python {__file__} --help)",
              file=sys.stderr)
        return 1
    if args.plot:
        plot(frames, args.plot)
        print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
