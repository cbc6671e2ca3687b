"""Results you can trust (issue 10): environment failures, one writer per folder, --force,
damaged point files, --retry-failed, incremental tables.

Everything runs real ``circuitsim sweep`` processes on real folders: ngspice taken off
PATH, a cache that is a regular file, a file-size limit standing in for a full disk,
two sweeps at once, ``kill -9``, truncated and foreign point files.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest


SPEC = """
title = "integrity"
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
layers = [64, 16, 10]
epochs = 3
[wires]
r_row = 5.0
r_col = 5.0
[sweep]
partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [2, 1]}]
"""
#: four points whose tiles go through ngspice (``ngspice -b``)
NGSPICE_SPEC = SPEC.replace("[sweep]", '[circuit]\nengine = "ngspice"\nbackend = "subprocess"\n[sweep]') + \
    '"wires.r_col" = [5.0, 6.0]\n'
#: 6 points through ngspice: long enough to be caught running
SLOW_SPEC = SPEC.replace("[sweep]", '[circuit]\nengine = "ngspice"\n[sweep]') + \
    '"wires.r_row" = [1.0, 2.0, 3.0]\n'


def sweep(spec: Path, out: Path, cache: Path, *extra, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(out),
                           "--cache", str(cache), *extra], capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def point_files(out: Path) -> list[Path]:
    return sorted((out / "points").glob("*.json")) if (out / "points").is_dir() else []


@pytest.fixture
def spec_file(tmp_path):
    def write(text=SPEC, name="spec.toml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


# -- 1. environment failures are never results ---------------------------------------------


@pytest.mark.ngspice
def test_ngspice_off_path_stops_and_stores_nothing(tmp_path, spec_file):
    spec, out, cache = spec_file(NGSPICE_SPEC), tmp_path / "out", tmp_path / "cache"
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    line = one_error_line(sweep(spec, out, cache, env=env))
    assert "ngspice" in line and "not found" in line
    assert point_files(out) == []
    again = sweep(spec, out, cache)  # ngspice back: every point is computed
    assert again.returncode == 0, again.stderr
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 4 and (frame["status"] == "ok").all()


def test_cache_that_is_a_file_stops_and_stores_nothing(tmp_path, spec_file):
    spec, out = spec_file(), tmp_path / "out"
    (tmp_path / "cache").write_text("not a folder")
    line = one_error_line(sweep(spec, out, tmp_path / "cache"))
    assert "cache" in line
    assert point_files(out) == []
    again = sweep(spec, out, tmp_path / "cache2")
    assert again.returncode == 0, again.stderr
    assert len(point_files(out)) == 2


def _small_files():
    """Stand-in for a full disk: no file may grow past 600 bytes (EFBIG, like ENOSPC an OSError)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))


def test_full_disk_stops_and_stores_nothing(tmp_path, spec_file):
    spec, out, cache = spec_file(), tmp_path / "out", tmp_path / "cache"
    assert sweep(spec, tmp_path / "warm", cache).returncode == 0  # network and tiles cached
    line = one_error_line(sweep(spec, out, cache, preexec_fn=_small_files))
    assert "File too large" in line
    assert point_files(out) == []
    assert not list(out.rglob(".part-*"))
    again = sweep(spec, out, cache)
    assert again.returncode == 0, again.stderr
    assert len(point_files(out)) == 2


def test_unwritable_out_is_one_line(tmp_path, spec_file):
    """Root writes everywhere, so unwritable folders are /proc (not writable even by root)
    and a path under a regular file."""
    spec, cache = spec_file(), tmp_path / "cache"
    assert "cannot write" in one_error_line(sweep(spec, Path("/proc/circuitsim-results"), cache))
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_error_line(sweep(spec, tmp_path / "file" / "out", cache))
    assert "not a folder" in one_error_line(sweep(spec, tmp_path / "file", cache))
    assert "--out is empty" in one_error_line(sweep(spec, "", cache, cwd=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "spec.toml"]  # nothing computed or written


def test_configuration_failure_is_recorded_and_retried(tmp_path, spec_file):
    spec = spec_file(SPEC + '"wires.r_row" = [5.0, 1e13]\n')  # 1e13 ohm: out of the physical range
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = sweep(spec, out, cache)
    assert first.returncode == 1  # points failed
    frame = pd.read_csv(out / "results.csv")
    failed = frame[frame["status"] == "error"]
    assert len(frame) == 4 and len(failed) == 2 and failed["error"].str.contains("r_row = 1e\\+13").all()
    stamps = {p: p.stat().st_mtime_ns for p in point_files(out)}
    sweep(spec, out, cache)  # failures are results: nothing is computed again
    assert {p: p.stat().st_mtime_ns for p in point_files(out)} == stamps
    retried = sweep(spec, out, cache, "--retry-failed")
    assert re.findall(r"^\[\d+/4\]", retried.stdout, flags=re.M) == ["[3/4]", "[4/4]"]
    assert json.loads((out / "provenance.json").read_text())["computed"] == 2


# -- 2. one writer per results folder -------------------------------------------------------


def _start(spec: Path, out: Path, cache: Path, log: Path):
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(out),
                                 "--cache", str(cache)], stdout=fh, stderr=subprocess.STDOUT)


def _wait_for(condition, proc, what: str, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None and time.monotonic() < deadline, f"the first sweep ended before {what}"
        time.sleep(0.01)


@pytest.mark.ngspice
def test_second_writer_is_refused_and_kill_9_lock_is_recovered(tmp_path, spec_file):
    spec, other = spec_file(SLOW_SPEC), spec_file(SPEC, "other.toml")
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = _start(spec, out, cache, tmp_path / "first.log")
    try:
        _wait_for(lambda: (out / "provenance.json").is_file(), first, "it started")
        for args in ((spec,), (other, "--force")):
            line = one_error_line(sweep(args[0], out, cache, *args[1:]))
            assert "being written by another circuitsim run" in line and f"pid {first.pid}" in line
        assert (out / "spec.toml").read_text() == SLOW_SPEC
        _wait_for(lambda: len(point_files(out)) >= 1, first, "a point")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    done = len(point_files(out))
    assert 0 < done < 6
    again = sweep(spec, out, cache)  # the lock died with its holder
    assert again.returncode == 0, again.stderr
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 6 and (frame["status"] == "ok").all()
    assert len(re.findall(r"^\[\d+/6\]", again.stdout, flags=re.M)) == 6 - done


def test_force_removes_only_circuitsims_files(tmp_path, spec_file):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert sweep(spec_file(), out, cache).returncode == 0
    old = point_files(out)
    (out / "points" / "notes.txt").write_text("mine")
    (out / "analysis.ipynb").write_text("{}")
    other = spec_file(SPEC + '"wires.r_col" = [1.0, 2.0, 3.0]\n', "other.toml")
    assert "different spec" in one_error_line(sweep(other, out, cache))
    forced = sweep(other, out, cache, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "kept 1 file(s)" in forced.stderr
    assert (out / "points" / "notes.txt").read_text() == "mine" and (out / "analysis.ipynb").is_file()
    assert not any(p.exists() for p in old if p not in point_files(out)) and len(point_files(out)) == 6
    assert len(pd.read_csv(out / "results.csv")) == 6
    assert (out / "spec.toml").read_text() == other.read_text()


# -- 3. damaged point files -----------------------------------------------------------------


def test_damaged_point_files_are_recomputed(tmp_path, spec_file):
    spec = spec_file(SPEC + '"wires.r_col" = [1.0, 2.0]\n')
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert sweep(spec, out, cache).returncode == 0
    reference = pd.read_csv(out / "results.csv")
    files = point_files(out)
    rows = {f: json.loads(f.read_text()) for f in files}
    by_point = {row["point"]: f for f, row in rows.items()}
    by_point[0].write_text(by_point[0].read_text()[:40])               # truncated
    by_point[1].write_text(json.dumps({"hello": "world"}))              # unrelated JSON
    by_point[2].write_text(by_point[3].read_text())                     # another point's row
    by_point[3].write_text("")                                          # empty
    again = sweep(spec, out, cache)
    assert again.returncode == 0, again.stderr
    warnings = [ln for ln in again.stderr.splitlines() if ln.startswith("warning: point file")]
    assert len(warnings) == 4 and all("computing the point again" in w for w in warnings)
    frame = pd.read_csv(out / "results.csv")
    assert frame["accuracy"].notna().all() and list(frame["point"]) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(frame.drop(columns=["characterization_seconds", "evaluation_seconds"]),
                                  reference.drop(columns=["characterization_seconds", "evaluation_seconds"]))
    summary = subprocess.run([sys.executable, "-m", "circuitsim.cli", "results", str(out)],
                             capture_output=True, text=True)
    assert summary.returncode == 0 and "4/4 points done, complete" in summary.stdout


def test_complete_folder_is_not_rewritten(tmp_path, spec_file):
    """What makes a read-only finished folder usable (root ignores permissions, so the
    test checks that a second run writes nothing but reads the lock)."""
    from circuitsim.study.lock import LOCK_NAME

    spec, out, cache = spec_file(), tmp_path / "out", tmp_path / "cache"
    assert sweep(spec, out, cache).returncode == 0
    files = [p for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    again = sweep(spec, out, cache)
    assert again.returncode == 0, again.stderr
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == before


# -- 5. results tables cost linear time -----------------------------------------------------


def test_tables_are_not_rewritten_after_every_point(tmp_path):
    from circuitsim.study.sweep import _Tables

    tables = _Tables(tmp_path, {"points": 600})
    rows, rewrites, last = {}, 0, None
    for k in range(600):
        rows[k] = {"point": k, "h_partitions": "1-1", "accuracy": 0.5, "status": "ok"}
        tables.computed += 1
        tables.maybe_write(rows)
        stat = (tmp_path / "results.csv").stat()
        rewrites += (stat.st_ino, stat.st_mtime_ns, stat.st_size) != last
        last = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    tables.write(rows)
    assert 1 <= rewrites < 100  # one rewrite per point would be 600
    assert len(pd.read_csv(tmp_path / "results.csv")) == 600
    assert json.loads((tmp_path / "provenance.json").read_text())["finished_points"] == 600
