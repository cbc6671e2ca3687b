"""The resistance-sum study script (examples/jung2022.py, issue 29) on its specs' smoke runs: its
tables, and the string energies against the closed form of a string's read power."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from circuitsim.network import datasets
from circuitsim.study import read_results
from circuitsim.tile.resistance_sum import StringCell
from circuitsim.tile.topology import partition_slices

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "jung2022.py"
FASHION = any(any(d.glob("train-images-idx3-ubyte*")) for d in datasets.FASHION_MNIST_DIRS if d.is_dir())


def _script():
    spec = importlib.util.spec_from_file_location("jung2022", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_string_lengths_and_macs():
    study = _script()
    net = {"layers": [784, 128, 10], "bias": False}
    assert [study.strings(h, net) for h in ("13-2", "25-4", "49-8", "98-16")] == ["61 / 64", "32 / 32", "16 / 16",
                                                                                   "8 / 8"]
    assert study.strings("13-3", {"layers": [784, 128, 10]}) == "61 / 43"  # biases: 785 and 129 rows
    assert study.macs(net) == 784 * 128 + 128 * 10


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not FASHION:
        pytest.skip("Fashion-MNIST is not installed (scripts/install-datasets.sh)")
    out = tmp_path_factory.mktemp("jung2022")
    text = _script().main(["--smoke", "--train-images", "2000", "--epochs", "3", "--out", str(out),
                           "--cache", str(out / "cache")])
    return out, text


def _string_energy(h_partitions: str, layers: list[int], cell: StringCell, v_read: float, t_read: float) -> float:
    """Read energy of every string of the MLP once, from the strings' mean resistances (joules)."""
    half_sum = 0.5 * (cell.r_lo + cell.r_hi)  # a cell's mean over x = ±1, the same for w = ±1
    total = 0.0
    for n_in, n_out, h in zip(layers[:-1], layers[1:], h_partitions.split("-")):
        lengths = np.array([s.stop - s.start for s in partition_slices(n_in, int(h))])
        total += n_out * np.sum(t_read * v_read ** 2 / (lengths * half_sum))
    return total


def test_study_tables_and_string_energy(smoke):
    out, text = smoke
    for heading in ("Accuracy against string length", "Energy per MAC", "Accuracy against MTJ variation",
                    "| Jung et al., 64 × 64 MRAM array | 93.23 % |"):
        assert heading in text
    frame, _ = read_results(out / "jung2022")
    assert (frame["status"] == "ok").all() and set(frame["name"]) == {"mnist", "fashion-mnist"}
    assert (frame["digital_accuracy"] > 0.4).all()  # trained: well above chance (0.1)
    rs = frame[frame["topology"] == "resistance-sum"]
    for row in rs.itertuples():
        cell = StringCell(5e3, 10e3, 500.0, 1e9, row.r_col)
        expected = _string_energy(row.h_partitions, [784, 128, 10], cell, 0.2, 10e-9)
        assert row.crossbar_energy == pytest.approx(expected, rel=1e-9)
        assert row.accuracy == row.digital_accuracy  # nominal MTJs: the readout recovers the sums exactly
    # the paper's motivation: summing resistances reads with less energy than summing currents
    both = frame.pivot_table(index=["name", "preset", "h_partitions"], columns="topology", values="crossbar_energy")
    ratio = both["canonical"] / both["resistance-sum"]
    assert (ratio > 1).all()
    assert (ratio.xs("13-2", level=2) > 10 * ratio.xs("98-16", level=2)).all()  # the longer the string, the more
    ideal = rs[rs["preset"] == "ideal"].set_index(["name", "h_partitions"])["crossbar_energy"]
    assert (ideal.xs("98-16", level=1) > 8 * ideal.xs("13-2", level=1)).all()  # shorter strings draw more
    per_mac = 1e15 * ideal[("mnist", "13-2")] / (784 * 128 + 128 * 10)
    assert f"| MNIST sample | 61 / 64 | {per_mac:.3g} |" in text
    variation, _ = read_results(out / "jung2022_variation")
    assert (variation["status"] == "ok").all() and (variation["n_seeds"] == 2).all()
    nominal = variation[(variation["mtj_tmr_spread"] == 0) & (variation["mtj_ra_spread"] == 0)]
    assert (nominal["accuracy"] == nominal["digital_accuracy"]).all() and (nominal["accuracy_std"] == 0).all()
    by_ra = variation.pivot_table(index=["name", "h_partitions", "mtj_tmr_spread"], columns="mtj_ra_spread",
                                  values="accuracy")
    assert (by_ra[0.2] < by_ra[0.0]).all()  # a 20 % RA spread moves the string sums off the nominal readout
    assert f"{100 * variation['accuracy'].iloc[-1]:.1f} ± {100 * variation['accuracy_std'].iloc[-1]:.1f}" in text
    assert (out / "jung2022.md").read_text().strip() == text.strip()
