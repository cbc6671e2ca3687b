"""The IMAC-Sim layer topology: `circuitsim layer` against hand-written decks in ngspice.

The decks below are written by hand in IMAC-Sim's own structure (``mapLayer.py``: input
lines driven at the output-1 end with one segment per output and both cells of an output
on one node, the bias as the last row from ``vdd`` through its own line, summing lines
``sp``/``sn`` ending in one ``diff1`` amplifier per partition and output, the amplifier
outputs tied to ``nin<r>`` by 1 mΩ; ``spice/diff1.sp``: 1 kΩ inputs, 30 kΩ feedback and
30 kΩ to ground). IMAC-Sim's ideal op-amp is written as a VCVS of gain 1e6, the default
of ``--opamp-gain``. Layer: 2 inputs + bias, 2 outputs, W = [[1, -1], [0, 1]],
b = [-1, 1], cells 8.49 kΩ / 25.46 kΩ, wires 9.241569 Ω / 11.551961 Ω.
"""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.cli import main
from circuitsim.devices import Device, Wires
from circuitsim.network.layer_circuit import layer_circuit, layer_input_voltages
from circuitsim.network.mapping import Partition, map_layer
from circuitsim.tile.crossbar import Tile
from circuitsim.tile.extract import characterize
from circuitsim.tile.layer_circuit import layer_transfer, solve_layer
from circuitsim.tile.topology import TopologyConfig, partition_slices

W = np.array([[1.0, -1.0], [0.0, 1.0]])
B = np.array([-1.0, 1.0])
X = np.array([[0.8, 0.0], [0.8, 0.8], [0.0, 0.3]])

DIFF1 = """
.subckt diff1 inp inn out
R1 inn n1 1k
R2 inp n2 1k
E1 out 0 n2 n1 1e6
R3 n1 out 30k
R4 n2 0 30k
.ends diff1
"""

CELLS = """
Vin1 in1 0 DC 0
Vin2 in2 0 DC 0
Vdd vdd 0 DC 0.8
Rwpos1_1 in1_1 sp1_1 8490
Rwpos1_2 in1_2 sp1_2 25460
Rwpos2_1 in2_1 sp2_1 8490
Rwpos2_2 in2_2 sp2_2 8490
Rwneg1_1 in1_1 sn1_1 25460
Rwneg1_2 in1_2 sn1_2 8490
Rwneg2_1 in2_1 sn2_1 8490
Rwneg2_2 in2_2 sn2_2 25460
Rbpos1 vd1 sp3_1 25460
Rbpos2 vd2 sp3_2 8490
Rbneg1 vd1 sn3_1 8490
Rbneg2 vd2 sn3_2 25460
"""

DECK_1_1 = "IMAC-Sim layer, h/v 1/1" + DIFF1 + CELLS + """
Rin1_1 in1 in1_1 9.241569
Rin1_2 in1_1 in1_2 9.241569
Rin2_1 in2 in2_1 9.241569
Rin2_2 in2_1 in2_2 9.241569
Rbias1 vdd vd1 9.241569
Rbias2 vd1 vd2 9.241569
Rsp1_1 sp1_1 sp2_1 11.551961
Rsp2_1 sp2_1 sp3_1 11.551961
Rsp3_1 sp3_1 sp1_p1 11.551961
Rsn1_1 sn1_1 sn2_1 11.551961
Rsn2_1 sn2_1 sn3_1 11.551961
Rsn3_1 sn3_1 sn1_p1 11.551961
Rsp1_2 sp1_2 sp2_2 11.551961
Rsp2_2 sp2_2 sp3_2 11.551961
Rsp3_2 sp3_2 sp2_p1 11.551961
Rsn1_2 sn1_2 sn2_2 11.551961
Rsn2_2 sn2_2 sn3_2 11.551961
Rsn3_2 sn3_2 sn2_p1 11.551961
XDIFFw1_p1 sp1_p1 sn1_p1 nin1_1 diff1
Rconn1_p1 nin1_1 nin1 1m
XDIFFw2_p1 sp2_p1 sn2_p1 nin2_1 diff1
Rconn2_p1 nin2_1 nin2 1m
.end
"""

# h = 2: rows {in1, in2} and {bias} (IMAC-Sim's rounding of 3 rows: 2, 1);
# v = 2: every input line re-driven at output 2
DECK_2_2 = "IMAC-Sim layer, h/v 2/2" + DIFF1 + CELLS + """
Rin1_1 in1 in1_1 9.241569
Rin1_2 in1 in1_2 9.241569
Rin2_1 in2 in2_1 9.241569
Rin2_2 in2 in2_2 9.241569
Rbias1 vdd vd1 9.241569
Rbias2 vdd vd2 9.241569
Rsp1_1 sp1_1 sp2_1 11.551961
Rsp2_1 sp2_1 sp1_p1 11.551961
Rsp3_1 sp3_1 sp1_p2 11.551961
Rsn1_1 sn1_1 sn2_1 11.551961
Rsn2_1 sn2_1 sn1_p1 11.551961
Rsn3_1 sn3_1 sn1_p2 11.551961
Rsp1_2 sp1_2 sp2_2 11.551961
Rsp2_2 sp2_2 sp2_p1 11.551961
Rsp3_2 sp3_2 sp2_p2 11.551961
Rsn1_2 sn1_2 sn2_2 11.551961
Rsn2_2 sn2_2 sn2_p1 11.551961
Rsn3_2 sn3_2 sn2_p2 11.551961
XDIFFw1_p1 sp1_p1 sn1_p1 nin1_1 diff1
Rconn1_p1 nin1_1 nin1 1m
XDIFFw1_p2 sp1_p2 sn1_p2 nin1_2 diff1
Rconn1_p2 nin1_2 nin1 1m
XDIFFw2_p1 sp2_p1 sn2_p1 nin2_1 diff1
Rconn2_p1 nin2_1 nin2 1m
XDIFFw2_p2 sp2_p2 sn2_p2 nin2_2 diff1
Rconn2_p2 nin2_2 nin2 1m
.end
"""


def _hand_deck(deck: str) -> np.ndarray:
    from circuitsim.spice import get_backend

    steps = [[f"alter vin1 dc = {a}", f"alter vin2 dc = {b}", "op"] for a, b in X]
    results = get_backend("subprocess").run(deck, steps, save=["v(nin1)", "v(nin2)"])
    return np.array([[r["v(nin1)"][0], r["v(nin2)"][0]] for r in results])


def _cli_layer(tmp_path, partitions: str, engine: str) -> np.ndarray:
    for name, value in (("W", W), ("b", B), ("X", X)):
        np.save(tmp_path / f"{name}.npy", value)
    out = tmp_path / f"Y-{engine}.npz"
    status = main(["layer", "--weights", str(tmp_path / "W.npy"), "--bias", str(tmp_path / "b.npy"),
                   "--partitions", partitions, "--topology", "imac-sim", "--r-row", "9.241569",
                   "--r-col", "11.551961", "--inputs", str(tmp_path / "X.npy"), "--engine", engine,
                   "--deck", str(tmp_path / "deck.cir"), "--out", str(out)])
    assert status == 0
    return np.load(out)["outputs"]


@pytest.mark.ngspice
@pytest.mark.parametrize("partitions, deck", [("1/1", DECK_1_1), ("2/2", DECK_2_2)])
def test_layer_command_matches_hand_written_imac_sim_deck(tmp_path, partitions, deck, capsys):
    reference = _hand_deck(deck)
    for engine in ("native", "ngspice"):
        got = _cli_layer(tmp_path, partitions, engine)
        error = np.abs(got - reference).max() / np.abs(reference).max()
        with capsys.disabled():
            print(f"\nimac-sim h/v {partitions}, {engine}: max |Y - hand deck| / max |hand deck| = {error:.2e}")
        assert got.shape == (len(X), 2)
        assert error <= 1e-9
    assert "Eamp" in (tmp_path / "deck.cir").read_text()
    # the deck discriminates: the canonical pair layout (a segment before every cell) differs
    h, v = (int(p) for p in partitions.split("/"))
    other = layer_circuit(W, B, Device(8.49e3, 25.46e3), Wires(9.241569, 11.551961), Partition(h, v),
                          TopologyConfig.imac_sim().replace(pair_layout="adjacent-columns"))
    moved = solve_layer(other, layer_input_voltages(X, 0.8, other.topology))
    assert np.abs(moved - reference).max() > 1e-5 * np.abs(reference).max()
    # the loaded amplifier: the I- line does not sit at virtual ground, the outputs are volts
    assert np.abs(reference).max() > 0.05


VARIANTS = {
    "canonical": TopologyConfig.canonical(),
    "canonical-tia": TopologyConfig.canonical().replace(readout="tia"),
    "canonical-average": TopologyConfig.canonical().replace(combining="average", rounding="imac-sim"),
    "imac-sim": TopologyConfig.imac_sim(),
    "imac-sim-sum": TopologyConfig.imac_sim(10.0, 1e4).replace(combining="sum"),
    "imac-sim-adjacent": TopologyConfig.imac_sim().replace(pair_layout="adjacent-columns", bias_row="first"),
}


@pytest.mark.ngspice
@pytest.mark.parametrize("name", VARIANTS)
def test_native_engine_matches_ngspice_in_every_topology(name, rng):
    topology = VARIANTS[name]
    assert TopologyConfig.from_dict(topology.to_dict()) == topology
    w, b = rng.choice([-1.0, 0.0, 1.0], size=(9, 4)), rng.choice([-1.0, 1.0], size=4)
    layer = layer_circuit(w, b, Device(8.49e3, 25.46e3), Wires(9.241569, 11.551961), Partition(3, 2), topology)
    v = layer_input_voltages(rng.choice([0.0, 0.8], size=(3, 9)), 0.8, topology)
    native, spice = solve_layer(layer, v), solve_layer(layer, v, engine="ngspice")
    assert np.abs(native - spice).max() <= 1e-9 * np.abs(spice).max()
    assert np.abs(v @ layer_transfer(layer).T - native).max() <= 1e-9 * np.abs(native).max()


def test_partition_rounding():
    sizes = lambda n, p, r: [s.stop - s.start for s in partition_slices(n, p, r)]  # noqa: E731
    assert sizes(21, 2, "nearest") == [10, 11]
    assert sizes(21, 2, "imac-sim") == [11, 10]
    assert sizes(10, 4, "imac-sim") == [3, 3, 2, 2]
    assert sizes(401, 16, "imac-sim")[:3] == [26, 24, 25]  # IMAC-Sim's formula, not plain ceil-first
    assert sizes(121, 4, "nearest") == [30, 30, 31, 30]


def test_imac_sim_zero_weight_and_bias_row():
    dev = Device(8.49e3, 25.46e3)
    g = map_layer(W, B, dev, zero_weight="g-max").conductances
    assert g[1, 0] == g[1, 1] == dev.g_max  # weight 0 -> (R_low, R_low)
    assert map_layer(W, B, dev).conductances[1, 0] == dev.g_min
    first = layer_circuit(W, B, dev, Wires(), Partition(), TopologyConfig.imac_sim().replace(bias_row="first"))
    assert first.g_pos[0, 0] == dev.g_min and first.g_pos[0, 1] == dev.g_max


def test_canonical_layer_is_the_canonical_tiles(rng):
    """The canonical layer circuit equals the tiles of the mapping, characterized one by one."""
    w = rng.choice([-1.0, 1.0], size=(7, 5))
    b = rng.choice([-1.0, 1.0], size=5)
    dev, wires = Device(8.49e3, 25.46e3), Wires(9.24, 11.55)
    part = Partition(2, 2)
    layer = layer_circuit(w, b, dev, wires, part, TopologyConfig.canonical())
    a = layer_transfer(layer)  # n_out x n_rows, summed differential currents
    mapping = map_layer(w, b, dev, part)
    expected = np.zeros_like(a)
    for i, rows in enumerate(mapping.row_slices):
        for j, outs in enumerate(mapping.out_slices):
            T = characterize(Tile(mapping.tile_conductances(i, j), r_row=9.24, r_col=11.55)).T
            expected[outs, rows] += T[0::2] - T[1::2]
    assert np.abs(a - expected).max() <= 1e-9 * np.abs(expected).max()
    v = layer_input_voltages(rng.uniform(0, 0.8, size=(2, 7)), 0.8, layer.topology)
    assert np.allclose(solve_layer(layer, v), v @ a.T, rtol=0, atol=1e-12 * np.abs(v @ a.T).max())


def test_averaging_and_linear_transfer_of_imac_sim_layer(rng):
    """With 1 mΩ ties the neuron sees the mean of the partition amplifiers; the map is linear."""
    w = rng.choice([-1.0, 0.0, 1.0], size=(9, 3))
    b = rng.choice([-1.0, 1.0], size=3)
    dev, wires = Device(8.49e3, 25.46e3), Wires(9.241569, 11.551961)
    topo = TopologyConfig.imac_sim()
    averaged = layer_circuit(w, b, dev, wires, Partition(3, 1), topo)
    summed = layer_circuit(w, b, dev, wires, Partition(3, 1), topo.replace(combining="sum"))
    v = layer_input_voltages(rng.choice([0.0, 0.8], size=(4, 9)), 0.8, topo)
    mean = solve_layer(averaged, v)
    assert np.allclose(mean, solve_layer(summed, v) / 3, rtol=0, atol=1e-9)
    assert np.allclose(v @ layer_transfer(averaged).T, mean, rtol=0, atol=1e-9)


def test_layer_command_bad_input(tmp_path, capsys):
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "X.npy", np.zeros((2, 5)))
    status = main(["layer", "--weights", str(tmp_path / "W.npy"), "--inputs", str(tmp_path / "X.npy"),
                   "--partitions", "1/1", "--out", str(tmp_path / "Y.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[0].startswith("error:") and "vectors x 2" in err[0]
    assert not (tmp_path / "Y.npz").exists()
    status = main(["layer", "--weights", str(tmp_path / "W.npy"), "--inputs", str(tmp_path / "W.npy"),
                   "--partitions", "3/1", "--out", str(tmp_path / "Y.npz")])
    assert status == 2 and "partition h" in capsys.readouterr().err
