"""Monte Carlo over device seeds: one row per point from one row per point and seed.

With ``[sweep] seeds = N`` every point runs ``N`` times, once per device seed
(:func:`circuitsim.study.spec.seed_points`). ``seeds.csv`` keeps every run; ``results.csv``
gets one row per point: ``accuracy`` (mean over the seeds that finished), ``accuracy_std``
(sample standard deviation, ddof = 1), ``accuracy_ci_low`` / ``accuracy_ci_high`` (95 %
Student-t interval of the mean, ``mean ± t(0.975, n − 1) · std / √n``; equal to the mean for
one seed), ``n_seeds``, and the mean of every other numeric figure. A point whose seeds did
not all finish well has the ``status`` and ``error`` of its first failed seed.

Public API
----------
CONFIDENCE, t_interval, summarize_seeds
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
"""Level of the confidence intervals."""


def t_interval(values, level: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """Mean, sample std and the Student-t interval of the mean of ``values``.

    Returns ``(mean, std, low, high)``; with one value std is NaN and the interval is the
    value itself.
    """
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, mean, mean
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, x.size - 1)) * std / math.sqrt(x.size)
    return mean, std, mean - half, mean + half


def summarize_seeds(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per ``point`` of a table with one row per point and seed (see the module docstring)."""
    rows = []
    for _, group in seeds.groupby("point", sort=True):
        first = group.iloc[0].to_dict()
        ok = group[group["status"].astype(str) == "ok"] if "status" in group else group
        bad = group[group["status"].astype(str) != "ok"] if "status" in group else group.iloc[:0]
        row = {k: v for k, v in first.items() if k != "seed"}
        for column in group.columns:
            if column in ("point", "seed") or not pd.api.types.is_numeric_dtype(group[column]):
                continue
            if column.endswith("_partitions") or group[column].nunique(dropna=False) == 1:
                continue  # swept values and constants stay as they are
            row[column] = float(ok[column].mean()) if len(ok) else math.nan
        if "accuracy" in group:
            mean, std, low, high = t_interval(ok["accuracy"]) if len(ok) else (math.nan,) * 4
            row.update(accuracy=mean, accuracy_std=std, accuracy_ci_low=low, accuracy_ci_high=high)
        row["n_seeds"] = int(len(ok))
        if len(bad):
            row.update(status=bad.iloc[0]["status"], error=bad.iloc[0].get("error", ""))
        rows.append(row)
    return pd.DataFrame(rows)
