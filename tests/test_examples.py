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
