"""The command line's faces (issue 23): every --help shows defaults and choices, and the
table printed after a sweep has the swept columns."""

from __future__ import annotations

import pytest

from circuitsim.cli import _parser, main
from circuitsim.devices import DEVICE_PRESETS

from test_integrity import SPEC


def _help(capsys, *command) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # words, not line breaks


def test_every_help_shows_defaults_and_choices(capsys):
    commands = list(_parser()._subparsers._group_actions[0].choices)
    assert {"sweep", "layer", "characterize", "validate", "plot"} <= set(commands)
    for command in commands:
        text = _help(capsys, command)
        assert text.startswith("usage: circuitsim " + command)
    layer = _help(capsys, "layer")
    assert "(default: sot-mram-amin2022)" in layer and all(p in layer for p in DEVICE_PRESETS)
    assert "{canonical,imac-sim} layer topology (default: canonical)" in layer
    assert "(default: 0.8)" in layer and "(default: None)" not in layer
    sweep = _help(capsys, "sweep")
    assert "--workers N local worker processes computing points (1: this process) (default: 1)" in sweep
    assert "--force replace results of a different spec in DIR (only files circuitsim wrote) --" in sweep
    assert "[wires] preset = ideal | imac-14nm" in sweep and "[adc] kind = ideal | sar" in sweep
    assert "(default: 200)" in _help(capsys, "validate")
    assert "(default: native)" in _help(capsys, "characterize")
    with pytest.raises(SystemExit):
        main(["layer", "--device", "no-such-cell", "--weights", "w", "--inputs", "x", "--partitions", "1/1",
              "--out", "y"])
    assert "invalid choice: 'no-such-cell'" in capsys.readouterr().err


def test_sweep_table_has_the_swept_columns(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC + '"wires.r_col" = [5.0, 6.0]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if "h_partitions" in line).split()
    assert header[:3] == ["r_col", "h_partitions", "v_partitions"] and "accuracy" in header
    assert sum(line.split()[0] in ("5.0", "6.0") for line in out) == 4  # one row per point
