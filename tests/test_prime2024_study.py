"""The PRIME study script (examples/prime2024.py, issue 28) on a reduced size that keeps every axis
of its sweep: its tables, and what the sweep's points must satisfy between each other."""

from __future__ import annotations

import runpy
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from circuitsim.network import datasets
from circuitsim.study import parse_spec

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "prime2024.py"
FASHION = any(any(d.glob("train-images-idx3-ubyte*")) for d in datasets.FASHION_MNIST_DIRS if d.is_dir())
REDUCED = ["--train-images", "500", "--test-images", "60", "--epochs", "10", "--steps", "6", "--side", "8",
           "--hidden", "32"]
"""The test's run: 8 × 8 images, a 64-32-10 network trained on 500 images, 60 test images, 6 steps."""


def _script() -> SimpleNamespace:
    """The study script's functions and constants (it is not a package module)."""
    return SimpleNamespace(**runpy.run_path(str(SCRIPT), run_name="prime2024"))


def test_reduced_spec_keeps_every_axis():
    study = _script()
    text = study.SPEC.read_text()
    full, small = parse_spec(text), parse_spec(study.reduced(text, {"limit": 40, "time_steps": 6}, side=8, hidden=32))
    assert small.grid == full.grid and small.partitions == full.partitions and small.n_points == full.n_points == 36
    assert small.base["dataset"] | {"limit": 1000, "side": 14} == full.base["dataset"]
    assert small.base["network"]["layers"] == [64, 32, 10] and small.base["network"]["time_steps"] == 6
    assert small.base["network"]["epochs"] == full.base["network"]["epochs"]  # None: kept
    with pytest.raises(SystemExit, match="no seed line"):
        study.reduced("[network]\nlayers = [4, 2]\n", {"seed": 1})


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    if not FASHION:
        pytest.skip("Fashion-MNIST is not installed (scripts/install-datasets.sh)")
    out = tmp_path_factory.mktemp("prime2024")
    text = _script().main([*REDUCED, "--out", str(out), "--cache", str(out / "cache")])
    from circuitsim.study import read_results

    frame, _ = read_results(out / "prime2024")
    return out, text, frame


def test_study_points_and_tables(reduced):
    out, text, frame = reduced
    assert len(frame) == 36 and (frame["status"] == "ok").all() and set(frame["name"]) == {"mnist", "fashion-mnist"}
    assert (frame["n_images"] == 60).all() and (frame["time_steps"] == 6).all()
    key = ["name", "early_stop_margin"]
    by = frame.set_index(["training", "keep", *key]).sort_index()
    # "mask" keeping every pair is the unpruned random network: the same cells, spikes and reads
    for column in ("accuracy", "digital_accuracy", "steps_mean", "energy_per_inference"):
        assert (by.loc[("mask", 1.0), column] == by.loc[("none", 1.0), column]).all(), column
    # no early stop: every image runs every step; with it, the saving is the steps not run
    off, on = frame[frame["early_stop_margin"] == 0], frame[frame["early_stop_margin"] > 0]
    assert (off["steps_mean"] == 6).all() and (off["computation_saved"] == 0).all()
    assert (on["computation_saved"] - (1 - on["steps_mean"] / 6)).abs().max() < 1e-12
    assert (on["steps_mean"] <= 6).all() and (on["computation_saved"] > 0).any()
    # half the pairs open: half the cells conduct, the read pulses draw less energy
    for name in ("mnist", "fashion-mnist"):
        unpruned = by.loc[("none", 1.0, name, 0.0), "energy_per_inference"]
        for variant in (("none", 0.5), ("mask", 0.5), ("full", 0.5)):
            assert by.loc[(*variant, name, 0.0), "connected"] == 0.5
            assert by.loc[(*variant, name, 0.0), "energy_per_inference"] < 0.8 * unpruned
        # learning the mask (or the weights) beats the random network it starts from
        digital = by.xs((name, 0.0), level=key)["digital_accuracy"]
        assert digital[("mask", 0.5)] > digital[("none", 0.5)] + 0.05
        assert digital[("full", 1.0)] > digital[("none", 1.0)] + 0.1
    # the tables quote the frame
    r = by.loc[("mask", 0.5, "mnist", 1.0)]
    assert (f"| MNIST sample | random, pruned to the mask (PRIME) | 50.0 % | margin 1 | {100 * r.digital_accuracy:.1f} % "
            f"| {100 * r.accuracy:.1f} % | {r.steps_mean:.2f} | {100 * r.computation_saved:.1f} % |") in text
    assert "| PRIME: N-MNIST, conv SNN, 40 nm 256 Kb macro | softmax confidence > 0.8 |" in text
    assert "(60 test images)" in text
    assert (out / "prime2024.md").read_text().strip() == text.strip()


def test_docs_quote_the_study_and_its_command():
    study = _script()
    readme, tutorial = (ROOT / "README.md").read_text(), (ROOT / "docs" / "tutorials" / "spiking.md").read_text()
    header = "| pruned random SNN | early stop | accuracy (software) | steps used | computation saved |"
    for text in (readme, tutorial):
        assert "python examples/prime2024.py" in text and header in text
    assert "| data set | network | pairs connected | early stop | software (spikes) |" in tutorial
    # the quoted study is the shipped spec's full size
    spec = tomllib.loads(study.SPEC.read_text())
    assert spec["dataset"]["limit"] == 1000 and spec["network"]["time_steps"] == 10
    assert "1,000 test images" in tutorial
    # the README's rows are the tutorial's: one run quoted twice
    rows = [line for line in readme.splitlines() if line.startswith("| here: ")]
    assert len(rows) == 6 and all(row in tutorial for row in rows)
