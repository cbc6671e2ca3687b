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


# -- damaged files: named, recomputed, never a traceback ----------------------------------------


def _npy(shape_text: str, payload: bytes = b"\0" * 16) -> bytes:
    """An .npy file whose header declares ``shape_text`` whatever the data it holds."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def _run_sweep(tmp_path: Path, out: str, cache: str = "cache", *extra):
    from test_integrity import SPEC

    spec = tmp_path / "spec.toml"
    if not spec.exists():
        spec.write_text(SPEC)
    return cli("sweep", str(spec), "--out", str(tmp_path / out), "--cache", str(tmp_path / cache), *extra)


def test_tile_cache_entry_with_a_huge_header_is_named_and_recomputed(tmp_path):
    import zipfile

    assert _run_sweep(tmp_path, "warm").returncode == 0
    entries = sorted((tmp_path / "cache" / "tiles").glob("*.npz"))
    assert entries
    victim = entries[0]
    with zipfile.ZipFile(victim) as archive:
        metadata = archive.read("metadata.npy")
    with zipfile.ZipFile(victim, "w") as archive:  # T declares 10¹² values: 8 TB if numpy believed it
        archive.writestr("T.npy", _npy("(1000000, 1000000)"))
        archive.writestr("metadata.npy", metadata)
    proc = _run_sweep(tmp_path, "out")
    assert proc.returncode == 0, proc.stderr
    assert "out of memory" not in proc.stderr and "Traceback" not in proc.stderr
    assert f"tile cache entry {victim} is damaged" in proc.stderr
    from circuitsim.tile.extract import Characterization

    assert Characterization.load(victim).T.ndim == 2  # written again, whole


def test_a_folder_where_a_cache_file_goes_is_named_and_left_alone(tmp_path):
    assert _run_sweep(tmp_path, "warm").returncode == 0
    victim = sorted((tmp_path / "cache" / "tiles").glob("*.npz"))[0]
    victim.unlink()
    victim.mkdir()
    (victim / "mine.txt").write_text("a user's file")
    proc = _run_sweep(tmp_path, "out")
    assert proc.returncode == 0, proc.stderr
    assert f"tile cache entry {victim} is not a regular file" in proc.stderr
    assert ".part" not in proc.stderr and (victim / "mine.txt").read_text() == "a user's file"


def test_deeply_nested_point_file_is_damaged_not_a_traceback(tmp_path):
    assert _run_sweep(tmp_path, "out").returncode == 0
    victim = sorted((tmp_path / "out" / "points").glob("*.json"))[0]
    victim.write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "out" / "provenance.json").write_text("{" * 100_000)
    proc = _run_sweep(tmp_path, "out")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"point file {victim} is damaged (unreadable (RecursionError))" in proc.stderr
    summary = cli("results", str(tmp_path / "out"))
    assert summary.returncode == 0 and "2/2 points done, complete" in summary.stdout, summary.stderr


def test_damaged_tables_are_one_line_and_a_rerun_repairs_them(tmp_path):
    import pandas as pd

    out = tmp_path / "out"
    assert _run_sweep(tmp_path, "out").returncode == 0
    (out / "results.parquet").write_bytes(b"PAR1" + os.urandom(300))
    (out / "results.csv").write_bytes(b"\xff\xfe" + os.urandom(300))
    summary = cli("results", str(out))
    assert summary.returncode == 0 and "Traceback" not in summary.stderr, summary.stderr
    assert "results.parquet is damaged" in summary.stderr and "2/2 points done" in summary.stdout
    assert "is damaged" in one_error_line(cli("plot", str(out)))
    proc = _run_sweep(tmp_path, "out")  # the finished folder's tables are written again
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out / "results.csv")) == 2 and len(pd.read_parquet(out / "results.parquet")) == 2
    assert cli("plot", str(out)).returncode == 0


def test_npy_with_a_huge_header_is_one_line_not_out_of_memory(tmp_path):
    (tmp_path / "G.npy").write_bytes(_npy("(1000000, 1000000)"))
    line = one_error_line(cli("characterize", "--conductances", str(tmp_path / "G.npy"), "--out",
                              str(tmp_path / "T.npz")))
    assert "header declares 1000000000000 values" in line and "out of memory" not in line


# -- the results folder's integrity ---------------------------------------------------------------


@pytest.mark.ngspice
def test_deleting_the_lock_file_mid_run_lets_no_second_writer_in(tmp_path):
    from test_integrity import SLOW_SPEC, _start, _wait_for, sweep

    spec, out, cache = tmp_path / "spec.toml", tmp_path / "out", tmp_path / "cache"
    spec.write_text(SLOW_SPEC)
    first = _start(spec, out, cache, tmp_path / "first.log")
    try:
        _wait_for(lambda: (out / "provenance.json").is_file(), first, "it started")
        (out / ".circuitsim.lock").unlink()  # a careless clean-up while the sweep runs
        line = one_error_line(sweep(spec, out, cache))
        assert "being written by another circuitsim run" in line
    finally:
        first.kill()
        first.wait(timeout=10)


def test_points_folder_that_is_a_link_is_refused_and_force_deletes_nothing_through_it(tmp_path):
    from test_integrity import SPEC

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    assert _run_sweep(tmp_path, "out").returncode == 0
    elsewhere.mkdir()
    keep = elsewhere / "0123456789abcdef.json"  # named like a point file: --force would delete it
    keep.write_text('{"mine": true}')
    for file in (out / "points").iterdir():
        file.unlink()
    (out / "points").rmdir()
    (out / "points").symlink_to(elsewhere)
    assert "symbolic link" in one_error_line(_run_sweep(tmp_path, "out"))
    other = tmp_path / "other.toml"
    other.write_text(SPEC + '"wires.r_col" = [1.0, 2.0]\n')
    line = one_error_line(cli("sweep", str(other), "--out", str(out), "--cache", str(tmp_path / "cache"), "--force"))
    assert "symbolic link" in line
    assert sorted(p.name for p in elsewhere.iterdir()) == [keep.name] and keep.read_text() == '{"mine": true}'


# -- wrong words ------------------------------------------------------------------------------


def test_a_scheduler_address_that_is_no_dask_scheduler_is_one_line(tmp_path):
    """A peer answering garbage (here: a length prefix of exabytes) was "out of memory" and a
    TimeoutError traceback at exit."""
    import socket
    import threading

    from test_integrity import SPEC

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def answer():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                conn.sendall(b"\xff" * 64)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        (tmp_path / "spec.toml").write_text(SPEC)
        proc = cli("sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--cache",
                   str(tmp_path / "cache"), "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    line = one_error_line(proc)
    assert "Dask scheduler" in line and "out of memory" not in line
    assert not (tmp_path / "out").exists()


@pytest.mark.ngspice
def test_a_dask_scheduler_killed_mid_sweep_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    import signal
    import time

    from test_integrity import SLOW_SPEC, point_files
    from test_parallel import _free_port

    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)]
    procs.append(subprocess.Popen([dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                   "--no-dashboard", "--local-directory", str(tmp_path / "w"), "--death-timeout",
                                   "5"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path))
    try:
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        (tmp_path / "spec.toml").write_text(SLOW_SPEC)
        out = tmp_path / "out"
        sweep = subprocess.Popen([sys.executable, "-m", "circuitsim.cli", "sweep", str(tmp_path / "spec.toml"),
                                  "--out", str(out), "--cache", str(tmp_path / "cache"), "--scheduler", address],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while not point_files(out) and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)  # the scheduler dies mid-sweep
        _, stderr = sweep.communicate(timeout=120)
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()
        log.close()
    if sweep.returncode == 0:
        pytest.skip("the sweep finished before the scheduler was killed")
    assert sweep.returncode == 2 and "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: lost the Dask scheduler"), stderr


# -- limits that are limits -------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ("[sweep]\nseeds = 1000000000", "runs (points × seeds), more than 1000000 even with --yes"),
    ("[sweep]\nseeds = 20000", "runs (points × seeds) (more than 10000); pass --yes"),
    ("[network]\nepochs = 1000000000", "network.epochs = 1000000000 is more than 10000"),
])
def test_limits_are_limits(tmp_path, change, message):
    from test_integrity import SPEC

    section, _, line = change.partition("\n")
    (tmp_path / "spec.toml").write_text(SPEC.replace("epochs = 3\n", "") .replace(section, f"{section}\n{line}"))
    proc = cli("sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c"))
    assert message in one_error_line(proc)
    assert not (tmp_path / "out").exists()


def test_memory_limit_nan_is_refused(tmp_path):
    for value in ("nan", "inf", "-1", "0"):
        line = one_error_line(cli("characterize", "--conductances", _g(tmp_path), "--memory-limit", value,
                                  "--out", str(tmp_path / "T.npz")))
        assert "--memory-limit must be a positive number of GiB" in line
    assert not (tmp_path / "T.npz").exists()


def test_a_model_needing_terabytes_for_one_image_is_a_model_problem(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from test_integrity import SPEC

    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1_000_000] * 4, name="padded")
    graph = helper.make_graph([conv, helper.make_node("Flatten", ["c"], ["y"])], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "pad.onnx"))
    spec = SPEC.replace("layers = [64, 16, 10]\nepochs = 3", f'onnx = "{tmp_path / "pad.onnx"}"').replace(
        "partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [2, 1]}]", "partitions = [{auto = 64}]")
    (tmp_path / "spec.toml").write_text(spec)
    line = one_error_line(cli("sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--cache",
                              str(tmp_path / "c")))
    assert "needs more memory than the machine has for one image" in line and "Conv" in line


# -- the CNN training cache ---------------------------------------------------------------------


def _tiny_cnn():
    from circuitsim.network.cnn_training import CNNConfig
    from circuitsim.network.datasets import load_dataset

    data = load_dataset("digits", side=8, train_limit=120, limit=20)
    return data, CNNConfig(channels=(2,), kernel=3, padding=1, dense=(8,), epochs=1)


def test_cnn_cache_checks_its_stored_key(tmp_path, caplog):
    from circuitsim.network.cnn_training import load_or_train_cnn
    from circuitsim.network.layers import Dense
    from circuitsim.network.network import Network

    data, config = _tiny_cnn()
    net = load_or_train_cnn(data, config, tmp_path)
    (entry,) = tmp_path.glob("cnn-*.npz")
    Network([Dense(np.zeros((64, 10)))], (1, 8, 8)).save(entry)  # a readable network, not this one
    with caplog.at_level("WARNING", logger="circuitsim"):
        again = load_or_train_cnn(data, config, tmp_path)
    assert f"network cache entry {entry} is damaged (it holds no key)" in caplog.text
    assert again.content_hash() == net.content_hash()
    caplog.clear()
    with caplog.at_level("WARNING", logger="circuitsim"):
        assert load_or_train_cnn(data, config, tmp_path).content_hash() == net.content_hash()
    assert caplog.text == ""  # rewritten with its key: used as is


def test_cnn_cache_that_cannot_be_written_is_an_environment_failure(tmp_path):
    from circuitsim.errors import EnvironmentFailure
    from circuitsim.network.cnn_training import load_or_train_cnn

    data, config = _tiny_cnn()
    (tmp_path / "networks").write_text("a file where the cache folder goes")
    with pytest.raises(EnvironmentFailure, match="cannot create the network cache"):
        load_or_train_cnn(data, config, tmp_path / "networks")


def test_a_folder_where_a_network_cache_file_goes_is_named_and_left_alone(tmp_path, caplog):
    from circuitsim.network.datasets import load_dataset
    from circuitsim.network.mlp import MLPConfig, load_or_train

    data = load_dataset("digits", side=8, train_limit=100, limit=20)
    config = MLPConfig(layers=(64, 8, 10), epochs=1)
    net = load_or_train(data, config, tmp_path)
    (entry,) = tmp_path.glob("mlp-*.npz")
    entry.unlink()
    entry.mkdir()
    with caplog.at_level("WARNING", logger="circuitsim"):
        again = load_or_train(data, config, tmp_path)
    assert f"network cache entry {entry} is not a regular file" in caplog.text
    assert entry.is_dir() and again.content_hash() == net.content_hash()
