"""Native engine against ngspice, the two ngspice backends, and ngspice's failures."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.tile import extract as ch
from circuitsim.errors import ConvergenceError, SimulationError
from circuitsim.spice import get_backend
from circuitsim.spice.rawfile import read_raw
from circuitsim.tile.crossbar import TIA, Tile

pytestmark = pytest.mark.ngspice


def relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (12, 7), (7, 12), (24, 24)])
def test_native_matches_ngspice_on_random_tiles(shape, rng):
    g = rng.uniform(1e-6, 1e-4, shape)
    tile = Tile(g, r_row=2.5, r_col=3.0, r_driver=20.0, c_row=1e-16)
    native, spice = ch.characterize(tile), ch.characterize(tile, engine="ngspice")
    assert relative_error(native.T, spice.T) <= 1e-6
    v = rng.uniform(-0.8, 0.8, shape[0])
    fast, ref = ch.simulate(tile, v), ch.simulate(tile, v, engine="ngspice")
    assert relative_error(fast.output_currents, ref.output_currents) <= 1e-6
    nodes = ref.operating_point.node_names
    assert relative_error(fast.operating_point.voltage(nodes), ref.operating_point.voltage(nodes)) <= 1e-6
    np.testing.assert_allclose(fast.output_currents, native.T @ v, rtol=1e-9, atol=1e-15)


def test_native_matches_ngspice_with_tia(rng):
    tile = Tile(rng.uniform(1e-6, 1e-4, (6, 4)), r_row=1.0, r_col=1.0, tia=TIA(gain=500, r_feedback=1e4))
    v = rng.uniform(0, 0.5, 6)
    fast, ref = ch.simulate(tile, v), ch.simulate(tile, v, engine="ngspice")
    assert relative_error(fast.output_voltages, ref.output_voltages) <= 1e-6
    assert relative_error(ch.characterize(tile).T, ch.characterize(tile, engine="ngspice").T) <= 1e-6


def test_backends_agree(rng):
    tile = Tile(rng.uniform(1e-6, 1e-4, (9, 6)), r_row=5.0, r_col=5.0)
    shared = ch.characterize(tile, engine="ngspice", backend="shared")
    batch = ch.characterize(tile, engine="ngspice", backend="subprocess")
    assert shared.metadata["ngspice_backend"] == "shared"
    assert batch.metadata["ngspice_backend"] == "subprocess"
    np.testing.assert_allclose(shared.T, batch.T, rtol=1e-12)
    assert shared.metadata["solver"] == "KLU"


GOOD = "good\nV1 a 0 DC 1\nR1 a 0 1k\n.end\n"
BAD_DECKS = {
    "invalid line": ("t\nV1 a 0 DC 1\nR1 a b\nR2 b 0 1k\n.end\n", SimulationError, "not a valid"),
    "unknown subcircuit": ("t\nV1 a 0 DC 1\nXfoo a 0 nosuch\nR1 a 0 1k\n.end\n", SimulationError, "unknown subckt"),
    "singular matrix": ("t\nV1 a 0 DC 1\nR1 a b 1k\nC1 c 0 1p\nR2 c d 1k\n.end\n", ConvergenceError, "singular"),
    "no convergence": (
        "t\nV1 a 0 DC 1\nR1 a b 1k\nB1 b 0 I = v(b) > 0.5 ? 1 : -1\n.end\n", ConvergenceError, "timestep too small"
    ),
}


@pytest.mark.parametrize("backend", ["shared", "subprocess"])
@pytest.mark.parametrize("case", sorted(BAD_DECKS))
def test_failures_carry_deck_and_message(backend, case):
    deck, error, message = BAD_DECKS[case]
    runner = get_backend(backend)
    with pytest.raises(error, match=message) as info:
        runner.run(deck, [["op"]])
    assert deck.splitlines()[1] in info.value.deck
    assert message in info.value.output.lower()
    assert info.value.version.startswith("ngspice-")
    # the backend keeps working after a failure
    (result,) = runner.run(GOOD, [["op"]])
    assert result["i(v1)"][0] == pytest.approx(-1e-3)


def test_subprocess_keeps_deck_and_raw(tmp_path):
    from circuitsim.spice.batch import BatchBackend

    runner = BatchBackend(keep_dir=tmp_path)
    runner.run(GOOD, [["op"], ["alter v1 dc = 2", "op"]])
    plots = read_raw(tmp_path / "result.raw")
    assert [p.vectors["v(a)"][0] for p in plots] == [1.0, 2.0]
    assert ".options klu" in (tmp_path / "deck.cir").read_text()


def test_ascii_raw_file(tmp_path):
    raw = tmp_path / "a.raw"
    raw.write_text(
        "Title: t\nDate: x\nPlotname: Operating Point\nFlags: real\nNo. Variables: 2\n"
        "No. Points: 1\nVariables:\n\t0\tv(a)\tvoltage\n\t1\ti(v1)\tcurrent\nValues:\n"
        " 0\t1.000000000000000e+00\n\t-1.000000000000000e-03\n"
    )
    (plot,) = read_raw(raw)
    assert plot.name == "Operating Point"
    assert plot.vectors["v(a)"][0] == 1.0 and plot.vectors["i(v1)"][0] == -1e-3


def test_native_transfer_through_a_floating_probe():
    """A 0 V probe between two nodes (not to ground) keeps the system symmetric but
    indefinite; the native engine must still give the exact transfer."""
    from circuitsim.tile.circuit import CircuitBuilder
    from circuitsim.tile.native import operating_point, transfer_matrix

    b = CircuitBuilder("probe")
    n = b.nodes(["in", "a", "b"])
    b.add("V", ["Vin"], [[n[0], 0]], [1.0])
    b.add("R", ["R1", "R2"], [[n[0], n[1]], [n[2], 0]], [1e3, 3e3])
    b.add("V", ["Vprobe"], [[n[1], n[2]]], [0.0])
    circuit = b.build()
    T = transfer_matrix(circuit, ["Vin"], ["Vprobe", "Vin"])
    np.testing.assert_allclose(T[:, 0], [1 / 4e3, -1 / 4e3], rtol=1e-12)
    assert operating_point(circuit).current("Vprobe") == pytest.approx(T[0, 0], rel=1e-12)
