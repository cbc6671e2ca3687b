"""Every figure a sweep's results folder allows, none of them a silent average.

:func:`plot_results` reads ``results.csv`` (``seeds.csv`` for a Monte Carlo sweep) and the
swept columns from ``provenance.json``, and draws the figures of
:mod:`circuitsim.plots.sweeps` whose columns vary: one figure per combination of the swept
columns a figure does not show (up to :data:`~circuitsim.plots.sweeps.MAX_FACETS`), partition
heatmaps where every cell is one partitioning.

Public API
----------
plot_results
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ConfigError
from .breakdown import ENERGY_PARTS, energy_breakdown
from .style import save_figure
from .sweeps import (DEVICE_AXES, MAX_FACETS, _config_labels, _layers, _shown, accuracy_vs_adc_bits,
                     accuracy_vs_device, accuracy_vs_partitions, accuracy_vs_wire_resistance, hidden_axes,
                     pareto_front, partition_heatmap)


def plot_results(results_dir: str | Path) -> list[Path]:
    """Make every plot the columns of ``results_dir/results.csv`` allow.

    Plots whose columns are absent or constant are skipped. A plot that does not show a
    swept column (``provenance.json``'s ``swept``, or every configuration column) is drawn
    once per combination of those columns' values, as ``NAME--column=value...``, when
    there are at most :data:`MAX_FACETS`; otherwise once, naming what it averages over. A
    partition heatmap is drawn for a layer (and each partitioning of the other layers)
    where that layer's h and v partitions both vary. Files go to ``results_dir/plots/``
    (PDF and PNG each). Returns the written paths.
    """
    csv = Path(results_dir) / "results.csv"
    if not csv.is_file():
        raise ConfigError(f"{csv} not found; pass the folder a sweep wrote its results to")
    seeds = Path(results_dir) / "seeds.csv"  # a Monte Carlo sweep: error bars across seeds
    table = seeds if seeds.is_file() else csv
    try:
        df = pd.read_csv(table)
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # pandas' parse errors are ValueErrors
        raise ConfigError(f"{table} is damaged ({type(exc).__name__}); run the same circuitsim sweep command "
                          "again to write it from the point files") from None
    if "status" in df.columns:
        df = df[df["status"].astype(str) == "ok"]
    if "accuracy" not in df.columns or df["accuracy"].isna().all():
        return []
    axes = _swept(Path(results_dir))

    def varies(*cols: str) -> bool:
        return all(c in df.columns and df[c].nunique() > 1 for c in cols)

    plots = []  # (name, function, keyword arguments, the columns the figure shows)
    partitions = ["h_partitions", "v_partitions"]
    if set(partitions) <= set(df.columns) and _config_labels(df).nunique() > 1:
        plots.append(("accuracy_vs_partitions", accuracy_vs_partitions, {"by": "topology"},
                      [*partitions, "topology"]))
    few = set(partitions) <= set(df.columns) and _config_labels(df).nunique() <= 6  # a line per partitioning
    for x in ("r_row", "r_col"):
        if varies(x) and not (x == "r_col" and "r_row" in df.columns
                              and np.allclose(df["r_row"], df["r_col"])):
            same = ["r_col" if x == "r_row" else "r_row"] if np.allclose(df["r_row"], df["r_col"]) else []
            plots.append((f"accuracy_vs_{x}", accuracy_vs_wire_resistance,
                          {"x": x, "by": "partitions" if few else None},
                          [x, *same, *(partitions if few else [])]))
    if varies("adc_bits"):
        plots.append(("accuracy_vs_adc_bits", accuracy_vs_adc_bits, {}, ["adc_bits", "adc_kind"]))
    for x in DEVICE_AXES:
        if varies(x):
            by = "drift_compensation" if varies("drift_compensation") else "partitions" if few else None
            plots.append((f"accuracy_vs_{x}", accuracy_vs_device, {"x": x, "by": by}, _shown(x, by)))
    if varies("energy_per_inference"):
        plots.append(("pareto_energy_accuracy", pareto_front, {}, list(df.columns)))  # every design a point
        if any(varies(part) for part in ENERGY_PARTS if part != "crossbar_energy"):
            plots.append(("energy_breakdown", energy_breakdown, {}, list(df.columns)))
    out = Path(results_dir) / "plots"
    files = []
    for name, make, kwargs, shown in plots:
        for suffix, part in _facets(df, hidden_axes(df, shown, axes)):
            files += save_figure(_titled(make(part, axes=axes, **kwargs), part), out, name + suffix)
    if set(partitions) <= set(df.columns) and _config_labels(df).nunique() > 1:
        files += _heatmaps(df, axes, out)
    return files


def _swept(results_dir: Path) -> list[str] | None:
    """The swept columns a sweep recorded in its provenance (None when it did not)."""
    try:
        swept = json.loads((results_dir / "provenance.json").read_text()).get("swept")
    except (OSError, ValueError, AttributeError):
        return None
    return list(swept) if isinstance(swept, list) else None


def _facets(df: pd.DataFrame, hidden: list[str]):
    """``(file suffix, rows)`` per combination of the ``hidden`` columns' values, or the
    whole table once when there are none or more than :data:`MAX_FACETS` combinations."""
    kept = []
    for c in hidden:  # a column that follows from those kept (r_col = r_row) names no new figures
        if not kept or df.groupby(kept, dropna=False)[c].nunique(dropna=False).max() > 1:
            kept.append(c)
    hidden = kept
    groups = list(df.groupby(hidden, dropna=False, sort=True)) if hidden else []
    if not hidden or len(groups) > MAX_FACETS:
        return [("", df)]
    facets = []
    for values, part in groups:
        values = values if isinstance(values, tuple) else (values,)
        text = "_".join(f"{c}={v:g}" if isinstance(v, float) else f"{c}={v}" for c, v in zip(hidden, values))
        facets.append(("--" + re.sub(r"[^A-Za-z0-9_.=+-]", "-", text), part.assign(_facet=text.replace("_", ", "))))
    return facets


def _titled(fig: Figure, part: pd.DataFrame) -> Figure:
    """The values a faceted figure holds fixed, as its title."""
    if "_facet" in part.columns:
        fig.suptitle(part["_facet"].iloc[0], fontsize=6)
    return fig


def _heatmaps(df: pd.DataFrame, axes, out: Path) -> list[Path]:
    """Partition heatmaps where every cell is one partitioning (other layers' partitions and
    the other swept values fixed per figure)."""
    h, v = _layers(df["h_partitions"]), _layers(df["v_partitions"])
    files = []
    for layer in range(min(h.shape[1], v.shape[1])):
        rest = df.assign(_rest=[f"{a}/{b}" for a, b in zip(
            h.drop(columns=layer).astype(str).agg("-".join, axis=1) if h.shape[1] > 1 else [""] * len(df),
            v.drop(columns=layer).astype(str).agg("-".join, axis=1) if v.shape[1] > 1 else [""] * len(df))])
        for _, part in rest.groupby("_rest", sort=True):
            ph, pv = _layers(part["h_partitions"]), _layers(part["v_partitions"])
            if ph[layer].nunique() < 2 or pv[layer].nunique() < 2:
                continue
            hidden = [c for c in hidden_axes(part, ["h_partitions", "v_partitions"], axes)]
            rest_name = "" if rest["_rest"].nunique() == 1 else "--others=" + part["_rest"].iloc[0].replace("/", "_")
            for suffix, facet in _facets(part.drop(columns="_rest"), hidden):
                files += save_figure(_titled(partition_heatmap(facet, layer, axes=axes), facet), out,
                                     f"partition_heatmap_layer{layer}{rest_name}{suffix}")
    return files
