"""Figures of sweep results: accuracy against partitions, wires and ADC bits, Pareto fronts.

Sweep results are tidy DataFrames, one row per point: ``h_partitions`` and
``v_partitions`` ("16-8-8": one count per layer), ``accuracy`` and
``digital_accuracy`` (fractions, drawn in %), ``n_tiles``, ``r_row``/``r_col``
(ohm per segment), optionally ``adc_bits``, ``adc_kind``, ``readout``,
``energy_per_inference`` (J), ``seed`` and ``status`` (rows not "ok" are
dropped). With several seeds a point is the mean over seeds and its error bar one std
across seeds (ddof=1) (:func:`plot_results` reads ``seeds.csv`` of a Monte Carlo sweep
for that).

**No silent averages.** A configuration column (``axes``: the sweep's swept columns, or
by default every column that is not an outcome, :data:`OUTCOMES`) that varies among the
rows one mark stands for is named on the figure ("mean over ...").
:func:`~circuitsim.plots.results.plot_results` avoids that altogether: it draws one figure
per combination of the columns a plot does not show (up to :data:`MAX_FACETS`; files
``NAME--column=value...``), and a partition
heatmap only where each cell is one partitioning. Pareto points are single configurations,
labelled with their design.

Public API
----------
PARAMETERS, OUTCOMES, MAX_FACETS, hidden_axes, pareto_mask, accuracy_vs_partitions, partition_heatmap,
accuracy_vs_wire_resistance, accuracy_vs_device, accuracy_vs_adc_bits, pareto_front, DEVICE_AXES
(:func:`~circuitsim.plots.results.plot_results` draws them all for a results folder)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import ConfigError
from .style import paper_style, si_prefix

PARAMETERS = ("h_partitions", "v_partitions", "n_tiles", "r_row", "r_col", "adc_bits",
              "adc_kind", "readout")
"""Columns that identify a configuration (the points of :func:`pareto_front`)."""
_QUANTITIES = {  # column: (axis name, unit)
    "accuracy": ("Accuracy", "%"), "digital_accuracy": ("Digital accuracy", "%"),
    "r_row": ("Word-line resistance per segment", "Ω"),
    "r_col": ("Bit-line resistance per segment", "Ω"),
    "adc_bits": ("ADC resolution", "bits"), "n_tiles": ("Tiles", ""),
    "energy_per_inference": ("Energy per inference", "J"), "adc_kind": ("ADC", ""),
    "latency": ("Latency per image", "s"), "area": ("Area", "m²"),
    "readout": ("Readout", ""), "r_sense": ("Sense resistance", "Ω"), "partitions": ("Partitions h / v", ""),
    "programming_noise": ("Programming noise σ", ""), "read_noise": ("Read noise σ / G", ""),
    "stuck_at_gmin": ("Cells stuck at g_min", ""), "stuck_at_gmax": ("Cells stuck at g_max", ""),
    "t_inference": ("Time after programming", "s"), "drift_nu": ("Drift exponent ν", ""),
    "drift_compensation": ("Drift compensation", ""),
}
OUTCOMES = ("accuracy", "digital_accuracy", "analog_accuracy", "accuracy_std", "accuracy_ci_low",
            "accuracy_ci_high", "accuracy_uncompensated", "n_seeds", "n_tiles", "n_images",
            "conversions_per_inference", "extra_parameters", "extra_macs", "status", "error", "deck",
            "point", "seed", "dac_clipped")
"""Columns that are results, not configuration (also any column with ``energy`` in its name,
``area*``, ``latency*`` and ``*_seconds``)."""
MAX_FACETS = 12
"""Most figures :func:`plot_results` draws for one plot, one per value of the columns it
does not show; beyond that it draws one figure that names what it averages over."""
DEVICE_AXES = ("programming_noise", "stuck_at_gmin", "stuck_at_gmax", "read_noise", "drift_nu",
               "drift_nu_std", "t_inference")
"""Device-statistics columns drawn against accuracy when they vary."""

def _is_axis(df: pd.DataFrame, col: str) -> bool:
    return not (col in OUTCOMES or "energy" in col or col.startswith(("area", "latency", "_"))
                or col.endswith("_seconds") or col == "partitions")


def hidden_axes(df: pd.DataFrame, shown: Sequence[str], axes: Sequence[str] | None = None) -> list[str]:
    """Configuration columns that vary among rows that share the ``shown`` columns' values.

    Parameters
    ----------
    df : pandas.DataFrame
        Sweep results, one row per point (and seed).
    shown : sequence of str
        Columns a figure tells apart (its axes, lines, cells).
    axes : sequence of str, optional
        The configuration columns (e.g. a sweep's swept columns); by default every column
        that is not an outcome (:data:`OUTCOMES`, ``*energy*``, ``area*``, ``latency*``, ``*_seconds``).

    Returns
    -------
    list of str
        The columns a figure of ``shown`` would average over.
    """
    candidates = [c for c in (df.columns if axes is None else axes)
                  if c in df.columns and c not in shown and _is_axis(df, c)]
    keys = [c for c in shown if c in df.columns]
    hidden = []
    for c in candidates:
        spread = df.groupby(keys, dropna=False)[c].nunique(dropna=False).max() if keys else df[c].nunique()
        if spread > 1:
            hidden.append(c)
    return hidden


def _note_hidden(fig: Figure, df: pd.DataFrame, shown: Sequence[str], axes: Sequence[str] | None) -> None:
    """Say on the figure which configuration columns its marks average over."""
    hidden = hidden_axes(df, shown, axes)
    if hidden:
        what = ", ".join(f"{c} ({df[c].nunique(dropna=False)} values)" for c in hidden)
        fig.axes[0].set_title(f"mean over {what}", loc="left", fontsize=5, color="0.3")


def _scale(col: str, values) -> tuple[float, str]:
    """Factor to divide ``values`` by and the axis label with its unit."""
    name, unit = _QUANTITIES.get(col, (col.replace("_", " ").capitalize(), ""))
    if unit in ("%", "bits", ""):
        return (0.01 if unit == "%" else 1.0), f"{name} ({unit})" if unit else name
    if unit == "m²":  # a prefix scales the metre, not the square metre
        return (1e-6, f"{name} (mm²)") if np.nanmax(np.abs(np.asarray(values, float))) >= 1e-7 else \
            (1e-12, f"{name} (µm²)")
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


def accuracy_vs_partitions(df: pd.DataFrame, by: str | None = None, axes: Sequence[str] | None = None) -> Figure:
    """Accuracy per partition configuration, configurations ordered by number of tiles.

    Parameters
    ----------
    df : pandas.DataFrame
        Sweep results (``h_partitions``, ``v_partitions``, ``accuracy``; ``n_tiles``
        if known, otherwise the sum over layers of h × v).
    by : str, optional
        Column drawn as one line per value (e.g. "r_row"); ignored when constant.
    axes : sequence of str, optional
        The configuration columns (see :func:`hidden_axes`); the figure names those it
        averages over.
    """
    df = _prepare(df, ["h_partitions", "v_partitions", "accuracy"])
    if "n_tiles" not in df.columns:
        tiles = _layers(df["h_partitions"]) * _layers(df["v_partitions"])
        df = df.assign(n_tiles=tiles.sum(axis=1))
    df, by = _group_column(df.assign(_config=_config_labels(df)), by)
    tiles = df.groupby("_config")["n_tiles"].mean()
    order = sorted(tiles.index, key=lambda c: (tiles[c], c))
    df = df.assign(_pos=df["_config"].map({c: k for k, c in enumerate(order)}))
    fig = _line_plot(df, "_pos", by, "Partitions h / v (tiles)", ticks=[f"{c} ({tiles[c]:g})" for c in order])
    _note_hidden(fig, df, ["h_partitions", "v_partitions", by], axes)
    return fig


def partition_heatmap(df: pd.DataFrame, layer: int = 0, axes: Sequence[str] | None = None) -> Figure:
    """Heatmap of accuracy over the (h, v) partitions of one layer.

    A cell that stands for several configurations (other layers' partitions, other swept
    values) shows their mean, and the figure says what it averages over
    (:func:`hidden_axes`; ``axes`` as there).
    """
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
    _note_hidden(fig, df, ["_h", "_v"], axes)
    return fig


def accuracy_vs_wire_resistance(df: pd.DataFrame, x: str = "r_row", by: str | None = "partitions",
                                axes: Sequence[str] | None = None) -> Figure:
    """Accuracy against wire resistance per segment (``x``: "r_row" or "r_col").

    ``by`` (default: the partition configuration) draws one line per value when it
    varies. The axis is logarithmic when the resistances span two decades or more.
    The figure names the configuration columns it averages over (:func:`hidden_axes`).
    """
    df = _prepare(df, [x, "accuracy"])
    factor, label = _scale(x, df[x])
    other = {"r_row": "r_col", "r_col": "r_row"}.get(x)
    if other in df.columns and np.allclose(df[x], df[other]):
        label = re.sub(r"^\S+ resistance", "Wire resistance", label)
    df, by = _group_column(df.assign(**{x: df[x] / factor}), by)
    fig = _line_plot(df, x, by, label, _axis_scale(df[x]))
    _note_hidden(fig, df, _shown(x, by) + ([other] if other in df.columns and np.allclose(df[x], df[other])
                                           else []), axes)
    return fig


def _shown(x: str, by: str | None) -> list[str]:
    return [x] + (["h_partitions", "v_partitions"] if by == "partitions" else [by] if by else [])


def accuracy_vs_device(df: pd.DataFrame, x: str = "programming_noise", by: str | None = "partitions",
                       axes: Sequence[str] | None = None) -> Figure:
    """Accuracy against a device-statistics field (mean ± std over seeds), one line per
    value of ``by`` when it varies; logarithmic time axes for drift. The figure names the
    configuration columns it averages over (:func:`hidden_axes`)."""
    df = _prepare(df, [x, "accuracy"])
    factor, label = _scale(x, df[x])
    df, by = _group_column(df.assign(**{x: df[x] / factor}), by)
    fig = _line_plot(df, x, by, label, _axis_scale(df[x]))
    _note_hidden(fig, df, _shown(x, by), axes)
    return fig


def accuracy_vs_adc_bits(df: pd.DataFrame, by: str | None = "adc_kind", axes: Sequence[str] | None = None) -> Figure:
    """Accuracy against ADC resolution, one line per ADC kind when it varies; the figure
    names the configuration columns it averages over (:func:`hidden_axes`)."""
    df, by = _group_column(_prepare(df, ["adc_bits", "accuracy"]), by)
    fig = _line_plot(df, "adc_bits", by, _scale("adc_bits", [])[1])
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    _note_hidden(fig, df, _shown("adc_bits", by), axes)
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


def pareto_front(df: pd.DataFrame, x: str = "energy_per_inference", y: str = "accuracy",
                 axes: Sequence[str] | None = None, label_front: bool = True) -> Figure:
    """Trade-off of ``y`` (maximised) against ``x`` (minimised) with its Pareto front.

    Each point is one configuration (the :data:`PARAMETERS` columns present and every
    other configuration column, ``axes`` as in :func:`hidden_axes`), averaged over seeds
    only; the non-dominated points are highlighted, joined and, with ``label_front``,
    labelled with their design (the configuration columns that vary).
    """
    df = _prepare(df, [x, y])
    others = [c for c in (df.columns if axes is None else axes) if c in df.columns and _is_axis(df, c)]
    keys = [c for c in dict.fromkeys([*PARAMETERS, *others]) if c in df.columns and c not in (x, y)]
    pts = df.groupby(keys, dropna=False)[[x, y]].mean() if keys else df[[x, y]]
    design = _designs(pts, keys)
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
        if label_front:
            for name, fx_, fy_ in zip(np.asarray(design)[front][order], px[front][order], py[front][order]):
                ax.annotate(name, (fx_, fy_), xytext=(3, -3), textcoords="offset points", fontsize=4.5,
                            ha="left", va="top", color="C1")
        if y == "accuracy" and "digital_accuracy" in df.columns:
            ax.axhline(100 * df["digital_accuracy"].mean(), ls="--", color="k", lw=0.8,
                       label="Digital")
        scale, kw = _axis_scale(px)
        ax.set_xscale(scale, **kw)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
    return fig


def _designs(pts: pd.DataFrame, keys: list[str]) -> list[str]:
    """A short label per configuration: its partitions and the other keys that vary."""
    if not keys:
        return [""] * len(pts)
    index = pts.index.to_frame(index=False)
    varying = []
    for c in keys:  # the keys that vary and do not follow from those before (r_col = r_row)
        if index[c].nunique(dropna=False) > 1 and (
                not varying or index.groupby(varying, dropna=False)[c].nunique(dropna=False).max() > 1):
            varying.append(c)
    if {"h_partitions", "v_partitions"} <= set(keys) and {"h_partitions", "v_partitions"} & set(varying):
        varying += [c for c in ("h_partitions", "v_partitions") if c not in varying]  # a partitioning is named by both
    labels = []
    for _, row in index.iterrows():
        parts = []
        if {"h_partitions", "v_partitions"} <= set(varying):
            parts.append(f"{row['h_partitions']}/{row['v_partitions']}")
        parts += [f"{c}={row[c]:g}" if isinstance(row[c], float) else f"{c}={row[c]}"
                  for c in varying if c not in ("h_partitions", "v_partitions", "n_tiles")]
        labels.append(", ".join(parts))
    return labels
