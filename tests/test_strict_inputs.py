"""Strict inputs, engine guard, limits and one-line failures (issue 10)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from circuitsim.errors import ConfigError, ConvergenceError
from circuitsim.study.spec import parse_spec
from circuitsim.study.sweep import run_sweep
from circuitsim.tile import native
from circuitsim.tile.circuit import CircuitBuilder
from circuitsim.tile.crossbar import Tile
from test_integrity import SPEC, one_error_line


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


# -- 4. accepted inputs, wrong numbers ------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (("[dataset]", '[dataset]\nbinarize = "false"'), 'dataset.binarize must be true or false, got \'false\''),
    (("[wires]", "[circuit]\nv_read = true\n[wires]"), "circuit.v_read must be a number, got True"),
    (("[wires]", "[circuit]\nv_read = 1e300\n[wires]"), "circuit.v_read must be > 0 and <= 1000 volts"),
    (("epochs = 3", "epochs = 2.5"), "network.epochs must be an integer, got 2.5"),
    (("epochs = 3", "epochs = true"), "network.epochs must be an integer, got True"),
    (("layers = [64, 16, 10]", "layers = [64, 16.5, 10]"), "network.layers must be a list of int values"),
    (("[wires]", '[circuit]\nbackend = "spicy"\n[wires]'), "circuit.backend must be one of shared, subprocess"),
    (("partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [2, 1]}]", "partitions = []"),
     "sweep.partitions needs a non-empty list"),
    (("[wires]", "[adc]\nkind = \"none\"\nbits = 4\n[wires]"), "[adc] bits is ignored with kind = \"none\""),
    (("[wires]", "[circuit]\nt_int = 5e-8\n[wires]"), "circuit.t_int is ignored with readout = \"current\""),
    (("side = 8", "side = 8\nthreshold = 0.3"), "dataset.threshold is ignored without binarize = true"),
])
def test_spec_types_and_ignored_keys_are_refused(change, message):
    text = SPEC.replace(*change)
    assert text != SPEC
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert message in str(info.value)


def test_swept_values_are_type_checked():
    with pytest.raises(ConfigError, match="wires.r_row must be a number, got True"):
        parse_spec(SPEC + '"wires.r_row" = [1.0, true]\n')


@pytest.mark.parametrize("change, message", [
    (("layers = [64, 16, 10]", "layers = [60, 16, 10]"), "network.layers[0] = 60 but dataset 'digits' has 64"),
    (("layers = [64, 16, 10]", "layers = [64, 16, 8]"), "network.layers[-1] = 8 outputs but dataset 'digits' has 10"),
])
def test_layer_dataset_mismatch_is_refused_before_the_folder(tmp_path, change, message):
    spec = parse_spec(SPEC.replace(*change).replace("partitions = [{h = [1, 1], v = [1, 1]}, "
                                                    "{h = [2, 1], v = [2, 1]}]", ""))
    with pytest.raises(ConfigError) as info:
        run_sweep(spec, tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda line: None)
    assert message in str(info.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("g, message", [
    (np.full((3, 2), 1e-4 + 1e-6j), "must be real numbers, got a complex array"),
    (np.ones((3, 2), bool), "got a boolean array"),
    (np.full((3, 2), 1e15), "G[0, 0] = 1e+15 S is outside the physical range 0 S to 1000 S"),
    (np.full((3, 2), 1e300), "outside the physical range"),
])
def test_conductances_out_of_kind_or_range_are_refused(g, message):
    with pytest.raises(ConfigError) as info:
        Tile(g, r_row=1.0, r_col=1.0)
    assert message in str(info.value)


@pytest.mark.parametrize("field, value", [("r_row", 1e30), ("r_col", 1e30), ("r_driver", 1e-12), ("c_row", 10.0)])
def test_wires_out_of_range_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"{field} = .* is outside the physical range"):
        Tile(np.full((3, 2), 1e-4), **{field: value})


def _ladder(g_cell: float, r_wire: float) -> tuple:
    """One input, two cells of ``g_cell`` joined by ``r_wire`` wires, two sensed outputs:
    the circuit of a 1x2 tile, built without the Tile's range checks."""
    b = CircuitBuilder("ladder")
    b.add("V", ["Vin0"], np.array([[b.nodes(["in0"])[0], 0]]), [1.0])
    b.add("R", ["Rw0", "Rw1"], np.array([b.nodes(["in0", "wl0"]), b.nodes(["wl0", "wl1"])]), [r_wire, r_wire])
    b.add("R", ["Rc0", "Rc1"], np.array([b.nodes(["wl0", "bl0"]), b.nodes(["wl1", "bl1"])]),
          [1 / g_cell, 1 / g_cell])
    b.add("V", ["Vsense0", "Vsense1"], np.array([[b.nodes(["bl0"])[0], 0], [b.nodes(["bl1"])[0], 0]]), [0.0, 0.0])
    return b.build(), ["Vin0"], ["Vsense0", "Vsense1"]


def test_native_engine_refuses_what_it_cannot_solve_accurately():
    circuit, inputs, outputs = _ladder(1e-4, 1.0)
    T = native.transfer_matrix(circuit, inputs, outputs)
    r_par = 1 / (1 / 1e4 + 1 / (1e4 + 1.0))  # by hand: cell 0 in parallel with wire 1 + cell 1
    v_wl0 = r_par / (1.0 + r_par)
    assert T[:, 0] == pytest.approx([v_wl0 / 1e4, v_wl0 / (1e4 + 1.0)], rel=1e-12)
    for g_cell, r_wire in ((1e15, 1.0), (1e300, 1.0), (1e-3, 1e30)):
        with pytest.raises(ConvergenceError, match="native engine"):
            native.transfer_matrix(*_ladder(g_cell, r_wire))
        with pytest.raises(ConvergenceError, match="native engine"):
            native.operating_point(_ladder(g_cell, r_wire)[0])


# -- 5. limits and progress -----------------------------------------------------------------


def test_characterize_refuses_a_tile_larger_than_memory(tmp_path):
    from circuitsim.errors import EnvironmentFailure
    from circuitsim.tile.checks import check_memory, memory_estimate

    estimate = memory_estimate(5000, 5000, 1.0, 1.0)
    assert estimate["nodes"] == 5000 + 2 * 5000 * 5000 and estimate["bytes"] > 4 * 2**30
    with pytest.raises(EnvironmentFailure, match="more than the 4.0 GiB available"):
        check_memory(estimate, 4 * 2**30)
    np.save(tmp_path / "G.npy", np.full((300, 300), 1e-4))
    start = time.perf_counter()
    line = one_error_line(cli("characterize", "--conductances", str(tmp_path / "G.npy"), "--r-row", "1",
                              "--r-col", "1", "--memory-limit", "0.01", "--out", str(tmp_path / "T.npz")))
    assert "needs about" in line and "--memory-limit" in line and not (tmp_path / "T.npz").exists()
    assert time.perf_counter() - start < 60
    ok = cli("characterize", "--conductances", str(tmp_path / "G.npy"), "--r-row", "1", "--r-col", "1",
             "--memory-limit", "2", "--out", str(tmp_path / "T.npz"))
    assert ok.returncode == 0, ok.stderr


def test_grid_over_10000_points_needs_yes(tmp_path):
    spec = tmp_path / "big.toml"
    values = ", ".join(str(float(k)) for k in range(1, 102))
    spec.write_text(SPEC + f'"wires.r_row" = [{values}]\n"wires.r_col" = [{values}]\n')
    line = one_error_line(cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")))
    assert "20402 points" in line and "--yes" in line
    assert not (tmp_path / "out").exists()


def test_training_progress_on_a_terminal_only(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    args = [sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(tmp_path / "a"),
            "--cache", str(tmp_path / "c1")]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "train MLP" not in quiet.stderr and "\r" not in quiet.stderr
    leader, follower = pty.openpty()  # stderr a terminal of 24 x 100 characters, as in an interactive shell
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    args[6], args[8] = str(tmp_path / "b"), str(tmp_path / "c2")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 65536):  # read while it runs, so a full terminal never blocks it
            shown += chunk
    except OSError:  # EIO: the sweep has exited and closed the terminal
        pass
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    assert b"train MLP" in shown and b"epoch" in shown and b"tiles" in shown and b"point" in shown


# -- 6. one line instead of a traceback -----------------------------------------------------


def test_characterize_out_is_checked_before_computing(tmp_path):
    np.save(tmp_path / "G.npy", np.full((4, 3), 1e-4))
    g = str(tmp_path / "G.npy")
    assert "is a folder" in one_error_line(cli("characterize", "--conductances", g, "--out", str(tmp_path)))
    assert "--out is empty" in one_error_line(cli("characterize", "--conductances", g, "--out", ""))
    # not writable even by root: /proc (the tests run as root, so chmod would not stop a write)
    assert "cannot write in /proc" in one_error_line(cli("characterize", "--conductances", g,
                                                         "--out", "/proc/circuitsim-T.npz"))
    assert "does not exist (or is a file)" in one_error_line(
        cli("characterize", "--conductances", g, "--out", str(tmp_path / "G.npy" / "T.npz")))


def test_plot_into_an_unwritable_folder_is_one_line(tmp_path):
    spec, out = tmp_path / "spec.toml", tmp_path / "out"
    spec.write_text(SPEC)
    assert cli("sweep", str(spec), "--out", str(out), "--cache", str(tmp_path / "cache")).returncode == 0
    (out / "plots").write_text("a file where the plots folder goes")  # root ignores read-only modes
    line = one_error_line(cli("plot", str(out)))
    assert "plots" in line


@pytest.mark.ngspice
def test_ngspice_library_path_at_another_library_is_one_line(tmp_path):
    other = next(Path(np.__file__).parent.rglob("_multiarray_umath*.so"))  # a shared library, not libngspice
    np.save(tmp_path / "G.npy", np.full((4, 3), 1e-4))
    env = {**os.environ, "NGSPICE_LIBRARY_PATH": str(other)}
    line = one_error_line(cli("characterize", "--conductances", str(tmp_path / "G.npy"), "--engine", "ngspice",
                              "--out", str(tmp_path / "T.npz"), env=env))
    assert "cannot load libngspice" in line and "NGSPICE_LIBRARY_PATH" in line


def test_results_into_a_closed_pipe_is_quiet(tmp_path):
    spec, out = tmp_path / "spec.toml", tmp_path / "out"
    spec.write_text(SPEC)
    assert cli("sweep", str(spec), "--out", str(out), "--cache", str(tmp_path / "cache")).returncode == 0
    read, write = os.pipe()
    os.close(read)  # as `circuitsim results DIR | head` once head has exited
    proc = subprocess.run([sys.executable, "-m", "circuitsim.cli", "results", str(out)], stdout=write,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr and proc.stderr == ""
    assert proc.returncode == 0
