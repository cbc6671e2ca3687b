"""Every shipped example spec parses, and every point of it builds its circuit configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitsim.study.spec import build_circuit_config, load_spec

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_spec_parses_and_builds_every_circuit(path):
    spec = load_spec(path)
    points = spec.points()
    assert points
    for point in points:
        build_circuit_config(point.config)


# -- every example runs end to end, on its smoke run (issue 22) -----------------------------------

#: examples whose smoke run still takes long on two cores: ngspice transients of every tile,
#: IMAC-Sim's loaded difference amplifiers, whole-circuit decks
SLOW = {"readout", "imacsim", "validate", "validate_variation", "lenet5", "pruning",
        "nonlinear_cells", "nonlinear_1t1r",  # every tile of nonlinear cells solved for every image
        "nonlinear_lenet5", "nonlinear_lenet5_1t1r"}
#: examples whose study script's test runs them end to end, every axis kept, on a reduced network
#: (the smoke run's full-size tiles would draw a read-noise law per network for a minute)
STUDY_TESTS = {"prime2024": "tests/test_prime2024_study.py"}


def _command(path: Path) -> str:
    """``validate`` for the examples the README runs with ``circuitsim validate``, ``search`` for those
    it runs with ``circuitsim search``, else ``sweep``."""
    text = path.read_text()
    if "circuitsim search" in text:
        return "search"
    return "validate" if "circuitsim validate" in text and "circuitsim sweep" not in text else "sweep"


SEARCH_TRIALS = 4
"""Designs the smoke run of a search example evaluates (NSGA-II)."""


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for every example: most share the network and the tiles of amin2022.toml."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.ngspice
@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p
                                  for p in EXAMPLES if p.stem not in STUDY_TESTS],
                         ids=[p.stem for p in EXAMPLES if p.stem not in STUDY_TESTS])
def test_example_runs_end_to_end(path, tmp_path, shared_cache):
    import subprocess
    import sys

    import pandas as pd

    from circuitsim.study.smoke import smoke_text
    from circuitsim.study.spec import parse_spec

    spec = parse_spec(smoke_text(path.read_text()))
    full = load_spec(path)
    assert set(spec.grid) == set(full.grid) and spec.seeds == (min(full.seeds, 2) if full.seeds else None)
    command = _command(path)
    extra = ["--images", "1", "--points", str(spec.n_points - 1), "--scope", "layer", "--neuron",
             "behavioural"] if command == "validate" else []
    extra += ["--trials", str(SEARCH_TRIALS), "--objectives", "accuracy,energy,latency"] if command == "search" else []
    proc = subprocess.run([sys.executable, "-m", "circuitsim.cli", command, str(path), "--smoke", "--out",
                           str(tmp_path / "out"), "--cache", str(shared_cache), *extra],
                          capture_output=True, text=True, timeout=900, cwd=path.parent.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = tmp_path / "out" / ("validation.csv" if command == "validate" else "results.csv")
    frame = pd.read_csv(table)
    assert (frame["status"] == "ok").all()
    rows = {"validate": 1, "search": SEARCH_TRIALS}.get(command, spec.n_points)  # Monte Carlo: one row per point
    assert len(frame) == rows
    if command == "search":  # its front, a subset of the designs evaluated, and its figure
        front = pd.read_csv(tmp_path / "out" / "pareto.csv")
        assert 1 <= len(front) <= rows and set(front["point"]) <= set(frame["point"])
        assert (tmp_path / "out" / "pareto.png").is_file()
