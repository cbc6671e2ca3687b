"""Where the energy of an inference goes: one stacked bar per design.

:func:`energy_breakdown` draws the parts of ``energy_per_inference`` a sweep records
(``crossbar_energy``, ``adc_energy``, ``dac_energy``, ``digital_energy``; they sum to it) for
every configuration (averaged over seeds only), labelled with its design like the Pareto
points of :func:`~circuitsim.plots.sweeps.pareto_front`.

Public API
----------
ENERGY_PARTS, energy_breakdown
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .style import paper_style, si_prefix
from .sweeps import PARAMETERS, _designs, _is_axis, _prepare

ENERGY_PARTS = {"crossbar_energy": "Crossbar", "adc_energy": "ADC", "dac_energy": "DAC",
                "digital_energy": "Shift-add"}
"""The energy columns that sum to ``energy_per_inference`` and their legend names."""


def energy_breakdown(df: pd.DataFrame, axes: Sequence[str] | None = None) -> Figure:
    """Energy per inference of every configuration, stacked by part (J, SI-prefixed)."""
    parts = [c for c in ENERGY_PARTS if c in df.columns]
    df = _prepare(df, parts)
    others = [c for c in (df.columns if axes is None else axes) if c in df.columns and _is_axis(df, c)]
    keys = [c for c in dict.fromkeys([*PARAMETERS, *others]) if c in df.columns]
    pts = df.groupby(keys, dropna=False)[parts].mean() if keys else df[parts].mean().to_frame().T
    designs = _designs(pts, keys) if keys else [""]
    factor, unit = si_prefix(pts.to_numpy().sum(axis=1), "J")
    with paper_style():
        fig = Figure()
        ax = fig.add_subplot()
        bottom = np.zeros(len(pts))
        for n, part in enumerate(parts):
            values = pts[part].to_numpy() / factor
            ax.bar(np.arange(len(pts)), values, bottom=bottom, color=f"C{n}", label=ENERGY_PARTS[part])
            bottom += values
        ax.set_xticks(np.arange(len(pts)), designs, rotation=60, ha="right", fontsize=5)
        ax.set_ylabel(f"Energy per inference ({unit})")
        ax.legend()
    return fig
