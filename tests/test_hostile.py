"""Results you can trust, round two (issue 22): what a hostile or careless user still broke.

Output paths that are devices, FIFOs or symbolic links; damaged files of the caches and of a
results folder; a results folder changed under a running sweep; limits that were no limits.
Every test runs the real command line on real files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_integrity import one_error_line


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


# -- output paths: only regular files, exactly the path printed ---------------------------------


def _device(path: Path) -> Path:
    """A character device node like /dev/full (major 1, minor 7), made in the test's folder."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    return path


def _g(tmp_path: Path) -> str:
    np.save(tmp_path / "G.npy", np.full((4, 3), 1e-4))
    return str(tmp_path / "G.npy")


def test_characterize_never_replaces_a_device(tmp_path):
    full = _device(tmp_path / "full")
    line = one_error_line(cli("characterize", "--conductances", _g(tmp_path), "--out", str(full)))
    assert "character device" in line and "regular file" in line
    assert stat.S_ISCHR(os.lstat(full).st_mode)  # still the device node


def test_characterize_never_replaces_a_fifo_or_a_links_target(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "FIFO" in one_error_line(cli("characterize", "--conductances", _g(tmp_path), "--out", str(fifo)))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target, link = tmp_path / "precious.txt", tmp_path / "T.npz"
    target.write_text("keep me")
    link.symlink_to(target)
    assert "symbolic link" in one_error_line(cli("characterize", "--conductances", _g(tmp_path),
                                                 "--out", str(link)))
    assert link.is_symlink() and target.read_text() == "keep me"


def test_layer_writes_exactly_the_path_it_prints(tmp_path):
    np.save(tmp_path / "W.npy", np.full((4, 2), 0.5))
    np.save(tmp_path / "X.npy", np.full((3, 4), 0.1))
    out = tmp_path / "Y"  # no .npz suffix: np.savez(path) would write Y.npz
    proc = cli("layer", "--weights", str(tmp_path / "W.npy"), "--inputs", str(tmp_path / "X.npy"),
               "--partitions", "1/1", "--out", str(out), "--deck", str(tmp_path / "deck"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"-> {out}")
    assert out.is_file() and not (tmp_path / "Y.npz").exists()
    with np.load(out) as data:
        assert data["outputs"].shape == (3, 2)
    assert (tmp_path / "deck").read_text().rstrip().endswith(".end")
    full = _device(tmp_path / "full")
    line = one_error_line(cli("layer", "--weights", str(tmp_path / "W.npy"), "--inputs", str(tmp_path / "X.npy"),
                              "--partitions", "1/1", "--out", str(full)))
    assert "character device" in line
    assert stat.S_ISCHR(os.lstat(full).st_mode) and not (tmp_path / "full.npz").exists()


def test_export_onnx_never_replaces_a_device(tmp_path):
    pytest.importorskip("onnx")
    from circuitsim.network.layers import Dense
    from circuitsim.network.network import Network

    weights = tmp_path / "net.npz"
    Network([Dense(np.full((4, 2), 0.5), np.zeros(2))], (4,)).save(weights)
    full = _device(tmp_path / "full")
    assert "character device" in one_error_line(cli("export-onnx", str(weights), "--out", str(full)))
    assert stat.S_ISCHR(os.lstat(full).st_mode)
    proc = cli("export-onnx", str(weights), "--out", str(tmp_path / "model"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model").is_file() and not (tmp_path / "model.onnx").exists()
