"""The design search (issue 26): every point or NSGA-II through the sweep machinery, the Pareto
front against a brute-force filter of the stored results, resume, the budget question, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from circuitsim.cli import main
from circuitsim.errors import ConfigError
from circuitsim.study.search import OBJECTIVES, best_within, describe, design_axes, run_search
from circuitsim.study.spec import parse_spec

SPEC = """
title = "a tiny design search"
[dataset]
name = "digits"
side = 8
[network]
layers = [64, 16, 10]
epochs = 30
[adc]
kind = "sar"
bits = 6
[sweep]
"adc.bits" = [2, 3, 6]
"adc.columns_per_adc" = [1, 2]
partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [1, 1]}]
"""
OBJ = ("accuracy", "energy", "latency")


def _brute_front(rows: pd.DataFrame, objectives) -> set[int]:
    """Points no other point beats or equals in every objective while beating it in one (O(n²), by hand)."""
    ok = rows[rows["status"] == "ok"]
    signs = {"accuracy": -1.0, "energy": 1.0, "latency": 1.0, "area": 1.0}
    costs = {int(r["point"]): [signs[o] * float(r[OBJECTIVES[o]]) for o in objectives] for _, r in ok.iterrows()}
    front = set()
    for p, a in costs.items():
        if not any(all(x <= y for x, y in zip(b, a)) and any(x < y for x, y in zip(b, a))
                   for q, b in costs.items() if q != p):
            front.add(p)
    return front


def _stored(out) -> pd.DataFrame:
    return pd.DataFrame([json.loads(f.read_text()) for f in sorted((out / "points").glob("*.json"))])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def exhaustive(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("exhaustive") / "out"
    result = run_search(parse_spec(SPEC), out, OBJ, cache_dir=cache, log=lambda s: None)
    return out, result


def test_a_small_grid_is_searched_point_by_point_and_its_front_is_the_non_dominated_set(exhaustive):
    out, result = exhaustive
    stored = _stored(out)
    assert result.method == "exhaustive" and result.designs == 12 and len(stored) == 12
    assert (stored["status"] == "ok").all(), stored["error"].tolist()
    front = pd.read_csv(out / "pareto.csv")
    assert set(front["point"]) == _brute_front(stored, OBJ)
    assert 1 < len(front) < 12  # the filter removes something and keeps a trade-off
    assert list(front.columns[:4]) == ["point", "bits", "columns_per_adc", "h_partitions"]
    assert front["energy_per_inference"].is_monotonic_increasing
    assert json.loads((out / "search.json").read_text())["objectives"] == list(OBJ)
    from circuitsim.plots import plot_search

    files = plot_search(out)
    assert [f.name for f in files] == ["pareto.pdf", "pareto.png"] and all(f.stat().st_size > 0 for f in files)
    # on two objectives only, the front is a staircase: more energy buys more accuracy
    two = _brute_front(stored, ("accuracy", "energy"))
    stairs = stored[stored["point"].isin(two)].sort_values("energy_per_inference")
    assert stairs["accuracy"].is_monotonic_increasing and two <= set(front["point"])


def test_nsga2_evaluates_the_budget_through_the_sweep_folder_and_resumes(tmp_path, cache):
    pytest.importorskip("optuna")
    spec = parse_spec(SPEC)
    out = tmp_path / "out"
    result = run_search(spec, out, OBJ, trials=5, cache_dir=cache, log=lambda s: None)
    stored = _stored(out)
    assert result.method == "nsga-ii" and result.designs == 5 and len(stored) == 5
    assert set(pd.read_csv(out / "pareto.csv")["point"]) == _brute_front(stored, OBJ)
    points = {p.index: p for p in spec.points()}  # every stored design is the spec's point of its index
    for _, row in stored.iterrows():
        point = points[int(row["point"])]
        assert row["bits"] == point.values["adc.bits"] and row["h_partitions"] == point.values["h_partitions"]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["computed"] == 5 and provenance["complete"] is False and provenance["points"] == 12
    again = run_search(spec, out, OBJ, trials=5, cache_dir=cache, log=lambda s: None)  # same designs, none computed
    assert json.loads((out / "provenance.json").read_text())["computed"] == 0
    assert set(again.front["point"]) == set(result.front["point"])
    more = run_search(spec, out, OBJ, trials=7, cache_dir=cache, log=lambda s: None)  # the same search, further
    assert json.loads((out / "provenance.json").read_text())["computed"] == 2 and more.designs == 7
    assert set(_stored(out)["point"]) > set(stored["point"])
    assert set(more.front["point"]) == _brute_front(_stored(out), OBJ)


def test_the_design_axes_index_the_points():
    spec = parse_spec(SPEC)
    axes = design_axes(spec)
    assert axes == {"adc.bits": 3, "adc.columns_per_adc": 2, "partitions": 2}
    for point in spec.points():
        choice = np.unravel_index(point.index, tuple(axes.values()))
        assert point.values["adc.bits"] == [2, 3, 6][choice[0]]
        assert point.values["adc.columns_per_adc"] == [1, 2][choice[1]]
        assert point.values["h_partitions"] == ["1-1", "2-1"][choice[2]]


def test_results_best_answers_the_budget_question(exhaustive, capsys):
    out, _ = exhaustive
    rows = pd.read_csv(out / "results.csv")
    for drop in (0.5, 5.0, 60.0):
        within = rows[rows["accuracy"] >= rows["digital_accuracy"] - drop / 100]
        capsys.readouterr()
        status = main(["results", str(out), "--best", "energy", "--accuracy-drop", str(drop)])
        line = capsys.readouterr().out.strip().splitlines()[-1]
        if within.empty:
            assert status == 1 and line.startswith(f"no point is within {drop:g} point(s)")
            continue
        least = within[within["energy_per_inference"] == within["energy_per_inference"].min()]
        best = least.loc[least["accuracy"].idxmax()]  # equal energy (shared ADCs cost time, not energy): the more accurate
        assert status == 0 and f"point {int(best['point'])}:" in line, line
        assert f"{best['energy_per_inference']:.4g} J" in line


def test_best_within_measures_the_drop_from_each_points_digital_accuracy():
    rows = pd.DataFrame({"point": [0, 1, 2, 3], "status": ["ok", "ok", "ok", "error"],
                         "accuracy": [0.90, 0.955, 0.97, math.nan], "digital_accuracy": [0.96, 0.96, 0.97, 0.96],
                         "energy_per_inference": [1e-12, 2e-12, 3e-12, 0.0], "latency": [3e-9, 2e-9, 1e-9, 0.0],
                         "area": [1.0, 1.0, 1.0, 1.0]})
    assert int(best_within(rows, "energy", 1.0)["point"]) == 1  # point 0 is 6 points below its digital accuracy
    assert int(best_within(rows, "energy", 6.0)["point"]) == 0
    assert int(best_within(rows, "latency", 1.0)["point"]) == 2
    assert int(best_within(rows, "area", 1.0)["point"]) == 2  # a tie: the more accurate
    assert best_within(rows.iloc[[0]], "energy", 1.0) is None
    assert describe(rows.iloc[[0]], "energy", 1.0).startswith(
        "no point is within 1 point(s) of its digital accuracy (the closest is 6.00 points below)")
    with pytest.raises(ConfigError, match="the results have no latency column"):
        best_within(rows.drop(columns="latency"), "latency", 1.0)


@pytest.mark.parametrize("argv, message", [
    (["--objectives", "accuracy,power"], "unknown objective 'power'; choose from accuracy, energy, latency, area"),
    (["--objectives", "energy,latency"], "--objectives needs accuracy and at least one of energy"),
    (["--objectives", "accuracy,energy,energy"], "objective 'energy' is given twice"),
    (["--trials", "0"], "--trials must be a positive integer"),
    (["--accuracy-drop", "-1"], "--accuracy-drop must be a number of percentage points >= 0, got -1.0"),
    (["--accuracy-drop", "nan"], "--accuracy-drop must be a number of percentage points >= 0, got nan"),
    (["--one-design"], "nothing to search: the spec has no grid axes (one design)"),
])
def test_bad_search_input_is_one_line_before_anything_runs(tmp_path, capsys, argv, message):
    text = SPEC.split("[sweep]")[0] if argv == ["--one-design"] else SPEC
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    argv = [] if argv == ["--one-design"] else argv
    out = tmp_path / "out"
    assert main(["search", str(spec), "--out", str(out), "--cache", str(tmp_path / "cache"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_bad_results_options_are_one_line(exhaustive, capsys):
    out, _ = exhaustive
    for argv, message in ((["--accuracy-drop", "1"], "--accuracy-drop needs --best energy|latency|area"),
                          (["--best", "energy", "--accuracy-drop", "-0.5"], "--accuracy-drop must be a number")):
        assert main(["results", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_the_architecture_page_search_runs(tmp_path, cache):
    """The search spec of docs/tutorials/architecture.md on its smoke run: every point, then NSGA-II."""
    from pathlib import Path

    from circuitsim.study.smoke import smoke_text

    page = (Path(__file__).parents[1] / "docs" / "tutorials" / "architecture.md").read_text()
    text = page.split("## Design search")[1].split("```toml\n")[1].split("```")[0]
    spec = parse_spec(smoke_text(text))
    assert set(design_axes(spec)) == {"mapping.weight_bits", "dac.kind", "adc.bits", "adc.columns_per_adc",
                                      "partitions"}
    whole = run_search(spec, tmp_path / "all", ("accuracy", "energy", "latency", "area"), cache_dir=cache,
                       log=lambda s: None)
    assert whole.method == "exhaustive" and (whole.results["status"] == "ok").all()
    assert set(whole.front["point"]) == _brute_front(whole.results, ("accuracy", "energy", "latency", "area"))
    pytest.importorskip("optuna")
    some = run_search(spec, tmp_path / "some", ("accuracy", "energy"), trials=6, cache_dir=cache, log=lambda s: None)
    assert some.method == "nsga-ii" and len(some.results) == 6
    assert set(some.front["point"]) == _brute_front(some.results, ("accuracy", "energy"))
