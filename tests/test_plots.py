"""Publication plots: figures and their labels, files, plot_results, the light import.

The sweep DataFrames here are small synthetic test fixtures (made-up accuracies
following a simple formula), not results of any simulation.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from circuitsim import Tile, plots, simulate
from circuitsim.errors import ConfigError
from circuitsim.periphery.adc import ADC, ADCConfig
from circuitsim.periphery.adc_linearity import linearity_from_transitions

PREFIX = {"": 1.0, "m": 1e-3, "µ": 1e-6, "n": 1e-9}


def fake_sweep(seeds=(0, 1, 2), **constant) -> pd.DataFrame:
    """Synthetic sweep: 3 h x 2 v partitionings, 3 wire resistances, 2 ADC kinds x 2 resolutions."""
    rng = np.random.default_rng(7)
    rows = []
    for h, v, r, bits, kind, seed in itertools.product(
            ["1-1", "2-1", "4-1"], ["1-1", "2-1"], [0.0, 1.0, 100.0], [4, 8], ["sar", "flash"],
            seeds):
        hs, vs = [int(a) for a in h.split("-")], [int(a) for a in v.split("-")]
        n_tiles = sum(a * b for a, b in zip(hs, vs))
        acc = 0.95 - 1e-3 * r / (hs[0] * vs[0]) - 0.2 * 2.0 ** -bits - 0.01 * (kind == "flash")
        rows.append(dict(h_partitions=h, v_partitions=v, r_row=r, r_col=r, adc_bits=bits,
                         adc_kind=kind, readout="tia", seed=seed, n_tiles=n_tiles,
                         accuracy=acc + 0.002 * rng.standard_normal(), digital_accuracy=0.96,
                         energy_per_inference=1e-9 * n_tiles * (1 + 0.1 * bits), status="ok"))
    rows.append(dict(rows[0], accuracy=np.nan, status="error"))
    df = pd.DataFrame(rows)
    for col, value in constant.items():
        df[col] = value
    return df


def labels(fig: Figure) -> list[str]:
    """Every non-empty x/y label of the figure's axes (colourbars included)."""
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel()) if t]


def unit_of(label: str) -> tuple[str, str]:
    """(prefix, unit) of a label ending in '(<prefix><unit>)'."""
    m = re.search(r"\((µ|m|n|)([A-Za-zΩ%]+)\)$", label)
    assert m, f"no unit in {label!r}"
    return m[1], m[2]


@pytest.fixture(scope="module")
def sweep():
    return fake_sweep()


def test_style_is_shipped_and_applied():
    import matplotlib as mpl

    before = mpl.rcParams["font.size"]
    with plots.paper_style():
        assert mpl.rcParams["font.size"] == 8
        assert mpl.rcParams["pdf.fonttype"] == 42
        assert mpl.rcParams["figure.figsize"][0] == pytest.approx(plots.COLUMN_WIDTH)
    assert mpl.rcParams["font.size"] == before


def test_accuracy_vs_partitions(sweep):
    fig = plots.accuracy_vs_partitions(sweep)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() == "Accuracy (%)"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    tiles = [float(re.search(r"\((\S+)\)$", t)[1]) for t in ticks]
    assert len(ticks) == 6 and tiles == sorted(tiles)
    # the point of "1-1 / 1-1" is its mean over everything else, in percent
    ok = sweep[sweep.status == "ok"]
    want = 100 * ok[(ok.h_partitions == "1-1") & (ok.v_partitions == "1-1")].accuracy.mean()
    accuracy_line = ax.containers[0].lines[0]
    assert accuracy_line.get_ydata()[ticks.index("1-1 / 1-1 (2)")] == pytest.approx(want)
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert dashed and np.allclose(dashed[0].get_ydata(), 96.0)


def test_partition_heatmap(sweep):
    fig = plots.partition_heatmap(sweep, layer=0)
    ax, cbar = fig.axes
    assert "Horizontal" in ax.get_ylabel() and "Vertical" in ax.get_xlabel()
    assert unit_of(cbar.get_ylabel()) == ("", "%")
    z = ax.images[0].get_array()
    assert z.shape == (3, 2)  # h in {1, 2, 4} x v in {1, 2}
    ok = sweep[sweep.status == "ok"]
    sel = ok[ok.h_partitions.str.startswith("4-") & ok.v_partitions.str.startswith("2-")]
    assert z[2, 1] == pytest.approx(100 * sel.accuracy.mean())
    with pytest.raises(ConfigError, match="layer 5"):
        plots.partition_heatmap(sweep, layer=5)


def test_accuracy_vs_wire_resistance(sweep):
    fig = plots.accuracy_vs_wire_resistance(sweep, x="r_row")
    ax = fig.axes[0]
    assert unit_of(ax.get_xlabel()) == ("", "Ω") and ax.get_ylabel() == "Accuracy (%)"
    assert ax.get_xscale() == "symlog"  # 0, 1 and 100 ohm
    assert len(ax.containers) == 6  # one line per partitioning
    assert all(c.has_yerr for c in ax.containers)  # three seeds: error bars
    one_seed = plots.accuracy_vs_wire_resistance(sweep[sweep.seed == 0], by=None)
    assert not one_seed.axes[0].containers[0].has_yerr


def test_accuracy_vs_adc_bits(sweep):
    fig = plots.accuracy_vs_adc_bits(sweep)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ADC resolution (bits)" and ax.get_ylabel() == "Accuracy (%)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"sar", "flash", "Digital"} <= set(legend)
    with pytest.raises(ConfigError, match="adc_bits"):
        plots.accuracy_vs_adc_bits(sweep.drop(columns="adc_bits"))


def test_pareto_mask_known_set():
    x = [1, 2, 3, 2, 4, 1, 5]
    y = [0.5, 0.7, 0.9, 0.6, 0.8, 0.5, 0.9]
    # (2, .6) is beaten by (2, .7); (4, .8) and (5, .9) by (3, .9); the twin (1, .5) stays
    assert plots.pareto_mask(x, y).tolist() == [True, True, True, False, False, True, False]


def test_pareto_mask_matches_brute_force(rng):
    x, y = rng.integers(0, 6, 200).astype(float), rng.integers(0, 6, 200).astype(float)
    dominated = [np.any((x <= x[k]) & (y >= y[k]) & ((x < x[k]) | (y > y[k])))
                 for k in range(x.size)]
    assert plots.pareto_mask(x, y).tolist() == [not d for d in dominated]


def test_pareto_front(sweep):
    fig = plots.pareto_front(sweep)
    ax = fig.axes[0]
    assert unit_of(ax.get_xlabel()) == ("n", "J") and ax.get_ylabel() == "Accuracy (%)"
    front = next(ln for ln in ax.get_lines() if ln.get_label() == "Pareto front")
    dominated = next(ln for ln in ax.get_lines() if ln.get_label() == "Dominated")
    fx, fy = front.get_xdata(), front.get_ydata()
    assert np.all(np.diff(fx) >= 0) and np.all(np.diff(fy) > 0)  # a staircase up
    # every dominated point has a front point at least as cheap and as accurate
    for px, py in zip(dominated.get_xdata(), dominated.get_ydata()):
        assert np.any((fx <= px) & (fy >= py))
    assert len(fx) + len(dominated.get_xdata()) == 6 * 3 * 2 * 2  # configurations


def _image_volts(fig: Figure):
    """The two panels' images (in volts) and their colourbar labels."""
    images = [ax.images[0] for ax in fig.axes if ax.images]
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.images]
    volts = []
    for im, label in zip(images, bars):
        prefix, unit = unit_of(label)
        assert unit == "V"
        volts.append(np.asarray(im.get_array()) * PREFIX[prefix])
    return volts, bars


def test_ir_drop_map_from_native_simulation(rng):
    tile = Tile(rng.uniform(1e-6, 100e-6, (6, 4)), r_row=2.0, r_col=3.0, r_driver=10.0)
    v = rng.uniform(0.1, 0.3, 6)
    result = simulate(tile, v)
    fig = plots.ir_drop_map(result)
    assert isinstance(fig, Figure)
    (wl, bl), bars = _image_volts(fig)
    op = result.operating_point
    want_wl = op.voltage([f"wl{i}_{j}" for i in range(6) for j in range(4)]).reshape(6, 4)
    want_bl = op.voltage([f"bl{i}_{j}" for i in range(6) for j in range(4)]).reshape(6, 4)
    assert wl == pytest.approx(want_wl, rel=1e-12) and bl == pytest.approx(want_bl, rel=1e-12)
    assert np.all(wl < v[:, None]) and np.all(bl > 0)  # drops along the wires
    assert all(ax.get_xlabel() == "Column" for ax in fig.axes if ax.images)
    # an operating point works as well; the word-line drop is V(in) - V(wl)
    (drop, _), _ = _image_volts(plots.ir_drop_map(op, 6, 4, drop=True))
    assert drop == pytest.approx(v[:, None] - want_wl, rel=1e-9)


def test_ir_drop_map_merged_word_lines(rng):
    tile = Tile(rng.uniform(1e-6, 100e-6, (3, 5)), r_row=0.0, r_col=1.0)
    v = np.array([0.1, 0.2, 0.3])
    (wl, _), _ = _image_volts(plots.ir_drop_map(simulate(tile, v)))
    assert wl == pytest.approx(np.repeat(v[:, None], 5, axis=1))
    with pytest.raises(ConfigError, match="operating point"):
        plots.ir_drop_map(object())


def test_adc_transfer_and_linearity():
    adc = ADC(ADCConfig.preset("sar", bits=4), n_columns=2)
    fig = plots.adc_transfer(adc, columns=[0, 1])
    ax = fig.axes[0]
    assert unit_of(ax.get_xlabel()) == ("", "V") and ax.get_ylabel() == "Output code"
    assert len(ax.patches) == 3  # two columns and the ideal staircase
    cco = ADC(ADCConfig.preset("cco", bits=4, v_max=20e-6))
    assert unit_of(plots.adc_transfer(cco).axes[0].get_xlabel()) == ("µ", "A")
    lin = linearity_from_transitions(adc.thresholds[0])
    fig = plots.adc_linearity(lin)
    assert [ax.get_ylabel() for ax in fig.axes] == ["DNL (LSB)", "INL (LSB)"]
    assert fig.axes[1].get_xlabel() == "Output code"


def test_save_figure_writes_pdf_and_png(tmp_path, sweep):
    fig = plots.accuracy_vs_adc_bits(sweep)
    paths = plots.save_figure(fig, tmp_path / "new" / "folder", "bits")
    assert [p.name for p in paths] == ["bits.pdf", "bits.png"]
    pdf, png = (p.read_bytes() for p in paths)
    assert pdf.startswith(b"%PDF") and png.startswith(b"\x89PNG")
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf  # TrueType (type 42) fonts
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == ["bits.pdf",
                                                                             "bits.png"]


def _small_sweep():
    """Two wire resistances (r_col = r_row), one ADC: few figures, quick to render."""
    df = fake_sweep(seeds=(0, 1))
    return df[(df.adc_kind == "sar") & (df.adc_bits == 8) & (df.r_row != 1.0)]


def test_plot_results_makes_what_the_columns_allow(tmp_path):
    _small_sweep().to_csv(tmp_path / "results.csv", index=False)
    files = plots.plot_results(tmp_path)
    names = {p.name for p in files}
    # r_row is not shown by the partition plots: one figure per value (r_col follows r_row)
    stems = {"accuracy_vs_partitions--r_row=0", "accuracy_vs_partitions--r_row=100",
             "partition_heatmap_layer0--r_row=0", "partition_heatmap_layer0--r_row=100",
             "accuracy_vs_r_row", "pareto_energy_accuracy"}
    assert names == {f"{s}.{e}" for s in stems for e in ("pdf", "png")}
    assert all(p.parent == tmp_path / "plots" and p.stat().st_size > 0 for p in files)


def test_plot_results_skips_absent_and_constant_columns(tmp_path):
    df = fake_sweep(seeds=(0,), r_row=2.5, r_col=2.5).drop(
        columns=["adc_bits", "energy_per_inference"])
    df = df[df.adc_kind == "sar"]
    df.to_csv(tmp_path / "results.csv", index=False)
    names = {p.name for p in plots.plot_results(tmp_path)}
    assert names == {f"{s}.{e}" for s in ("accuracy_vs_partitions", "partition_heatmap_layer0")
                     for e in ("pdf", "png")}
    with pytest.raises(ConfigError, match="results.csv"):
        plots.plot_results(tmp_path / "missing")


def test_no_silent_average_over_an_axis_a_figure_does_not_show(sweep):
    from circuitsim.plots.results import _facets

    # what a figure of partitions would average over, named on it
    assert plots.hidden_axes(sweep, ["h_partitions", "v_partitions"]) == ["r_row", "r_col", "adc_bits", "adc_kind"]
    fig = plots.accuracy_vs_partitions(sweep)
    assert "mean over r_row (3 values)" in fig.axes[0].get_title(loc="left")
    # one figure per value when there are few; each holds one configuration per mark
    facets = _facets(sweep, plots.hidden_axes(sweep, ["h_partitions", "v_partitions"]))
    assert len(facets) == 12 and facets[0][0] == "--r_row=0_adc_bits=4_adc_kind=flash"  # r_col follows r_row
    for _, part in facets:
        assert not plots.hidden_axes(part, ["h_partitions", "v_partitions"])
    assert not plots.accuracy_vs_partitions(facets[0][1]).axes[0].get_title(loc="left")
    # more combinations than MAX_FACETS: one figure, which says what it averages
    assert _facets(sweep, plots.hidden_axes(sweep, ["adc_bits", "adc_kind"]))[0][0] == ""
    assert "mean over h_partitions" in plots.accuracy_vs_adc_bits(sweep).axes[0].get_title(loc="left")


def test_heatmap_cells_are_single_partitionings(tmp_path):
    """Amin et al.'s sweep: layers 1-2 meet at h = v = 2 for two partitionings (10.2 % and
    13.9 %); no heat-map cell shows their mean."""
    rows = [("1-1-1", "1-1-1", 0.100), ("2-1-1", "2-1-1", 0.100), ("4-2-2", "2-2-1", 0.102),
            ("7-2-2", "2-2-1", 0.139), ("13-4-3", "4-3-1", 0.782), ("13-4-4", "8-4-1", 0.880),
            ("16-8-8", "8-8-1", 0.899)]
    pd.DataFrame([dict(h_partitions=h, v_partitions=v, accuracy=a, status="ok") for h, v, a in rows]).to_csv(
        tmp_path / "results.csv", index=False)
    files = plots.plot_results(tmp_path)
    heatmaps = {p.stem for p in files if "heatmap" in p.name}
    assert heatmaps == {"partition_heatmap_layer0--others=1-1_1-1"}  # 1-1-1 and 2-1-1: a grid of single points
    df = pd.read_csv(tmp_path / "results.csv")
    fig = plots.partition_heatmap(df, layer=1)  # asked for directly: it says what a cell averages
    assert "mean over h_partitions" in fig.axes[0].get_title(loc="left")


def test_pareto_points_are_designs_labelled(sweep):
    ax = plots.pareto_front(sweep).axes[0]
    front = next(ln for ln in ax.get_lines() if ln.get_label() == "Pareto front")
    names = [t.get_text() for t in ax.texts]
    assert len(names) == len(front.get_xdata()) and all(re.match(r"\d[-\d]*/\d[-\d]*, ", n) for n in names)
    assert not any("r_col" in n for n in names)  # r_col follows r_row: not repeated


def test_import_circuitsim_does_not_import_matplotlib():
    code = ("import sys, circuitsim; a = 'matplotlib' in sys.modules; "
            "import circuitsim.plots; print(a, 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # and plots never needs pyplot


def test_the_energy_breakdown_stacks_the_parts_to_the_total(tmp_path):
    df = fake_sweep(seeds=(0, 1))
    bits = df["adc_bits"].to_numpy(float)
    df["adc_energy"] = 1e-10 * bits
    df["dac_energy"] = 2e-11
    df["digital_energy"] = 1e-12 * bits
    df["crossbar_energy"] = df["energy_per_inference"] - df[["adc_energy", "dac_energy", "digital_energy"]].sum(axis=1)
    ax = plots.energy_breakdown(df).axes[0]
    tops = {}
    for bar in ax.patches:  # the stacks: the top of each is its design's total
        x = round(bar.get_x(), 6)
        tops[x] = max(tops.get(x, 0.0), bar.get_y() + bar.get_height())
    ok = df[df["status"] == "ok"]
    designs = ok.groupby(["h_partitions", "v_partitions", "r_row", "r_col", "adc_bits", "adc_kind", "readout"])
    totals = np.sort(designs["energy_per_inference"].mean().to_numpy()) * 1e9  # nJ
    assert ax.get_ylabel() == "Energy per inference (nJ)"
    np.testing.assert_allclose(np.sort(list(tops.values())), totals, rtol=1e-9)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Crossbar", "ADC", "DAC", "Shift-add"]
    df.to_csv(tmp_path / "results.csv", index=False)
    assert {p.name for p in plots.plot_results(tmp_path)} >= {"energy_breakdown.pdf", "energy_breakdown.png"}
