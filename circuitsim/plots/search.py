"""The figure of a design search: accuracy against energy, latency and area, the Pareto front marked.

:func:`plot_search` draws ``DIR/pareto.pdf`` and ``.png`` for a folder that
:func:`circuitsim.study.search.run_search` wrote (``circuitsim search`` calls both).

Public API
----------
search_front, plot_search
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..study.search import OBJECTIVES, objective_frame
from ..study.sweep import read_results
from .style import COLUMN_WIDTH, paper_style, save_figure
from .sweeps import PARAMETERS, _axis_scale, _designs, _is_axis, _scale


def search_front(df: pd.DataFrame, costs: Sequence[str], front, axes: Sequence[str] | None = None,
                 most_labels: int = 6) -> Figure:
    """Accuracy against each of ``costs`` (one panel each) for the points of a design search.

    ``df`` holds one successful row per design and ``front`` marks those on the Pareto front of
    accuracy and every cost (:func:`circuitsim.study.search.pareto_front`), drawn in colour and,
    when at most ``most_labels``, labelled with their design (the ``axes`` columns that vary);
    with one cost the front is joined as a staircase.
    """
    front = np.asarray(front, bool)
    others = [c for c in (df.columns if axes is None else axes) if c in df.columns and _is_axis(df, c)]
    keys = [c for c in dict.fromkeys([*PARAMETERS, *others]) if c in df.columns]
    design = np.asarray(_designs(df.set_index(keys) if keys else df, keys))
    if front.sum() > most_labels and "point" in df.columns:
        design = np.asarray([f"{p}" for p in df["point"]])
    with paper_style():
        fig = Figure(figsize=(COLUMN_WIDTH, 0.3 + 2.1 * len(costs)))
        axs = fig.subplots(len(costs), 1, squeeze=False)[:, 0]
        py = df["accuracy"].to_numpy(float) * 100
        for ax, cost in zip(axs, costs):
            fx, xlabel = _scale(cost, df[cost])
            px = df[cost].to_numpy(float) / fx
            order = np.argsort(px[front], kind="stable")
            ax.plot(px[~front], py[~front], ls="none", marker="o", color="0.65", mfc="none", label="Dominated")
            ax.plot(px[front][order], py[front][order], ls="none", marker="o", color="C1", label="Pareto front")
            if len(costs) == 1:
                ax.step(px[front][order], py[front][order], where="post", color="C1")
            for name, x, y in zip(design[front][order], px[front][order], py[front][order]):
                ax.annotate(name, (x, y), xytext=(3, -3), textcoords="offset points", fontsize=4.5,
                            ha="left", va="top", color="C1")
            if "digital_accuracy" in df.columns:
                ax.axhline(100 * df["digital_accuracy"].mean(), ls="--", color="k", lw=0.8, label="Digital")
            scale, kw = _axis_scale(px)
            ax.set_xscale(scale, **kw)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("Accuracy (%)")
        axs[0].legend()
        if front.sum() > most_labels and "point" in df.columns:
            axs[0].set_title("front labelled by point (pareto.csv)", loc="left", fontsize=5, color="0.3")
    return fig


def plot_search(out: str | Path) -> list[Path]:
    """Draw ``out/pareto.pdf`` and ``.png`` from a search folder (``search.json``, ``pareto.csv``
    and the results); returns the two paths."""
    out = Path(out)
    try:
        search = json.loads((out / "search.json").read_text())
        front = pd.read_csv(out / "pareto.csv")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{out} holds no readable design search (search.json, pareto.csv: {exc}); "
                          "run circuitsim search SPEC --out DIR first") from None
    frame, meta = read_results(out)
    names = search["objectives"]
    ok = objective_frame(frame, names)
    fig = search_front(ok, [OBJECTIVES[n] for n in names if n != "accuracy"], ok["point"].isin(front["point"]).to_numpy(),
                       axes=list(meta.get("swept", ())))
    return save_figure(fig, out, "pareto")
