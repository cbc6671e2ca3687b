"""Figures for papers: sweep results, tile IR drop and ADC characteristics.

Every function returns a :class:`matplotlib.figure.Figure` in the shipped paper
style (:func:`paper_style`: 3.5 in wide, 8 pt text, thin lines, constrained
layout, TrueType fonts in PDF). Figures use the object-oriented API, not pyplot:
no GUI backend is ever needed (files are rendered by Agg and the PDF backend,
with or without a display), batch plotting leaves nothing in pyplot's registry,
and a notebook displays a returned figure once ``%matplotlib inline`` is active.
``import circuitsim`` does not import this package, hence not matplotlib.

Modules
-------
style
    The paper style, SI-prefixed units, atomic PDF/PNG files.
sweeps
    Figures of sweep results (one row per point).
results
    :func:`plot_results`: every figure a results folder allows.
search
    :func:`plot_search`: the Pareto front of a design search (``DIR/pareto.pdf``).
circuits
    Figures of one tile or one ADC.

Public API
----------
STYLE, COLUMN_WIDTH, PARAMETERS, paper_style, pareto_mask, hidden_axes,
accuracy_vs_partitions, partition_heatmap, accuracy_vs_wire_resistance,
accuracy_vs_device, accuracy_vs_adc_bits, pareto_front, energy_breakdown, ir_drop_map, adc_transfer, adc_linearity,
save_figure, plot_results, search_front, plot_search
"""

from .breakdown import energy_breakdown
from .circuits import adc_linearity, adc_transfer, ir_drop_map
from .style import COLUMN_WIDTH, STYLE, paper_style, save_figure
from .sweeps import (
    PARAMETERS,
    accuracy_vs_adc_bits,
    accuracy_vs_device,
    accuracy_vs_partitions,
    accuracy_vs_wire_resistance,
    hidden_axes,
    pareto_front,
    pareto_mask,
    partition_heatmap,
)
from .results import plot_results
from .search import plot_search, search_front

__all__ = [
    "STYLE", "COLUMN_WIDTH", "PARAMETERS", "paper_style", "pareto_mask", "hidden_axes",
    "accuracy_vs_partitions", "partition_heatmap", "accuracy_vs_wire_resistance",
    "accuracy_vs_device", "accuracy_vs_adc_bits", "pareto_front", "energy_breakdown", "ir_drop_map",
    "adc_transfer", "adc_linearity",
    "save_figure", "plot_results", "search_front", "plot_search",
]
