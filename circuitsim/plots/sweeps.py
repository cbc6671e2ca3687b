"""Figures of sweep results: accuracy against partitions, wires and ADC bits, Pareto fronts.

Sweep results are tidy DataFrames, one row per point: ``h_partitions`` and
``v_partitions`` ("16-8-8": one count per layer), ``accuracy`` and
``digital_accuracy`` (fractions, drawn in %), ``n_tiles``, ``r_row``/``r_col``
(ohm per segment), optionally ``adc_bits``, ``adc_kind``, ``readout``,
``energy_per_inference`` (J), ``seed`` and ``status`` (rows not "ok" are
dropped). A plot averages over the columns it does not show; with several seeds
a point is the mean over seeds and its error bar one std across seeds (ddof=1)
(:func:`plot_results` reads ``seeds.csv`` of a Monte Carlo sweep for that).

Public API
----------
PARAMETERS, pareto_mask, accuracy_vs_partitions, partition_heatmap,
accuracy_vs_wire_resistance, accuracy_vs_device, accuracy_vs_adc_bits, pareto_front, plot_results,
DEVICE_AXES
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import ConfigError
from .style import paper_style, save_figure, si_prefix

PARAMETERS = ("h_partitions", "v_partitions", "n_tiles", "r_row", "r_col", "adc_bits",
              "adc_kind", "readout")
"""Columns that identify a configuration (the points of :func:`pareto_front`)."""
_QUANTITIES = {  # column: (axis name, unit)
    "accuracy": ("Accuracy", "%"), "digital_accuracy": ("Digital accuracy", "%"),
    "r_row": ("Word-line resistance per segment", "Ω"),
    "r_col": ("Bit-line resistance per segment", "Ω"),
    "adc_bits": ("ADC resolution", "bits"), "n_tiles": ("Tiles", ""),
    "energy_per_inference": ("Energy per inference", "J"), "adc_kind": ("ADC", ""),
    "readout": ("Readout", ""), "partitions": ("Partitions h / v", ""),
    "programming_noise": ("Programming noise σ", ""), "read_noise": ("Read noise σ / G", ""),
    "stuck_at_gmin": ("Cells stuck at g_min", ""), "stuck_at_gmax": ("Cells stuck at g_max", ""),
    "t_inference": ("Time after programming", "s"), "drift_nu": ("Drift exponent ν", ""),
    "drift_compensation": ("Drift compensation", ""),
}
DEVICE_AXES = ("programming_noise", "stuck_at_gmin", "stuck_at_gmax", "read_noise", "drift_nu",
               "drift_nu_std", "t_inference")
"""Device-statistics columns drawn against accuracy when they vary."""

def _scale(col: str, values) -> tuple[float, str]:
    """Factor to divide ``values`` by and the axis label with its unit."""
    name, unit = _QUANTITIES.get(col, (col.replace("_", " ").capitalize(), ""))
    if unit in ("%", "bits", ""):
        return (0.01 if unit == "%" else 1.0), f"{name} ({unit})" if unit else name
    factor, unit = si_prefix(values, unit, log=_axis_scale(values)[0] != "linear")
    return factor, f"{name} ({unit})" if unit else name


def _axis_scale(values) -> tuple[str, dict]:
    """Log axis for positive data spanning >= 2 decades, symlog when zero is among them."""
    v = np.unique(np.asarray(values, float))
    pos = v[v > 0]
    if pos.size < 2 or pos[-1] / pos[0] < 100 or np.any(v < 0):
        return "linear", {}
    return ("log", {}) if pos.size == v.size else ("symlog", {"linthresh": pos[0]})


def _prepare(df: pd.DataFrame, needed: Sequence[str]) -> pd.DataFrame:
    """Successful rows with values in ``needed`` (a clear error when columns are absent)."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ConfigError(f"the results lack column(s) {missing}; they have {list(df.columns)}")
    if "status" in df.columns:
        df = df[df["status"].astype(str) == "ok"]
    df = df.dropna(subset=list(needed))
    if df.empty:
        raise ConfigError(f"no successful rows with values in {list(needed)} to plot")
    return df


def _layers(series: pd.Series) -> pd.DataFrame:
    """Per-layer partition counts (int) of strings such as "16-8-8"."""
    try:
        return series.astype(str).str.split("-", expand=True).astype(int)
    except (ValueError, TypeError):
        raise ConfigError(f"{series.name} values must look like '16-8-8' (integers joined "
                          f"by '-'), got {series.unique()[:5].tolist()}") from None


def _config_labels(df: pd.DataFrame) -> pd.Series:
    return df["h_partitions"].astype(str) + " / " + df["v_partitions"].astype(str)


def _group_column(df: pd.DataFrame, by: str | None) -> tuple[pd.DataFrame, str | None]:
    """Add a "partitions" column when asked; ``None`` when ``by`` is absent or constant."""
    if by == "partitions" and {"h_partitions", "v_partitions"} <= set(df.columns):
        df = df.assign(partitions=_config_labels(df))
    if by is None or by not in df.columns or df[by].nunique() < 2:
        return df, None
    return df, by


def _seed_stats(df: pd.DataFrame, keys: list[str], ys: list[str]) -> pd.DataFrame:
    """Mean and std across seeds of ``ys`` per ``keys`` (other columns averaged per seed)."""
    inner = keys + (["seed"] if "seed" in df.columns else [])
    per_seed = df.groupby(inner)[ys].mean()
    return per_seed.groupby(level=list(range(len(keys)))).agg(["mean", "std"])


def _line_plot(df, x, by, xlabel, xscale=("linear", {}), ticks=None) -> Figure:
    """Accuracy (mean ± std over seeds) against ``x``, one line per value of ``by``."""
    ys = ["accuracy"] + (["digital_accuracy"] if "digital_accuracy" in df.columns else [])
    groups = list(df.groupby(by, sort=True)) if by else [(None, df)]
    with paper_style():
        fig = Figure()
        ax = fig.add_subplot()
        for value, part in groups:
            st = _seed_stats(part, [x], ys)["accuracy"]
            err = None if st["std"].isna().all() else 100 * st["std"].fillna(0)
            label = None if by is None else f"{value:g}" if isinstance(value, float) else str(value)
            ax.errorbar(st.index, 100 * st["mean"], yerr=err, label=label)
        if "digital_accuracy" in df.columns:
            dig = df.groupby(x)["digital_accuracy"].mean()
            ax.plot(dig.index, 100 * dig, ls="--", color="k", marker="none", lw=0.8,
                    label="Digital")
        ax.set_xscale(xscale[0], **xscale[1])
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Accuracy (%)")
        if by or "digital_accuracy" in df.columns:
            outside = dict(loc="center left", bbox_to_anchor=(1, 0.5)) if len(groups) > 4 else {}
            ax.legend(title=_scale(by, [])[1] if by else None, **outside)
    return fig


def accuracy_vs_partitions(df: pd.DataFrame, by: str | None = None) -> Figure:
    """Accuracy per partition configuration, configurations ordered by number of tiles.

    Parameters
    ----------
    df : pandas.DataFrame
        Sweep results (``h_partitions``, ``v_partitions``, ``accuracy``; ``n_tiles``
        if known, otherwise the sum over layers of h × v).
    by : str, optional
        Column drawn as one line per value (e.g. "r_row"); ignored when constant.
    """
    df = _prepare(df, ["h_partitions", "v_partitions", "accuracy"])
    if "n_tiles" not in df.columns:
        tiles = _layers(df["h_partitions"]) * _layers(df["v_partitions"])
        df = df.assign(n_tiles=tiles.sum(axis=1))
    df, by = _group_column(df.assign(_config=_config_labels(df)), by)
    tiles = df.groupby("_config")["n_tiles"].mean()
    order = sorted(tiles.index, key=lambda c: (tiles[c], c))
    df = df.assign(_pos=df["_config"].map({c: k for k, c in enumerate(order)}))
    return _line_plot(df, "_pos", by, "Partitions h / v (tiles)",
                      ticks=[f"{c} ({tiles[c]:g})" for c in order])


def partition_heatmap(df: pd.DataFrame, layer: int = 0) -> Figure:
    """Heatmap of accuracy over the (h, v) partitions of one layer, averaged over the rest."""
    df = _prepare(df, ["h_partitions", "v_partitions", "accuracy"])
    h, v = _layers(df["h_partitions"]), _layers(df["v_partitions"])
    if not (0 <= layer < min(h.shape[1], v.shape[1])):
        raise ConfigError(f"layer {layer} out of range: the partitions describe "
                          f"{min(h.shape[1], v.shape[1])} layer(s)")
    df = df.assign(_h=h[layer].to_numpy(), _v=v[layer].to_numpy())
    grid = _seed_stats(df, ["_h", "_v"], ["accuracy"])["accuracy"]["mean"].unstack("_v")
    grid = grid.sort_index().sort_index(axis=1)
    z = 100 * grid.to_numpy(float)
    with paper_style():
        fig = Figure()
        ax = fig.add_subplot()
        im = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto")
        lo, hi = np.nanmin(z), np.nanmax(z)
        for (i, j), val in np.ndenumerate(z):
            if np.isfinite(val):
                dark = hi == lo or (val - lo) / (hi - lo) < 0.6
                ax.text(j, i, f"{val:.1f}", ha="center", va="center", fontsize=6,
                        color="w" if dark else "k")
        ax.set_xticks(range(z.shape[1]), [str(c) for c in grid.columns])
        ax.set_yticks(range(z.shape[0]), [str(r) for r in grid.index])
        ax.grid(False)
        ax.spines[:].set_visible(True)
        ax.set_xlabel(f"Vertical partitions, layer {layer}")
        ax.set_ylabel(f"Horizontal partitions, layer {layer}")
        fig.colorbar(im, ax=ax, label="Accuracy (%)")
    return fig


def accuracy_vs_wire_resistance(df: pd.DataFrame, x: str = "r_row",
                                by: str | None = "partitions") -> Figure:
    """Accuracy against wire resistance per segment (``x``: "r_row" or "r_col").

    ``by`` (default: the partition configuration) draws one line per value when it
    varies. The axis is logarithmic when the resistances span two decades or more.
    """
    df = _prepare(df, [x, "accuracy"])
    factor, label = _scale(x, df[x])
    other = {"r_row": "r_col", "r_col": "r_row"}.get(x)
    if other in df.columns and np.allclose(df[x], df[other]):
        label = re.sub(r"^\S+ resistance", "Wire resistance", label)
    df, by = _group_column(df.assign(**{x: df[x] / factor}), by)
    return _line_plot(df, x, by, label, _axis_scale(df[x]))


def accuracy_vs_device(df: pd.DataFrame, x: str = "programming_noise",
                       by: str | None = "partitions") -> Figure:
    """Accuracy against a device-statistics field (mean ± std over seeds), one line per
    value of ``by`` when it varies; logarithmic time axes for drift."""
    df = _prepare(df, [x, "accuracy"])
    factor, label = _scale(x, df[x])
    df, by = _group_column(df.assign(**{x: df[x] / factor}), by)
    return _line_plot(df, x, by, label, _axis_scale(df[x]))


def accuracy_vs_adc_bits(df: pd.DataFrame, by: str | None = "adc_kind") -> Figure:
    """Accuracy against ADC resolution, one line per ADC kind when it varies."""
    df, by = _group_column(_prepare(df, ["adc_bits", "accuracy"]), by)
    fig = _line_plot(df, "adc_bits", by, _scale("adc_bits", [])[1])
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def pareto_mask(x, y) -> np.ndarray:
    """Non-dominated points when ``x`` is minimised and ``y`` maximised.

    A point is dominated when another has ``x' <= x`` and ``y' >= y`` with one of
    them strict; identical points are all kept. Returns a boolean array.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.zeros(x.size, bool)
    best_y, best_x = -np.inf, np.nan
    for k in np.lexsort((-y, x)):  # by x ascending, then y descending
        if y[k] > best_y or (y[k] == best_y and x[k] == best_x):
            keep[k], best_y, best_x = True, y[k], x[k]
    return keep


def pareto_front(df: pd.DataFrame, x: str = "energy_per_inference",
                 y: str = "accuracy") -> Figure:
    """Trade-off of ``y`` (maximised) against ``x`` (minimised) with its Pareto front.

    Each point is one configuration (the :data:`PARAMETERS` columns present),
    averaged over seeds; the non-dominated points are highlighted and joined.
    """
    df = _prepare(df, [x, y])
    keys = [c for c in PARAMETERS if c in df.columns and c not in (x, y)]
    pts = df.groupby(keys, dropna=False)[[x, y]].mean() if keys else df[[x, y]]
    fx, xlabel = _scale(x, pts[x])
    fy, ylabel = _scale(y, pts[y])
    px, py = pts[x].to_numpy() / fx, pts[y].to_numpy() / fy
    front = pareto_mask(px, py)
    order = np.argsort(px[front])
    with paper_style():
        fig = Figure()
        ax = fig.add_subplot()
        ax.plot(px[~front], py[~front], ls="none", marker="o", color="0.65", mfc="none",
                label="Dominated")
        ax.step(px[front][order], py[front][order], where="post", marker="o", color="C1",
                label="Pareto front")
        if y == "accuracy" and "digital_accuracy" in df.columns:
            ax.axhline(100 * df["digital_accuracy"].mean(), ls="--", color="k", lw=0.8,
                       label="Digital")
        scale, kw = _axis_scale(px)
        ax.set_xscale(scale, **kw)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
    return fig


def plot_results(results_dir: str | Path) -> list[Path]:
    """Make every plot the columns of ``results_dir/results.csv`` allow.

    Plots whose columns are absent or constant are skipped; a partition heatmap
    is made for each layer whose h and v partitions both vary. Files go to
    ``results_dir/plots/`` (PDF and PNG each). Returns the written paths.
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

    def varies(*cols: str) -> bool:
        return all(c in df.columns and df[c].nunique() > 1 for c in cols)

    plots = []
    if {"h_partitions", "v_partitions"} <= set(df.columns) and _config_labels(df).nunique() > 1:
        plots.append(("accuracy_vs_partitions", accuracy_vs_partitions, {"by": "topology"}))
        h, v = _layers(df["h_partitions"]), _layers(df["v_partitions"])
        # heatmaps average every other column: not across layer topologies
        for layer in range(0 if varies("topology") else min(h.shape[1], v.shape[1])):
            if h[layer].nunique() > 1 and v[layer].nunique() > 1:
                plots.append((f"partition_heatmap_layer{layer}", partition_heatmap,
                              {"layer": layer}))
    few = {"h_partitions", "v_partitions"} <= set(df.columns) and \
        _config_labels(df).nunique() <= 6  # one line per partitioning when few
    for x in ("r_row", "r_col"):
        if varies(x) and not (x == "r_col" and "r_row" in df.columns
                              and np.allclose(df["r_row"], df["r_col"])):
            plots.append((f"accuracy_vs_{x}", accuracy_vs_wire_resistance,
                          {"x": x, "by": "partitions" if few else None}))
    if varies("adc_bits"):
        plots.append(("accuracy_vs_adc_bits", accuracy_vs_adc_bits, {}))
    for x in DEVICE_AXES:
        if varies(x):
            by = "drift_compensation" if varies("drift_compensation") else "partitions" if few else None
            plots.append((f"accuracy_vs_{x}", accuracy_vs_device, {"x": x, "by": by}))
    if varies("energy_per_inference"):
        plots.append(("pareto_energy_accuracy", pareto_front, {}))
    files = []
    for name, make, kwargs in plots:
        files += save_figure(make(df, **kwargs), Path(results_dir) / "plots", name)
    return files
