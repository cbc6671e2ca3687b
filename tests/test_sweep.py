"""Sweeps from a TOML spec: results, resumption, and bad specs."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from circuitsim.errors import ConfigError
from circuitsim.study.spec import parse_spec
from circuitsim.study.sweep import run_sweep

SPEC = """
title = "small"
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
layers = [64, 16, 10]
epochs = 5
[device]
preset = "sot-mram-amin2022"
[wires]
r_row = 20.0
r_col = 20.0
[sweep]
partitions = [{h = [1, 1], v = [1, 1]}, {h = [4, 2], v = [2, 2]}, {auto = 16}]
"wires.r_col" = [0.0, 20.0]
"""


def test_sweep_writes_results_and_resumes(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    frame = run_sweep(parse_spec(SPEC), out, cache_dir=cache, log=lambda line: None)
    assert len(frame) == 6
    csv = pd.read_csv(out / "results.csv", dtype={"h_partitions": str, "v_partitions": str})
    for column in ("h_partitions", "v_partitions", "r_col", "accuracy", "digital_accuracy", "n_tiles",
                   "characterization_seconds", "evaluation_seconds", "status"):
        assert column in csv
    assert set(csv["h_partitions"]) == {"1-1", "4-2", "5-2"}
    assert set(csv["v_partitions"]) == {"1-1", "2-2", "1-1"}
    assert (csv["status"] == "ok").all()
    assert csv["accuracy"].between(0, 1).all()
    assert json.loads((out / "provenance.json").read_text())["complete"] is True
    assert (out / "spec.toml").read_text() == SPEC
    # a second run computes nothing new
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    again = run_sweep(parse_spec(SPEC), out, cache_dir=cache, log=lambda line: None)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == stamps
    pd.testing.assert_frame_equal(again, frame)


def test_different_spec_needs_force(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    run_sweep(parse_spec(SPEC), out, cache_dir=cache, log=lambda line: None)
    other = SPEC.replace('"wires.r_col" = [0.0, 20.0]', "")
    with pytest.raises(ConfigError, match="different spec"):
        run_sweep(parse_spec(other), out, cache_dir=cache)
    frame = run_sweep(parse_spec(other), out, cache_dir=cache, force=True, log=lambda line: None)
    assert len(frame) == 3 and len(list((out / "points").iterdir())) == 3


@pytest.mark.parametrize("edit, message", [
    (("[wires]", "[wires]\nr_raw = 1.0"), "unknown key 'r_raw' in \\[wires\\]"),
    (("[dataset]", "colour = 1\n[dataset]"), "unknown key 'colour'"),
    (('"wires.r_col"', '"wires.r_cool"'), "unknown sweep key"),
    (("{auto = 16}", "{h = [66, 1], v = [1, 1]}"), "only 65 rows"),
    (("{auto = 16}", "{h = [1, 1], v = [1, 11]}"), "only 10 outputs"),
    (("{auto = 16}", "{h = [0, 1], v = [1, 1]}"), "positive integers"),
    (("{auto = 16}", "{h = [1, -2], v = [1, 1]}"), "positive integers"),
    (("{auto = 16}", "{h = [1], v = [1, 1]}"), "one value per crossbar layer \\(2\\)"),
    (("r_row = 20.0", "r_row = -20.0"), "wires.r_row must be a finite number >= 0"),
    (('name = "digits"', 'name = "cifar"'), "unknown dataset"),
    (("epochs = 5", "epochs = 0"), "epochs"),
])
def test_bad_specs(edit, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec(SPEC.replace(*edit))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("edit, message", [
    (("[wires]", "[wires]\nr_raw = 1.0"), "unknown key"),
    (("{auto = 16}", "{h = [66, 1], v = [1, 1]}"), "only 65 rows"),
    (('name = "digits"', 'name = "idx"\npath = "/nonexistent/mnist"'), "nonexistent"),
])
def test_bad_spec_from_cli_writes_nothing(tmp_path, edit, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.replace(*edit))
    out = tmp_path / "out"
    proc = run_cli("sweep", str(spec), "--out", str(out), "--cache", str(tmp_path / "cache"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_spec_file(tmp_path):
    proc = run_cli("sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr == f"error: spec file {tmp_path / 'none.toml'} does not exist\n"
