"""A design search over a spec's grid: the Pareto front of accuracy against energy, latency, area.

The design space is the spec's sweep grid: every grid axis (``"adc.bits"``, ``"mapping.weight_bits"``,
``"dac.kind"``, the cell preset …), the ``[sweep] compensation`` entries and the partition entries;
one design is one point of the sweep (:meth:`~circuitsim.study.spec.SweepSpec.points`). Every
design is evaluated through the sweep machinery (:func:`~circuitsim.study.sweep.sweep_session`):
the same ``points/`` files, cache, folder lock, workers and Dask, so a search stopped at any
moment loses no finished design, and running it again into the same folder reuses them.

- **Exhaustive** when the budget covers the grid (``trials`` at least the number of points, or
  ``trials`` not given and the grid has at most :data:`DEFAULT_TRIALS` points): every point.
- **NSGA-II** (Optuna's :class:`~optuna.samplers.NSGAIISampler`) otherwise: each trial picks one
  value per grid axis (a categorical choice), i.e. one point; ``trials`` distinct designs are
  evaluated, a generation (``population`` designs) at a time, so that workers compute a
  generation's points side by side. A design proposed again is answered from its stored result
  without counting against the budget. The sampler is seeded: the same spec, budget and seed
  propose the same designs, and a larger budget continues the same search.

Objectives (:data:`OBJECTIVES`): ``accuracy`` (maximised) and the results columns
``energy_per_inference`` (J), ``latency`` (s per image) and ``area`` (m²), minimised. The front
(:func:`pareto_front`) is taken over every finished point of the folder, not only those of the
last search. :func:`best_within` answers the budget question: the design of least energy (latency,
area) whose accuracy is within ``accuracy_drop`` percentage points of its network's digital
(float, software) accuracy. The figure of the front is :func:`circuitsim.plots.search.plot_search`'s
(``circuitsim search`` draws it).

Public API
----------
OBJECTIVES, DEFAULT_TRIALS, SearchResult, parse_objectives, design_axes, run_search,
non_dominated, objective_frame, pareto_front, best_within, check_accuracy_drop, describe, population_size
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .spec import MAX_POINTS, SweepSpec
from .sweep import read_results, sweep_session

OBJECTIVES = {"accuracy": "accuracy", "energy": "energy_per_inference", "latency": "latency", "area": "area"}
"""Objective names and the results columns they read (accuracy maximised, the others minimised)."""
DEFAULT_TRIALS = 100
"""Designs a search evaluates when ``trials`` is not given (the whole grid when it is smaller)."""
COSTS = tuple(name for name in OBJECTIVES if name != "accuracy")
"""The objectives that are minimised."""
_log = logging.getLogger("circuitsim")


@dataclass(frozen=True)
class SearchResult:
    """What :func:`run_search` found."""

    results: pd.DataFrame
    """Every finished point of the results folder (one row per point)."""
    front: pd.DataFrame
    """The non-dominated points (:func:`pareto_front`), also in ``pareto.csv``."""
    method: str
    """``"exhaustive"`` or ``"nsga-ii"``."""
    designs: int
    """Distinct designs the search evaluated (computed now or read from the folder)."""
    files: list[Path] = field(default_factory=list)
    """``pareto.csv`` and ``search.json``."""


def parse_objectives(objectives: str | Sequence[str]) -> tuple[str, ...]:
    """Objective names from ``"accuracy,energy"`` or a sequence; one-line :class:`ConfigError` when bad.

    ``accuracy`` and at least one of energy, latency, area are needed, each once.
    """
    names = [n.strip() for n in (objectives.split(",") if isinstance(objectives, str) else objectives)]
    for name in names:
        if name not in OBJECTIVES:
            raise ConfigError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)} "
                              "(e.g. --objectives accuracy,energy)")
    if len(set(names)) != len(names):
        raise ConfigError(f"objective {next(n for n in names if names.count(n) > 1)!r} is given twice; "
                          "name each objective once")
    if "accuracy" not in names or len(names) < 2:
        raise ConfigError("--objectives needs accuracy and at least one of energy, latency, area "
                          "(e.g. accuracy,energy)")
    return tuple(names)


def design_axes(spec: SweepSpec) -> dict[str, int]:
    """The number of choices of every axis of the design space, in the order of the points'
    multi-index (grid axes, ``compensation`` entries, ``partitions`` entries)."""
    axes = {name: len(values) for name, values in spec.grid.items()}
    if spec.compensations:
        axes["compensation"] = len(spec.compensations)
    axes["partitions"] = len(spec.partitions)
    return axes


def _check(spec: SweepSpec, trials: int | None, accuracy_drop: float | None) -> None:
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"--trials must be a positive integer (designs to evaluate), got {trials!r}")
    if accuracy_drop is not None:
        check_accuracy_drop(accuracy_drop)
    if spec.n_points < 2:
        raise ConfigError("nothing to search: the spec has no grid axes (one design); give [sweep] lists of "
                          "values, e.g. \"adc.bits\" = [4, 6, 8]")


def run_search(spec: SweepSpec, out: str | Path, objectives: str | Sequence[str] = ("accuracy", "energy"),
               trials: int | None = None, accuracy_drop: float | None = None, cache_dir: str | Path | None = None,
               force: bool = False, workers: int = 1, scheduler: str | None = None, retry_failed: bool = False,
               seed: int = 0, yes: bool = False, log=print) -> SearchResult:
    """Search the designs of ``spec`` for the Pareto front of ``objectives``; write ``out/pareto.csv``
    and ``out/search.json`` (objectives, method, designs, trials, seed; the figure:
    :func:`circuitsim.plots.search.plot_search`).

    Parameters
    ----------
    spec : SweepSpec
        A validated spec whose grid is the design space (at least two points).
    out : str or Path
        Results folder (as :func:`~circuitsim.study.sweep.run_sweep`'s; a search and a sweep of the
        same spec share it).
    objectives : str or sequence of str
        ``accuracy`` and one or more of ``energy``, ``latency``, ``area`` (:data:`OBJECTIVES`).
    trials : int, optional
        Designs to evaluate; at least the grid's points: every point. Default: the whole grid
        up to :data:`DEFAULT_TRIALS` points, else NSGA-II with :data:`DEFAULT_TRIALS`.
    accuracy_drop : float, optional
        Percentage points; when given, ``log`` also receives :func:`best_within`'s answer for
        every cost objective.
    cache_dir, force, workers, scheduler, retry_failed, log
        As :func:`~circuitsim.study.sweep.run_sweep`'s.
    seed : int
        Seed of the NSGA-II sampler.
    yes : bool
        Evaluate more than :data:`~circuitsim.study.spec.MAX_POINTS` runs.

    Returns
    -------
    SearchResult

    Raises
    ------
    ConfigError
        Bad input, before anything runs: an unknown objective, a spec of one design, ``trials`` < 1,
        ``accuracy_drop`` < 0.
    """
    names = parse_objectives(objectives)
    _check(spec, trials, accuracy_drop)
    exhaustive = spec.n_points <= (DEFAULT_TRIALS if trials is None else trials)
    budget = spec.n_points if exhaustive else (trials or DEFAULT_TRIALS)
    runs = budget * (spec.seeds or 1)
    if runs > MAX_POINTS and not yes:
        raise ConfigError(f"the search evaluates {runs} runs (more than {MAX_POINTS}); pass --yes (yes=True) "
                          "to run them all, or give fewer --trials")
    if not exhaustive:
        _import_optuna()
    out = Path(out)
    with sweep_session(spec, out, cache_dir, force, log, workers, scheduler, retry_failed) as run:
        if exhaustive:
            frame, designs = run(None), spec.n_points
        else:
            frame, designs = _nsga2(spec, names, budget, seed, run, log)
    _, meta = read_results(out)
    front = pareto_front(frame, names)
    files = _write_front(out, front, names, meta.get("swept", ()),
                         {"method": "exhaustive" if exhaustive else "nsga-ii", "designs": designs,
                          "trials": trials, "seed": seed, "front": len(front)})
    log(f"{'every point' if exhaustive else f'NSGA-II, {designs} designs'} of {spec.n_points}: "
        f"{len(front)} on the Pareto front of {', '.join(names)} -> {out / 'pareto.csv'}")
    if accuracy_drop is not None:
        for name in names:
            if name != "accuracy":
                log(describe(frame, name, accuracy_drop, meta.get("swept", ())))
    return SearchResult(frame, front, "exhaustive" if exhaustive else "nsga-ii", designs, files)


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("a search of more points than --trials needs Optuna: pip install optuna "
                          "(or the search extra), or give --trials of at least the grid's points") from None
    return optuna


def population_size(n_points: int) -> int:
    """NSGA-II's population: √(designs) rounded, between 4 and 50 (a property of the spec, not of
    the budget, so that a larger ``trials`` continues the same search)."""
    return int(min(50, max(4, round(math.sqrt(n_points)))))


def _nsga2(spec: SweepSpec, names: tuple[str, ...], budget: int, seed: int, run, log) -> tuple[pd.DataFrame, int]:
    """Ask NSGA-II for designs a generation at a time until ``budget`` distinct ones are evaluated."""
    optuna = _import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    axes = design_axes(spec)
    dims = tuple(axes.values())
    sampler = optuna.samplers.NSGAIISampler(population_size=population_size(spec.n_points), seed=seed)
    study = optuna.create_study(directions=["maximize" if n == "accuracy" else "minimize" for n in names],
                                sampler=sampler)
    seen: set[int] = set()
    asks, most_asks = 0, 20 * budget + 100
    frame = pd.DataFrame()
    while len(seen) < budget and asks < most_asks:
        batch = []
        while len(batch) < population_size(spec.n_points) and len(seen) < budget and asks < most_asks:
            trial = study.ask()
            asks += 1
            choice = tuple(trial.suggest_categorical(name, list(range(n))) if n > 1 else 0 for name, n in axes.items())
            index = int(np.ravel_multi_index(choice, dims))
            seen.add(index)
            batch.append((trial, index))
        frame = run({index for _, index in batch})
        rows = frame.set_index("point") if "point" in frame else frame
        for trial, index in batch:
            values = _objective_values(rows, index, names)
            if values is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values)
    if len(seen) < budget:
        log(f"NSGA-II proposed only {len(seen)} distinct designs in {asks} trials; stopped there")
    return frame, len(seen)


def _objective_values(rows: pd.DataFrame, index: int, names: tuple[str, ...]) -> list[float] | None:
    """A finished point's objective values, or None when it failed or lacks one."""
    if index not in rows.index:
        return None
    row = rows.loc[index]
    if str(row.get("status", "ok")) != "ok":
        return None
    values = [float(row.get(OBJECTIVES[n], math.nan)) for n in names]
    return values if all(math.isfinite(v) for v in values) else None


def non_dominated(costs) -> np.ndarray:
    """Rows of ``costs`` (points × objectives, all minimised) that no other row dominates.

    A row is dominated when another is no worse in every objective and better in one; equal
    rows are all kept. Returns a boolean mask.
    """
    costs = np.asarray(costs, float)
    keep = np.ones(len(costs), bool)
    for k, row in enumerate(costs):
        others = costs[keep]
        if np.any(np.all(others <= row, axis=1) & np.any(others < row, axis=1)):
            keep[k] = False
    return keep


def objective_frame(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Successful rows with every objective's column (a one-line error when a column is absent)."""
    missing = [OBJECTIVES[n] for n in names if OBJECTIVES[n] not in frame.columns]
    if missing:
        raise ConfigError(f"the results have no {missing[0]} column (points of this kind do not record it); "
                          f"choose among the objectives of {[n for n in OBJECTIVES if OBJECTIVES[n] in frame]}")
    if "status" in frame.columns:
        frame = frame[frame["status"].astype(str) == "ok"]
    return frame.dropna(subset=[OBJECTIVES[n] for n in names])


def pareto_front(frame: pd.DataFrame, objectives: Sequence[str]) -> pd.DataFrame:
    """The successful points of ``frame`` that no other dominates in ``objectives`` (accuracy
    maximised; energy, latency, area minimised), by their first cost, ascending."""
    names = parse_objectives(objectives)
    frame = objective_frame(frame, names)
    costs = np.column_stack([(-1 if n == "accuracy" else 1) * frame[OBJECTIVES[n]].to_numpy(float) for n in names])
    front = frame[non_dominated(costs)] if len(frame) else frame
    return front.sort_values([OBJECTIVES[n] for n in names if n != "accuracy"][0], kind="stable")


def best_within(frame: pd.DataFrame, objective: str, accuracy_drop: float) -> pd.Series | None:
    """The successful point of least ``objective`` (energy, latency or area) whose accuracy is at
    most ``accuracy_drop`` percentage points below its digital accuracy (its network in floating
    point, as trained); None when no point is. Ties: the more accurate, then the lower index."""
    if objective not in COSTS:
        raise ConfigError(f"--best takes one of {', '.join(COSTS)}, got {objective!r}")
    check_accuracy_drop(accuracy_drop)
    frame = objective_frame(frame, ("accuracy", objective))
    if "digital_accuracy" not in frame.columns:
        raise ConfigError("the results have no digital_accuracy column to measure the accuracy drop from")
    within = frame[frame["accuracy"] >= frame["digital_accuracy"] - accuracy_drop / 100 - 1e-12]
    if within.empty:
        return None
    keys = {OBJECTIVES[objective]: True, "accuracy": False, **({"point": True} if "point" in within else {})}
    return within.sort_values(list(keys), ascending=list(keys.values()), kind="stable").iloc[0]


def check_accuracy_drop(accuracy_drop: float) -> None:
    if not (isinstance(accuracy_drop, int | float) and not isinstance(accuracy_drop, bool)
            and math.isfinite(accuracy_drop) and accuracy_drop >= 0):
        raise ConfigError(f"--accuracy-drop must be a number of percentage points >= 0, got {accuracy_drop!r}")


def describe(frame: pd.DataFrame, objective: str, accuracy_drop: float, swept: Sequence[str] = ()) -> str:
    """One line answering "the least ``objective`` within ``accuracy_drop`` points of the digital
    accuracy" for a results table (:func:`best_within`)."""
    best = best_within(frame, objective, accuracy_drop)
    column = OBJECTIVES[objective]
    if best is None:
        ok = objective_frame(frame, ("accuracy", objective))
        closest = (100 * (ok["digital_accuracy"] - ok["accuracy"])).min() if len(ok) else math.nan
        return (f"no point is within {accuracy_drop:g} point(s) of its digital accuracy (the closest is "
                f"{closest:.2f} points below); allow a larger --accuracy-drop")
    unit = {"energy": "J", "latency": "s", "area": "m²"}[objective]
    where = ", ".join(f"{c}={best[c]}" for c in dict.fromkeys([*swept, "h_partitions", "v_partitions"])
                      if c in best.index)
    return (f"least {column} within {accuracy_drop:g} point(s) of the digital accuracy: {best[column]:.4g} {unit} "
            f"at accuracy {best['accuracy']:.4f} (digital {best['digital_accuracy']:.4f}), point {int(best['point'])}"
            + (f": {where}" if where else ""))


def _write_front(out: Path, front: pd.DataFrame, names: tuple[str, ...], swept: Sequence[str],
                 search: dict) -> list[Path]:
    """``pareto.csv`` (point, swept columns, objectives, then the rest) and ``search.json`` (what was searched)."""
    from .storage import write_atomic

    first = [c for c in dict.fromkeys(["point", *swept, "h_partitions", "v_partitions",
                                       *(OBJECTIVES[n] for n in names), "digital_accuracy"]) if c in front.columns]
    table = front[first + [c for c in front.columns if c not in first]]
    write_atomic(out / "pareto.csv", table.to_csv(index=False))
    write_atomic(out / "search.json", json.dumps({"objectives": list(names), **search}, indent=2))
    return [out / "pareto.csv", out / "search.json"]
