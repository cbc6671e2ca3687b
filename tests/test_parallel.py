"""Sweeps at scale: local worker processes, a Dask cluster, kill -9 and resume, Parquet,
``circuitsim results``, failing points, and concurrent writers of the tile cache."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_sweep import SPEC, run_cli

from circuitsim.errors import ConfigError, SimulationError
from circuitsim.study.spec import parse_spec
from circuitsim.study.sweep import run_sweep
from circuitsim.tile.extract import Characterization

TIMING = ["characterization_seconds", "evaluation_seconds"]
#: 12 points whose tiles go through ngspice (about 0.3 s each): long enough to be killed midway
NGSPICE_SPEC = SPEC.replace("[sweep]", '[circuit]\nengine = "ngspice"\n[sweep]').replace(
    '"wires.r_col" = [0.0, 20.0]', '"wires.r_row" = [1.0, 2.0, 3.0, 4.0]')


def quiet(line):
    pass


def same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The small spec's results with one worker (this process)."""
    tmp = tmp_path_factory.mktemp("sequential")
    return run_sweep(parse_spec(SPEC), tmp / "out", cache_dir=tmp / "cache", log=quiet)


def test_two_workers_give_the_same_results(tmp_path, sequential):
    lines = []
    frame = run_sweep(parse_spec(SPEC), tmp_path / "out", cache_dir=tmp_path / "cache", workers=2,
                      log=lines.append)
    same_results(frame, sequential)
    assert len(lines) == 6 and lines[-1].startswith("[6/6]")
    meta = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert meta["complete"] is True and meta["workers"] == 2 and meta["computed"] == 6
    assert len(list((tmp_path / "cache" / "networks").glob("*.npz"))) == 1  # trained once
    assert not list(tmp_path.rglob(".part-*")) and not list(tmp_path.rglob("*.part"))


def test_bad_workers_and_scheduler(tmp_path):
    spec = parse_spec(SPEC)
    with pytest.raises(ConfigError, match="--workers must be a positive integer"):
        run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", workers=0)
    with pytest.raises(ConfigError, match="not both"):
        run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", workers=2, scheduler="tcp://127.0.0.1:1")
    file = tmp_path / "spec.toml"
    file.write_text(SPEC)
    port = _free_port()  # nothing listens there
    proc = run_cli("sweep", str(file), "--out", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """A simulated ngspice failure (map_network patched to raise) on the 4-2 points."""
    import circuitsim.study.points as points

    real = points.map_network

    def failing_map_network(net, partitions, *args, **kwargs):
        if [p.h for p in partitions] == [4, 2]:
            raise SimulationError("ngspice: timestep too small (simulated failure)\nmore details")
        return real(net, partitions, *args, **kwargs)

    monkeypatch.setattr(points, "map_network", failing_map_network)
    frame = run_sweep(parse_spec(SPEC), tmp_path / "out", cache_dir=tmp_path / "cache", log=quiet)
    assert len(frame) == 6
    failed = frame[frame["status"] == "error"]
    assert list(failed["h_partitions"]) == ["4-2", "4-2"]
    assert set(failed["error"]) == {"ngspice: timestep too small (simulated failure)"}
    assert failed["accuracy"].isna().all()
    assert (frame.loc[frame["status"] == "ok", "accuracy"].notna()).all()
    csv = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    assert sorted(csv["status"]) == ["error"] * 2 + ["ok"] * 4


def test_parquet_and_results_command(tmp_path, sequential):
    out = tmp_path / "out"
    run_sweep(parse_spec(SPEC), out, cache_dir=tmp_path / "cache", log=quiet)
    parquet = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv", dtype={"h_partitions": str, "v_partitions": str},
                      keep_default_na=False)
    assert list(parquet.columns) == list(csv.columns)
    pd.testing.assert_frame_equal(parquet.drop(columns=TIMING), csv.drop(columns=TIMING), check_dtype=False)
    proc = run_cli("results", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{out}: 6/6 points done, complete — small"
    assert lines[1].split() == ["r_col", "h_partitions", "v_partitions", "n_tiles", "accuracy",
                                "digital_accuracy", "status"]
    best = parquet.loc[parquet["accuracy"].idxmax()]
    assert lines[-1].startswith(f"best accuracy: {best['accuracy']:.4f} (r_col={best['r_col']}, "
                                f"h_partitions={best['h_partitions']}")
    empty = run_cli("results", str(tmp_path))
    assert empty.returncode == 2 and empty.stdout == ""
    assert empty.stderr.startswith(f"error: {tmp_path} holds no sweep results")
    assert len(empty.stderr.strip().splitlines()) == 1


def test_concurrent_saves_of_one_tile(tmp_path):
    """Writers of the same cache entry (as parallel workers are) never clash."""
    result = Characterization(np.arange(12.0).reshape(3, 4), {"engine": "native"}, np.eye(4))
    path = tmp_path / "tile.npz"
    errors = []

    def save_many():
        try:
            for _ in range(30):
                result.save(path)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=save_many) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["tile.npz"]
    np.testing.assert_array_equal(Characterization.load(path).T, result.T)


@pytest.mark.ngspice
@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    """kill -9 of a running ``circuitsim sweep --workers 2``; the same command then
    computes only the missing points and leaves the finished ones untouched."""
    psutil = pytest.importorskip("psutil")
    spec = tmp_path / "spec.toml"
    spec.write_text(NGSPICE_SPEC)
    out, points = tmp_path / "out", tmp_path / "out" / "points"
    command = [sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(out),
               "--cache", str(tmp_path / "cache"), "--workers", "2"]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (points.is_dir() and any(points.glob("*.json"))):
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before any point"
            time.sleep(0.01)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == [], "worker processes outlived the killed sweep"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in points.glob("*.json")}
    print(f"\nkilled after {len(before)} of 12 points")
    assert 0 < len(before) < 12, "the sweep was not killed midway"
    summary = run_cli("results", str(out))
    print(summary.stdout.splitlines()[0])
    assert summary.stdout.startswith(f"{out}: {len(before)}/12 points done, incomplete")

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    print(again.stdout)
    assert again.returncode == 0, again.stderr
    progress = re.findall(r"^\[(\d+)/12\]", again.stdout, flags=re.M)
    assert [int(k) for k in progress] == list(range(len(before) + 1, 13))  # only the missing points
    meta = json.loads((out / "provenance.json").read_text())
    assert meta["computed"] == 12 - len(before) and meta["complete"] is True
    for name, (mtime, content) in before.items():
        file = points / name
        assert (file.stat().st_mtime_ns, file.read_bytes()) == (mtime, content)
    assert len(list(points.glob("*.json"))) == 12
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 12 and (frame["status"] == "ok").all() and list(frame["point"]) == list(range(12))
    assert not list(out.rglob(".part-*"))


# -- a real Dask cluster on this machine ------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; yields the address."""
    pytest.importorskip("distributed")
    tmp = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs, procs = [], []
    try:
        def start(name, *args):
            logs.append(open(tmp / f"{name}.log", "w"))
            procs.append(subprocess.Popen([dask, *args], stdout=logs[-1], stderr=subprocess.STDOUT, cwd=tmp))

        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        for k in range(2):
            start(f"worker{k}", "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--local-directory", str(tmp / f"worker{k}"), "--death-timeout", "60")
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def test_dask_cluster_gives_the_same_results(tmp_path, dask_cluster, sequential):
    lines = []
    frame = run_sweep(parse_spec(SPEC), tmp_path / "out", cache_dir=tmp_path / "cache",
                      scheduler=dask_cluster, log=lines.append)
    same_results(frame, sequential)
    assert len(lines) == 6
    meta = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert meta["scheduler"] == dask_cluster and meta["complete"] is True and meta["computed"] == 6
    assert len(list((tmp_path / "cache" / "tiles").glob("*.npz"))) > 0  # written by the workers
