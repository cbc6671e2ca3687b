"""Figures of one circuit: a tile's IR-drop map, an ADC's transfer and linearity.

Public API
----------
ir_drop_map, adc_transfer, adc_linearity
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import ConfigError
from .style import COLUMN_WIDTH, paper_style, si_prefix


def ir_drop_map(result, rows: int | None = None, cols: int | None = None,
                drop: bool = False) -> Figure:
    """Word-line and bit-line voltages of a tile over (row, column), two panels.

    Parameters
    ----------
    result : TileResult or OperatingPoint
        Operating point of a canonical tile (nodes ``wl<i>_<j>``, ``bl<i>_<j>``,
        ``in<i>``, ``drv<i>``, ``blend<j>``; merged nodes of zero-resistance wires
        fall back to the driver or bit-line end).
    rows, cols : int, optional
        Tile shape; inferred from the ``in<i>`` and ``blend<j>`` nodes by default.
    drop : bool
        Show the word-line IR drop ``V(in_i) - V(wl_ij)`` instead of the voltage.
    """
    op = getattr(result, "operating_point", result)
    names = {n.lower() for n in getattr(op, "node_names", ())}
    index = {p: [int(m[1]) for n in names if (m := re.fullmatch(p + r"(\d+)", n))]
             for p in ("in", "blend")}
    if not index["in"] or not index["blend"]:
        raise ConfigError("ir_drop_map needs the operating point of a circuitsim tile "
                          "(nodes in<i>, wl<i>_<j>, bl<i>_<j>, blend<j>)")
    rows = max(index["in"]) + 1 if rows is None else rows
    cols = max(index["blend"]) + 1 if cols is None else cols

    def grid(prefix, fallback):  # zero-ohm wires merge cell nodes into their neighbour
        return op.voltage([f"{prefix}{i}_{j}" if f"{prefix}{i}_{j}" in names else fallback(i, j)
                           for i in range(rows) for j in range(cols)]).reshape(rows, cols)

    wl = grid("wl", lambda i, j: f"drv{i}" if f"drv{i}" in names else f"in{i}")
    bl = grid("bl", lambda i, j: f"blend{j}")
    if drop:
        wl = op.voltage([f"in{i}" for i in range(rows)])[:, None] - wl
    aspect = "equal" if 0.25 <= rows / cols <= 4 else "auto"
    with paper_style():
        fig = Figure(figsize=(COLUMN_WIDTH, 1.9))
        panels = (("Word-line IR drop" if drop else "Word lines", wl), ("Bit lines", bl))
        for k, (title, vals) in enumerate(panels):
            ax = fig.add_subplot(1, 2, k + 1)
            factor, unit = si_prefix(vals, "V")
            im = ax.imshow(vals / factor, aspect=aspect)
            ax.set_title(title)
            ax.set_xlabel("Column")
            ax.set_ylabel("Row" if k == 0 else "")
            ax.grid(False)
            ax.spines[:].set_visible(True)
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(MaxNLocator(5, integer=True))
            name = "IR drop" if drop and k == 0 else "Voltage"
            fig.colorbar(im, ax=ax, label=f"{name} ({unit})", shrink=0.8)
    return fig


def adc_transfer(adc, columns: int | Sequence[int] = 0, ideal: bool = True) -> Figure:
    """Static (noise-free) transfer characteristic, code against input, of ADC columns.

    Drawn exactly from the columns' transition levels, with the ideal quantiser
    dashed when ``ideal``. Inputs are volts, or amperes for ``kind="cco"``.
    """
    cfg = adc.config
    cols = [columns] if isinstance(columns, (int, np.integer)) else list(columns)
    th = adc.thresholds[cols]
    lo = min(cfg.v_min, th[:, 0].min() - cfg.lsb)
    hi = max(cfg.v_max, th[:, -1].max() + cfg.lsb)
    unit, what = ("A", "current") if cfg.kind == "cco" else ("V", "voltage")
    factor, unit = si_prefix([lo, hi], unit)
    codes = np.arange(cfg.n_codes)
    with paper_style():
        fig = Figure()
        ax = fig.add_subplot()
        for k, (c, t) in enumerate(zip(cols, th)):
            ax.stairs(codes, np.r_[lo, t, hi] / factor, baseline=None, color=f"C{k}",
                      label=f"Column {c}" if len(cols) > 1 else cfg.kind.upper())
        if ideal:
            t = cfg.v_min + cfg.lsb * np.arange(1, cfg.n_codes)
            ax.stairs(codes, np.r_[lo, t, hi] / factor, baseline=None, color="k", ls="--",
                      lw=0.6, label="Ideal")
        ax.set_xlabel(f"Input {what} ({unit})")
        ax.set_ylabel("Output code")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    return fig


def adc_linearity(linearity) -> Figure:
    """DNL and INL (LSB) against output code, two stacked panels sharing the code axis."""
    codes = np.arange(linearity.dnl.size)
    with paper_style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.8))
        axes = fig.subplots(2, 1, sharex=True)
        for ax, name, vals in zip(axes, ("DNL", "INL"), (linearity.dnl, linearity.inl)):
            if name == "DNL":
                ax.vlines(codes, 0, np.nan_to_num(vals), lw=0.6, color="C0")
            else:
                ax.plot(codes, vals, marker="none", lw=0.8, color="C0")
            ax.axhline(0, color="0.4", lw=0.5)
            ax.set_ylabel(f"{name} (LSB)")
            ax.text(0.99, 0.96, f"max |{name}| = {np.nanmax(np.abs(vals)):.2f} LSB",
                    transform=ax.transAxes, ha="right", va="top", fontsize=7,
                    bbox=dict(fc="w", ec="none", alpha=0.8, pad=1))
        axes[1].set_xlabel("Output code")
        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig
