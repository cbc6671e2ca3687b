"""The DNN+NeuroSim side-by-side script (examples/neurosim_side_by_side.py, issue 26 item 4) on a
reduced VGG-8 that keeps every layer: the configuration is the one NeuroSim states, the costs
add up and follow the tiles, and the docs quote the script's table."""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from circuitsim.network import auto_partition_layers
from circuitsim.network.layers import Conv2d, MaxPool
from circuitsim.periphery.energy import adc_conversion_time, adc_energy

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "neurosim_side_by_side.py"
TUTORIAL = ROOT / "docs" / "tutorials" / "architecture.md"


def _script() -> SimpleNamespace:
    """The script's functions and constants (it is not a package module)."""
    return SimpleNamespace(**runpy.run_path(str(SCRIPT), run_name="neurosim_side_by_side"))


@pytest.fixture(scope="module")
def small():
    """VGG-8 with every width / 8 (the 10 classes kept) on 16 × 16 images, one image."""
    study = _script()
    return study, study.run(shrink=8, side=16, images=1)


def test_full_network_is_neurosims_vgg8():
    """Without mapping it: NeuroSim's layer list, its operation count to the digit, 6,890 tiles."""
    study = _script()
    net = study.vgg8()
    crossbars = [net.layers[k] for k in net.crossbar_layers]
    shapes = [layer.weight.shape for layer in crossbars]
    assert shapes == [(128, 3, 3, 3), (128, 128, 3, 3), (256, 128, 3, 3), (256, 256, 3, 3), (512, 256, 3, 3),
                      (512, 512, 3, 3), (8192, 1024), (1024, 10)]
    assert all(layer.bias is None for layer in crossbars)
    assert all(layer.padding == (1, 1, 1, 1) for layer in crossbars if isinstance(layer, Conv2d))
    assert sum(isinstance(layer, MaxPool) for layer in net.layers) == 3
    ops = study.operations(net)
    assert ops == 1_231_835_136  # 2 × the MACs of NeuroSim's NetWork_VGG8 rows
    assert f"{ops:.6g}" == f"{study.NEUROSIM_OPS:.6g}"  # the release test's numComputation
    parts = auto_partition_layers(net, study.TILE, study.TILE, slices=study.WEIGHT_BITS, reference=True)
    assert sum(p.h * p.v for p in parts) == 6890


def test_neurosim_figures_are_consistent():
    """The transcribed release-test row agrees with itself: parts sum to totals, TOPS/W and TOPS
    follow from the operations, the energy (with zeta) and the latency."""
    ns = _script().NEUROSIM
    ops = _script().NEUROSIM_OPS
    parts = ns["area_array"] + ns["area_ic"] + ns["area_adc"] + ns["area_accumulation"] + ns["area_other"]
    assert parts == pytest.approx(ns["area"], rel=1e-5)
    assert ns["energy_adc"] + ns["energy_accumulation"] + ns["energy_other"] == pytest.approx(ns["energy_dynamic"],
                                                                                            rel=1e-5)
    energy = (ns["energy_dynamic"] + ns["energy_leakage"]) * 1e-6
    assert ops / energy / ns["zeta"] / 1e12 == pytest.approx(ns["tops_w"], rel=1e-4)
    assert ops / (ns["latency"] * 1e-6) / 1e12 == pytest.approx(ns["tops"], rel=1e-4)


def test_configuration_is_the_stated_one(small):
    study, result = small
    mapped, costs = result["mapped"], result["costs"]
    c = mapped.circuit
    assert (c.device.name, c.device.r_low, c.device.r_high, c.device.levels) == ("rram-neurosim", 100e3, 1.7e6, 2)
    assert (c.weight_bits, c.negative, c.v_read, c.t_read) == (8, "offset", 0.5, 10e-9)
    assert (c.dac.kind, c.dac.bits, c.dac.v_max) == ("bit-serial", 8, 0.5)
    assert (c.adc.bits, c.adc.kind, c.adc.columns_per_adc) == (4, "sar", 8)
    assert c.wires.r_row == c.wires.r_col == 0.0
    assert (costs.feature_size, costs.cell_area_f2) == (22e-9, 48.0)
    for crossbar in mapped.crossbars:
        assert crossbar.n_cycles == 8  # 8 input bits, no bias row
        for block in crossbar.blocks:
            rows, cols = block.conductances.shape
            slice_columns = block.outs.stop - block.outs.start  # 8 one-bit slices per output
            assert rows <= 128 and cols <= 128 and slice_columns % 8 == 0 and slice_columns // 8 <= 15
            assert cols == slice_columns + 1 == block.n_columns  # and the reference column


def test_costs_add_up_and_follow_the_tiles(small):
    study, result = small
    mapped, costs, area, energy, latency = (result[k] for k in ("mapped", "costs", "area", "energy", "latency"))
    # the breakdowns sum to their totals
    parts = ("area_cells", "area_adc", "area_dac", "area_shift_add")
    assert sum(area[k] for k in parts) == pytest.approx(area["area"], rel=1e-12)
    n_layers = len(mapped.crossbars)
    assert sum(area[f"area_layer{n + 1}"] for n in range(n_layers)) == pytest.approx(area["area"], rel=1e-12)
    parts = ("crossbar_energy", "adc_energy", "dac_energy", "digital_energy")
    assert sum(energy[k] for k in parts) == pytest.approx(energy["energy_per_inference"], rel=1e-12)
    assert sum(latency[f"latency_layer{n + 1}"] for n in range(n_layers)) == pytest.approx(latency["latency"])
    # area by the tiles: cells they hold, one ADC per 8 columns, one DAC per word line
    blocks = [b for c in mapped.crossbars for b in c.blocks]
    assert len(blocks) == mapped.n_tiles
    n_adcs = sum(math.ceil(b.n_columns / 8) for b in blocks)
    assert study.adcs(mapped) == n_adcs
    assert area["area_cells"] == pytest.approx(sum(b.conductances.size for b in blocks) * 48 * (22e-9) ** 2)
    assert area["area_adc"] == pytest.approx(n_adcs * costs.adc_area_at(4))
    assert area["area_dac"] == pytest.approx(sum(b.rows.stop - b.rows.start for b in blocks) * costs.dac_bit_area)
    # latency: every output position's 8 cycles, each a 10 ns read (8 conversions of 4 bits are shorter)
    t_adc = 8 * adc_conversion_time(4)
    assert t_adc < 10e-9
    expected = sum(c.positions * 8 * 10e-9 + t_adc for c in mapped.crossbars)
    assert latency["latency"] == pytest.approx(expected, rel=1e-12)
    # energy: every column (references included) converted every cycle at every position
    conversions = sum(c.positions * 8 * b.n_columns for c in mapped.crossbars for b in c.blocks)
    assert mapped.conversions_per_inference == conversions
    assert energy["adc_energy"] == pytest.approx(adc_energy(4, conversions))
    assert energy["crossbar_energy"] > 0
    # the figures of merit
    assert result["operations"] == study.operations(result["network"])
    assert result["tops_w"] == pytest.approx(result["operations"] / energy["energy_per_inference"] / 1e12)
    assert result["tops"] == pytest.approx(result["operations"] / latency["latency"] / 1e12)


def test_area_scales_with_the_tiles():
    """Twice the widths: more tiles, and the ADC and DAC areas grow with them tile for tile."""
    study = _script()
    a, b = study.run(shrink=8, side=8, images=1), study.run(shrink=4, side=8, images=1)
    assert b["mapped"].n_tiles > a["mapped"].n_tiles
    for r in (a, b):
        assert r["area"]["area_adc"] / study.adcs(r["mapped"]) == pytest.approx(r["costs"].adc_area_at(4))
    assert b["area"]["area"] > a["area"]["area"]
    assert b["area"]["area_cells"] / a["area"]["area_cells"] == pytest.approx(
        sum(x.conductances.size for c in b["mapped"].crossbars for x in c.blocks)
        / sum(x.conductances.size for c in a["mapped"].crossbars for x in c.blocks))


def test_table_quotes_the_run(small):
    study, result = small
    text = study.table(result)
    area, energy = result["area"], result["energy"]
    assert f"| **area (mm²)** | **{study.NEUROSIM['area']:.2f}** | **{area['area'] * 1e6:.2f}** |" in text
    assert f"**{energy['energy_per_inference'] * 1e6:.2f}** |" in text
    assert f"| **TOPS** | **{study.NEUROSIM['tops']:.2f}** | **{result['tops']:.2f}** |" in text
    assert f"{result['mapped'].n_tiles:,} tiles" in text


def test_tutorial_quotes_the_scripts_table(small):
    """The tutorial's table is the script's: its rows, in order, with NeuroSim's column as printed."""
    study, result = small
    doc = TUTORIAL.read_text()
    assert "## Side by side with DNN+NeuroSim" in doc and "python examples/neurosim_side_by_side.py" in doc
    ours = study.table(result).splitlines()
    lines = doc.splitlines()
    start = lines.index(ours[0])
    quoted = lines[start:start + len(ours)]
    assert [line.split(" | ")[:2] for line in quoted] == [line.split(" | ")[:2] for line in ours]
    assert len(quoted) == len(ours) and not lines[start + len(ours)].startswith("|")
    # the full run quoted: NeuroSim's operation count, 6,890 tiles
    assert "| operations per image | 1.23184e+09 | 1.23184e+09 |" in doc and "6,890 tiles" in doc
    assert "(docs/tutorials/architecture.md#side-by-side-with-dnnneurosim)" in (ROOT / "README.md").read_text()


def test_small_option_runs(capsys):
    text = _script().main(["--small"])
    assert text in capsys.readouterr().out
    assert np.isfinite([float(line.split("**")[-2]) for line in text.splitlines() if "**TOPS" in line]).all()
