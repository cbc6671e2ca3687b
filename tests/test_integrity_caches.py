"""Damaged caches (issue 10): truncated, empty, bit-flipped and mislabelled tile and network
cache files are reported on one warning line and recomputed, never used; real sweeps in
real processes on real files."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd

from test_integrity import SPEC

TIMING = ["characterization_seconds", "evaluation_seconds"]
#: two networks (seeds) and two partitions: two network files, several tile files
CACHE_SPEC = SPEC + '"network.seed" = [0, 1]\n'


def sweep(tmp_path, out: str, cache):
    spec = tmp_path / "spec.toml"
    spec.write_text(CACHE_SPEC)
    proc = subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(tmp_path / out),
                           "--cache", str(cache)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return pd.read_csv(tmp_path / out / "results.csv").drop(columns=TIMING), proc.stderr


def flip_byte(path, where: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x5A
    path.write_bytes(bytes(data))


def test_damaged_tile_cache_entries_are_recomputed(tmp_path):
    cache = tmp_path / "cache"
    reference, _ = sweep(tmp_path, "first", cache)
    tiles = sorted((cache / "tiles").glob("*.npz"), key=lambda p: p.stat().st_size)
    assert len(tiles) >= 5
    tiles[0].write_bytes(tiles[0].read_bytes()[:100])   # truncated
    tiles[1].write_bytes(b"")                           # empty
    flip_byte(tiles[2])                                 # bit-flipped inside T
    shutil.copy(tiles[4], tiles[3])                     # a valid file under another tile's name
    frame, stderr = sweep(tmp_path, "second", cache)
    warnings = [ln for ln in stderr.splitlines() if ln.startswith("warning: tile cache entry")]
    assert len(warnings) == 4, stderr
    assert sum("content hash" in w for w in warnings) == 1
    pd.testing.assert_frame_equal(frame, reference)   # same accuracy, not the copied tile's
    _, again = sweep(tmp_path, "third", cache)          # the entries were rewritten good
    assert "warning" not in again


def test_damaged_network_cache_entries_are_retrained(tmp_path):
    cache = tmp_path / "cache"
    reference, _ = sweep(tmp_path, "first", cache)
    networks = sorted((cache / "networks").glob("*.npz"))
    assert len(networks) == 2
    shutil.copy(networks[1], networks[0])               # the other seed's network under this name
    flip_byte(networks[1], 0.5)
    frame, stderr = sweep(tmp_path, "second", cache)
    warnings = [ln for ln in stderr.splitlines() if ln.startswith("warning: network cache entry")]
    assert len(warnings) == 2, stderr
    assert any("another network's key" in w for w in warnings)
    pd.testing.assert_frame_equal(frame, reference)
