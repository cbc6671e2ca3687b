"""An ngspice that crashes, is killed, writes garbage or stops mid-output is an environment
failure (never stored); a deck that does not converge is a configuration failure (stored with
its deck) — told apart by ngspice's exit status, signal and output (issue 22).

The failing simulators are fake ``ngspice`` scripts put first on ``PATH`` (the subprocess
backend runs whatever ``ngspice`` is there); they answer ``ngspice -v`` like ngspice 46 and,
where they need real results, call the real ngspice and damage what it wrote. The runs that
succeed use the real ngspice.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_integrity import NGSPICE_SPEC, point_files, sweep

pytestmark = pytest.mark.ngspice

REAL = shutil.which("ngspice") or "/usr/bin/ngspice"

#: what the fake ngspice does with ``ngspice -b deck.cir`` (run in the deck's folder, which holds result.raw)
BEHAVIOURS = {
    "exit 1, silent": "exit 1",
    "exit 3": "echo 'Circuit: t'; exit 3",
    "segfault": "kill -SEGV $$",
    "killed": "kill -KILL $$",
    "garbage": "head -c 3000 /dev/urandom; exit 0",
    "cut off": f'"{REAL}" "$@"; truncate -s 600 result.raw; exit 0',
    "garbled raw file": f'"{REAL}" "$@"; head -c 3000 /dev/urandom > result.raw; exit 0',
    "huge header": f'"{REAL}" "$@"; sed -i "s/^No. Points: .*/No. Points: 1000000000000/" result.raw; exit 0',
}
#: a deck that does not converge, as ngspice reports it (its own words, exit status 0, no result)
NOT_CONVERGING = "echo 'Warning: singular matrix:  check node c'; echo 'Error: no convergence'; exit 0"


def fake_ngspice(folder: Path, behaviour: str) -> dict:
    """An environment whose ``ngspice`` is a script doing ``behaviour``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ngspice"
    script.write_text("#!/bin/bash\n"
                      'if [ "$1" = "-v" ]; then echo "** ngspice-46 : Circuit level simulation program"; '
                      'echo "** Compiled with KLU Direct Linear Solver"; exit 0; fi\n' + behaviour + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def characterize(tmp_path: Path, env: dict):
    np.save(tmp_path / "G.npy", np.full((3, 2), 1e-4))
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", "characterize", "--conductances",
                           str(tmp_path / "G.npy"), "--engine", "ngspice", "--backend", "subprocess",
                           "--r-row", "1", "--out", str(tmp_path / "T.npz")],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("case", sorted(BEHAVIOURS))
def test_a_failing_ngspice_is_an_environment_failure(tmp_path, case):
    from circuitsim.errors import EnvironmentFailure, SimulationError, SimulatorFailure
    from circuitsim.spice import discovery
    from circuitsim.spice.batch import BatchBackend

    env = fake_ngspice(tmp_path / "bin", BEHAVIOURS[case])
    proc = characterize(tmp_path, env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ngspice") and "check the ngspice installation" in first, proc.stderr
    assert not (tmp_path / "T.npz").exists()
    # the same in-process: the error is an EnvironmentFailure, never a configuration failure
    old = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    discovery.find_ngspice.cache_clear()
    try:
        with pytest.raises(SimulatorFailure) as info:
            BatchBackend().run("t\nV1 a 0 DC 1\nR1 a 0 1k\n.end\n", [["op"]])
    finally:
        os.environ["PATH"] = old
        discovery.find_ngspice.cache_clear()
    assert isinstance(info.value, EnvironmentFailure) and isinstance(info.value, SimulationError)
    assert "R1 a 0 1k" in info.value.deck


def test_a_deck_that_does_not_converge_is_a_configuration_failure(tmp_path):
    from circuitsim.errors import ConvergenceError, EnvironmentFailure
    from circuitsim.spice import discovery
    from circuitsim.spice.batch import BatchBackend

    # the real ngspice on a singular circuit: ngspice says why, exit status 0
    with pytest.raises(ConvergenceError) as info:
        BatchBackend().run("t\nV1 a 0 DC 1\nR1 a b 1k\nC1 c 0 1p\nR2 c d 1k\n.end\n", [["op"]])
    assert not isinstance(info.value, EnvironmentFailure)
    # and a deck ngspice rejects (exit status 1 with its reason) is the deck's failure too
    from circuitsim.errors import SimulationError

    with pytest.raises(SimulationError, match="unknown subckt") as info:
        BatchBackend().run("t\nV1 a 0 DC 1\nXfoo a 0 nosuch\nR1 a 0 1k\n.end\n", [["op"]])
    assert not isinstance(info.value, EnvironmentFailure)
    discovery.find_ngspice.cache_clear()


def test_a_crashing_ngspice_stores_nothing_and_the_real_one_computes_every_point(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(NGSPICE_SPEC)
    out, cache = tmp_path / "out", tmp_path / "cache"
    crashed = sweep(spec, out, cache, env=fake_ngspice(tmp_path / "bin", BEHAVIOURS["segfault"]))
    assert crashed.returncode == 2 and "Traceback" not in crashed.stderr, crashed.stderr
    assert "SIGSEGV" in crashed.stderr.splitlines()[0]
    assert point_files(out) == []
    again = sweep(spec, out, cache)  # the real ngspice: every point computed, no --retry-failed needed
    assert again.returncode == 0, again.stderr
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 4 and (frame["status"] == "ok").all()


def test_non_convergence_is_stored_with_its_deck_and_old_crash_rows_are_recomputed(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(NGSPICE_SPEC)
    out, cache = tmp_path / "out", tmp_path / "cache"
    failed = sweep(spec, out, cache, env=fake_ngspice(tmp_path / "bin", NOT_CONVERGING))
    assert failed.returncode == 1, failed.stderr  # points failed, the sweep went on
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 4 and (frame["status"] == "error").all()
    assert frame["error"].str.contains("did not converge").all()
    decks = sorted((out / "points").glob("*.cir"))
    assert len(decks) == 4 and ".control" in decks[0].read_text()
    # rows an earlier version stored for a crashed ngspice are not results: computed again
    files = point_files(out)
    for file in files[:2]:
        row = json.loads(file.read_text())
        row["error"] = "ngspice exited with code 1 and wrote 0 of 3 results"
        file.write_text(json.dumps(row))
    again = sweep(spec, out, cache)  # the real ngspice, no --retry-failed
    assert again.returncode == 1, again.stderr
    assert again.stderr.count("is not kept (it records a failure of the machine") == 2, again.stderr
    frame = pd.read_csv(out / "results.csv")
    assert (frame["status"] == "ok").sum() == 2 and (frame["status"] == "error").sum() == 2
