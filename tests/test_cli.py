"""The command line: characterize, doctor, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from circuitsim.cli import main
from circuitsim.tile.extract import Characterization


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", *args], capture_output=True, text=True)


@pytest.fixture
def conductances(tmp_path, rng):
    path = tmp_path / "G.npy"
    g = rng.uniform(1e-6, 1e-4, (6, 4))
    np.save(path, g)
    return path, g


@pytest.mark.parametrize("engine", ["native", pytest.param("ngspice", marks=pytest.mark.ngspice)])
def test_characterize_writes_T_and_metadata(engine, conductances, tmp_path):
    path, g = conductances
    out = tmp_path / "T.npz"
    assert main(["characterize", "--conductances", str(path), "--r-row", "2.5", "--r-col", "2.5",
                 "--engine", engine, "--out", str(out)]) == 0
    result = Characterization.load(out)
    assert result.T.shape == (4, 6)
    assert result.metadata["engine"] == engine
    assert result.metadata["parameters"]["r_row"] == 2.5
    assert len(result.metadata["content_hash"]) == 64
    if engine == "ngspice":
        assert result.metadata["ngspice_version"].startswith("ngspice-")
        assert result.metadata["solver"] in ("KLU", "Sparse 1.3")
    # 2.5 ohm wires lower every entry below the ideal conductance
    assert np.all(result.T <= g.T) and not np.allclose(result.T, g.T, rtol=1e-6)


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda p: np.save(p, -np.ones((2, 2))), [], "negative"),
        (lambda p: np.save(p, np.array([[1e-5, np.nan]])), [], "finite"),
        (lambda p: np.save(p, np.ones(3) * 1e-5), [], "2-D"),
        (lambda p: np.save(p, np.zeros((0, 0))), [], "empty"),
        (lambda p: np.save(p, np.ones((2, 2)) * 1e-5), ["--r-col", "-3"], "r_col"),
        (lambda p: p.write_text("not numpy"), [], "not a numpy .npy file"),
        (lambda p: None, [], "does not exist"),
    ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, make, extra, message):
    path = tmp_path / "G.npy"
    make(path)
    out = tmp_path / "T.npz"
    proc = run_cli("characterize", "--conductances", str(path), *extra, "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_unreadable_file(tmp_path):
    path = tmp_path / "G.npy"
    np.save(path, np.ones((2, 2)))
    path.chmod(0)
    proc = run_cli("characterize", "--conductances", str(path), "--out", str(tmp_path / "T.npz"))
    if proc.returncode == 0:  # root reads everything
        pytest.skip("running as root: file permissions are not enforced")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.ngspice
def test_doctor_reports_ngspice():
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stderr
    assert "ngspice-" in proc.stdout and "KLU" in proc.stdout and "PySpice" in proc.stdout
    from circuitsim.tile.factor import available_backends, blas_kind, cholmod_blas

    if "cholmod" in available_backends():  # the BLAS CHOLMOD binds to, as this process finds it
        assert f"CHOLMOD BLAS       : {cholmod_blas()} ({blas_kind(cholmod_blas())})" in proc.stdout


def test_doctor_fails_without_ngspice(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "circuitsim.cli", "doctor"], capture_output=True, text=True,
        env={"PATH": str(tmp_path), "NGSPICE_LIBRARY_PATH": str(tmp_path / "missing.so")},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ngspice >= 42 is required")
    assert "Traceback" not in proc.stderr
