"""The architecture around the array (issue 26): inputs through a DAC, sliced weights, shared ADCs.

The exactness gate: with ideal wires, an ideal ADC of enough bits and an amplitude (or
bit-serial) DAC, a layer whose ``weight_bits``-bit weights are sliced over 2- or 4-level cells
computes the integer product of the input codes and the ``weight_bits``-bit weights to the last
bit. The reference is written here from the definitions (``q = round(w / s · (2**N - 1))``,
codes ``k`` of inputs ``k / (2**b - 1)``), not from circuitsim's slicing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.devices import Device
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.layers import Dense
from circuitsim.network.adc_calibration import convert
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition, weight_slices
from circuitsim.network.network import Network
from circuitsim.periphery.adc import ADC, ADCConfig
from circuitsim.periphery.costs import ISAAC_COSTS, cost_preset
from circuitsim.periphery.dac import DACConfig
from circuitsim.study.spec import parse_spec
from circuitsim.tile.tile_cache import TileCache

N_IN, N_OUT = 40, 12


def _layer(seed: int = 0) -> tuple[Network, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w, b = rng.uniform(-1, 1, (N_IN, N_OUT)), rng.uniform(-0.5, 0.5, N_OUT)
    return Network([Dense(w, b)], (N_IN,)), w, b


def _codes(bits: int, n: int, seed: int = 1) -> np.ndarray:
    """Input codes ``k`` (integers 0 .. 2**bits - 1); the first row all at full scale."""
    k = np.random.default_rng(seed).integers(0, 1 << bits, (n, N_IN))
    k[0] = (1 << bits) - 1
    return k


def _integer_layer(w: np.ndarray, b: np.ndarray, k: np.ndarray, weight_bits: int, dac_bits: int) -> np.ndarray:
    """The integer products of codes ``k`` with the ``weight_bits``-bit weights (the bias row
    driven at full scale, the code ``2**dac_bits - 1``)."""
    s = max(np.abs(w).max(), np.abs(b).max())
    top = (1 << weight_bits) - 1
    qw, qb = np.rint(w / s * top).astype(np.int64), np.rint(b / s * top).astype(np.int64)
    return k @ qw + ((1 << dac_bits) - 1) * qb


def _recovered(mapped, k: np.ndarray, w: np.ndarray, b: np.ndarray, weight_bits: int, dac_bits: int,
               use_adc: bool = True) -> np.ndarray:
    """The mapped layer's outputs in integer units of the quantized product."""
    x = k / ((1 << dac_bits) - 1)
    out = mapped.forward(x, use_adc=use_adc, energy=False)[0]
    s = max(np.abs(w).max(), np.abs(b).max())
    return out / s * ((1 << weight_bits) - 1) * ((1 << dac_bits) - 1)


def _integer_adcs(mapped, unit: float):
    """The mapping with every tile's ADC an ideal 14-bit one whose codes are the integer
    multiples of ``unit`` (an ADC of enough bits counting the slices' integer partial sums)."""
    layer = mapped.crossbars[0]
    half = 1 << 13
    config = ADCConfig(bits=14, kind="ideal", v_min=-(half + 0.5) * unit, v_max=(half - 0.5) * unit)
    blocks = tuple(dataclasses.replace(bl, adc=ADC(config, bl.outs.stop - bl.outs.start)) for bl in layer.blocks)
    return dataclasses.replace(mapped, crossbars=(dataclasses.replace(layer, blocks=blocks),))


@pytest.mark.parametrize("levels, weight_bits, kind", [(2, 4, "amplitude"), (2, 8, "bit-serial"),
                                                       (4, 8, "amplitude"), (4, 5, "bit-serial")])
def test_a_sliced_layer_computes_the_n_bit_layer_to_the_last_bit(levels, weight_bits, kind):
    net, w, b = _layer()
    dac_bits = 4
    device = Device(8.49e3, 25.46e3, levels)
    circuit = CircuitConfig(device=device, weight_bits=weight_bits, dac=DACConfig(kind, dac_bits),
                            adc=ADCConfig.preset("ideal", bits=14))
    k = _codes(dac_bits, 300)
    x_cal = k / ((1 << dac_bits) - 1)  # the ADC ranges cover every partial sum: no clipping
    mapped = map_network(net, (Partition(2, 2),), circuit, TileCache(), x_calibration=x_cal)
    slices = weight_slices(weight_bits, levels)
    assert slices == -(-weight_bits // int(np.log2(levels)))
    assert mapped.n_tiles == 4 and mapped.crossbars[0].n_columns == N_OUT * slices
    exact = _integer_layer(w, b, k, weight_bits, dac_bits)
    # a slice's partial sums are integer multiples of one code step times one cell level
    unit = (1 / ((1 << dac_bits) - 1) if kind == "amplitude" else 1.0) / (levels - 1)
    for use_adc, case in ((False, mapped), (True, _integer_adcs(mapped, unit))):
        got = _recovered(case, k, w, b, weight_bits, dac_bits, use_adc)
        error = np.abs(got - exact).max()
        assert error < 1e-9 * np.abs(exact).max(), (use_adc, error)
        np.testing.assert_array_equal(np.rint(got).astype(np.int64), exact)
    # the calibrated 14-bit ADCs (ranges from the partial sums): each slice's own conversions
    got = _recovered(mapped, k, w, b, weight_bits, dac_bits)
    assert 0 < np.abs(got - exact).max() < 0.01 * np.abs(exact).max()
    assert all(bl.adc is not None and bl.adc.n_columns == (bl.outs.stop - bl.outs.start)
               for bl in mapped.crossbars[0].blocks)


def test_unsliced_cells_of_enough_levels_give_the_same_integers():
    """One 16-level cell per weight (``weight_bits = 4``, one slice) and four 2-level slices
    compute the same 4-bit layer (no DAC: the inputs are already on the 4-bit grid)."""
    net, w, b = _layer(3)
    k = _codes(4, 120, seed=5)
    for levels in (2, 16):
        circuit = CircuitConfig(device=Device(8.49e3, 25.46e3, levels), weight_bits=4)
        mapped = map_network(net, (Partition(),), circuit, TileCache())
        assert mapped.crossbars[0].n_columns == N_OUT * weight_slices(4, levels)
        got = _recovered(mapped, k, w, b, 4, 4)
        np.testing.assert_allclose(got, _integer_layer(w, b, k, 4, 4), rtol=0, atol=1e-9)


def test_the_default_refuses_a_word_line_above_the_allowed_read_voltage_and_a_dac_clips_it():
    net, _, _ = _layer()
    device = Device(8.49e3, 25.46e3, 2, v_read_max=0.8)
    x = np.random.default_rng(2).uniform(0, 1, (50, N_IN))
    mapped = map_network(net, (Partition(),), CircuitConfig(device=device), TileCache())
    mapped.forward(x)  # activations <= 1: word lines <= v_read = 0.8 V
    with pytest.raises(ConfigError, match=r"1\.6 V, above the device's allowed read voltage 0\.8 V"):
        mapped.forward(2 * x[:1] / x[:1].max())
    circuit = CircuitConfig(device=device, dac=DACConfig("amplitude", 6, v_max=0.5))
    mapped = map_network(net, (Partition(),), circuit, TileCache(), x_calibration=x)
    assert mapped.crossbars[0].dac.full_scale == pytest.approx(1.0, abs=0.02)
    mapped.reset_dac()
    big = x.copy()
    big[:5, :4] = 3.0  # 20 activations beyond the full scale
    mapped.forward(big, energy=False)
    assert mapped.dac_clipped == pytest.approx(20 / big.size)
    # word lines at most 0.5 V: less crossbar energy than at h · 0.8 V
    plain = map_network(net, (Partition(),), CircuitConfig(), TileCache())
    assert mapped.forward(x)[1] < 0.5 * plain.forward(x)[1]


def test_bit_serial_and_amplitude_inputs_agree_and_cost_cycles():
    net, _, _ = _layer(4)
    x = np.random.default_rng(3).uniform(-0.3, 1, (60, N_IN))  # signed: two's complement bit planes
    adc = ADCConfig.preset("ideal", bits=12)
    out, maps = [], []
    for kind in ("amplitude", "bit-serial"):
        mapped = map_network(net, (Partition(),), CircuitConfig(dac=DACConfig(kind, 5), adc=adc), TileCache(),
                             x_calibration=x)
        assert mapped.crossbars[0].dac.signed
        out.append(mapped.forward(x, use_adc=False, energy=False)[0])
        maps.append(mapped)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12, atol=1e-12)
    assert maps[1].conversions_per_inference == 6 * maps[0].conversions_per_inference  # 5 bits + the bias row
    assert maps[1].latency()["latency"] > 5 * maps[0].latency()["latency"]


def test_shared_adcs_share_their_mismatch_and_take_longer():
    net, _, _ = _layer(5)
    x = np.random.default_rng(6).uniform(0, 1, (80, N_IN))
    latencies = {}
    for share in (1, 4):
        adc = ADCConfig.preset("sar", bits=6, noise_sigma=0.0, columns_per_adc=share)
        mapped = map_network(net, (Partition(),), CircuitConfig(adc=adc), TileCache(), x_calibration=x)
        block = mapped.crossbars[0].blocks[0]
        assert block.adc.n_columns == -(-N_OUT // share)
        same = np.repeat(np.linspace(-1, 1, 64)[:, None] * block.adc.config.v_max, N_OUT, axis=1)
        codes = convert(block.adc, same)
        assert (codes[:, 0] == codes[:, 1]).all() == (share > 1)  # one converter, one transfer
        latencies[share] = mapped.latency()["latency"]
    assert latencies[4] > latencies[1]


def test_the_energy_breakdown_and_the_area_count_every_part_from_the_sourced_tables():
    """One Dense layer 40 → 12 (bias: 41 rows) on 2 × 3 tiles, 6-bit ADCs shared by 2 columns, a 5-bit
    input stage: every part counted by hand from ISAAC's and NeuroSim's figures."""
    net, _, _ = _layer(7)
    x = np.random.default_rng(8).uniform(0, 1, (30, N_IN))
    adc = ADCConfig.preset("sar", bits=6, noise_sigma=0.0, columns_per_adc=2)
    costs = ISAAC_COSTS
    assert costs.adc_area_at(8) == pytest.approx(1200e-12) and costs.dac_bit_energy == pytest.approx(0.39e-12, rel=0.01)
    assert costs.cell_area == pytest.approx(4 * 32e-9 ** 2) and costs.shift_add_energy == pytest.approx(19.5e-15, rel=0.01)
    for kind, per_line, cycles in (("amplitude", 5, 1), ("bit-serial", 1, 6)):  # bit-serial: 5 bits + the bias row
        mapped = map_network(net, (Partition(2, 3),), CircuitConfig(adc=adc, dac=DACConfig(kind, 5)), TileCache(),
                             x_calibration=x)
        energy = mapped.energy_per_inference(x)
        parts = ("crossbar_energy", "adc_energy", "dac_energy", "digital_energy")
        assert energy["energy_per_inference"] == pytest.approx(sum(energy[p] for p in parts), rel=1e-12)
        conversions = 2 * N_OUT * cycles  # every output of each of the 2 row pieces, every cycle
        assert mapped.conversions_per_inference == conversions
        assert energy["digital_energy"] == pytest.approx(conversions * costs.shift_add_energy)
        assert energy["dac_energy"] == pytest.approx(3 * 41 * per_line * cycles * costs.dac_bit_energy)  # 3 column pieces
        area = mapped.area()
        adcs = 2 * 3 * 2  # 2 × 3 tiles of 4 outputs, 2 columns per ADC
        assert area["area_cells"] == pytest.approx(41 * 2 * N_OUT * costs.cell_area)
        assert area["area_adc"] == pytest.approx(adcs * costs.adc_area_at(6))
        assert area["area_dac"] == pytest.approx(3 * 41 * per_line * costs.dac_bit_area)
        assert area["area_shift_add"] == pytest.approx(adcs / 2 * costs.shift_add_area)
        assert area["area"] == pytest.approx(area["area_layer1"]) == pytest.approx(
            sum(area[k] for k in ("area_cells", "area_adc", "area_dac", "area_shift_add")))
    one_t_one_r = mapped.area(cost_preset("isaac-32nm-1t1r"))
    assert one_t_one_r["area_cells"] == pytest.approx(12 * area["area_cells"])
    plain = map_network(net, (Partition(),), CircuitConfig(), TileCache()).energy_per_inference(x)
    assert plain["dac_energy"] == plain["digital_energy"] == plain["adc_energy"] == 0.0  # the default: as before
    assert plain["energy_per_inference"] == plain["crossbar_energy"] > 0


@pytest.mark.parametrize("changes, message", [
    (dict(cell_area_f2=0), "costs cell_area_f2 must be a finite number > 0, got 0"),
    (dict(adc_area=(1e-9,)), "costs adc_area (m²): a table needs at least two entries"),
    (dict(adcs_per_shift_add=0), "costs adcs_per_shift_add must be an integer >= 1, got 0"),
])
def test_a_bad_cost_table_is_one_line(changes, message):
    with pytest.raises(ConfigError) as info:
        ISAAC_COSTS.replace(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="unknown cost table 'tsmc'; choose one of isaac-32nm"):
        cost_preset("tsmc")


SPEC = """
[dataset]
name = "digits"
side = 8
[network]
layers = [64, 16, 10]
epochs = 1
{extra}
"""


@pytest.mark.parametrize("extra, message", [
    ("[mapping]\nweight_bits = 0", "weight_bits must be an integer 1 .. 16, got 0"),
    ("[device]\npreset = \"mram-imac\"\nv_read_max = 0.3\n[dac]\nkind = \"amplitude\"\nv_max = 0.5",
     "v_max = 0.5 V is above the device's allowed read voltage 0.3 V"),
    ("[device]\npreset = \"mram-imac\"\nv_read_max = 0.3", "v_read = 0.8 V is above the device's allowed read"),
    ("[adc]\nbits = 6\ncolumns_per_adc = 11\n[sweep]\npartitions = [{h = [1, 1], v = [2, 1]}]",
     "columns_per_adc = 11 is more than the widest tile's 10 columns"),
    ("[mapping]\nweight_bits = 8\n[sweep]\npartitions = [{auto = 4}]",
     "takes 8 slice columns per output, more than a tile's 4 columns allow"),
    ("[dac]\nbits = 4", "[dac] bits is ignored with kind = \"none\""),
    ("[dac]\nkind = \"pulse\"", "dac.kind must be one of none, amplitude, bit-serial"),
])
def test_impossible_designs_are_refused_in_one_line_before_anything_runs(extra, message):
    with pytest.raises(ConfigError) as info:
        parse_spec(SPEC.format(extra=extra))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_specs_without_the_new_sections_keep_their_points():
    points = parse_spec(SPEC.format(extra="")).points()
    assert "dac" not in points[0].config and "mapping" not in points[0].config
    sliced = parse_spec(SPEC.format(extra="[mapping]\nweight_bits = 4\n[sweep]\npartitions = [{auto = 8}]")).points()
    assert [(p.h, p.v) for p in sliced[0].partitions] == [(9, 8), (3, 5)]  # 8 columns: 2 outputs of 4 slices


def test_the_architecture_page_spec_runs(tmp_path):
    """The spec of docs/tutorials/architecture.md, on its smoke run."""
    from pathlib import Path

    import pandas as pd

    from circuitsim.study.smoke import smoke_text
    from circuitsim.study.sweep import run_sweep

    page = (Path(__file__).parents[1] / "docs" / "tutorials" / "architecture.md").read_text()
    text = page.split("```toml\n")[1].split("```")[0]
    run_sweep(parse_spec(smoke_text(text)), tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda s: None)
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (rows["status"] == "ok").all(), rows["error"].tolist()
    assert set(rows["dac_kind"]) == {"amplitude", "bit-serial"} and (rows["weight_bits"] == 4).all()
    serial, amplitude = (rows[rows["dac_kind"] == k].iloc[0] for k in ("bit-serial", "amplitude"))
    assert serial["conversions_per_inference"] == 7 * amplitude["conversions_per_inference"]
    assert serial["latency"] > amplitude["latency"] > 0 and 0 <= amplitude["dac_clipped"] < 0.5
    parts = rows[["crossbar_energy", "adc_energy", "dac_energy", "digital_energy"]].sum(axis=1)
    np.testing.assert_allclose(rows["energy_per_inference"], parts, rtol=1e-12)
    assert (rows["area"] > rows["area_cells"]).all() and (rows["area_dac"] > 0).all()


# The offset scheme ([mapping] negative = "offset"): one cell per weight and slice at an offset
# conductance, a reference column per tile whose ADC code is subtracted from every column's.
# Reference: u = round((w / s + 1) / 2 · top), the weight (2 u - top) / top; written here from
# that definition, not from circuitsim's mapping. The test device has g_max = 3 g_min, so that
# the common-mode current of a column (g_min per unit input) is half a cell step: every column
# reading is an integer multiple of a unit an ADC can count.
OFFSET_DEVICE = (10e3, 30e3)


def _offset_layer(w: np.ndarray, b: np.ndarray, k: np.ndarray, top: int, dac_bits: int) -> np.ndarray:
    """Twice the integer products of codes ``k`` with the offset weights ``(2 u - top) / top``,
    in units of ``1 / top`` (the bias row driven at the full-scale code)."""
    s = max(np.abs(w).max(), np.abs(b).max())
    uw, ub = (np.rint((v / s + 1) / 2 * top).astype(np.int64) for v in (w, b))
    return k @ (2 * uw - top) + ((1 << dac_bits) - 1) * (2 * ub - top)


def _unit_adcs(mapped, unit: float):
    """Every tile's ADC an ideal 16-bit one whose codes are the integer multiples of ``unit``,
    converting the tile's columns and its reference column."""
    layer = mapped.crossbars[0]
    half = 1 << 15
    config = ADCConfig(bits=16, kind="ideal", v_min=-(half + 0.5) * unit, v_max=(half - 0.5) * unit)
    blocks = tuple(dataclasses.replace(bl, adc=ADC(config, bl.n_columns)) for bl in layer.blocks)
    return dataclasses.replace(mapped, crossbars=(dataclasses.replace(layer, blocks=blocks),))


@pytest.mark.parametrize("levels, weight_bits, kind", [(2, None, "amplitude"), (2, 4, "amplitude"),
                                                       (2, 8, "bit-serial"), (4, 8, "amplitude"),
                                                       (4, 5, "bit-serial"), (16, 4, "bit-serial")])
def test_an_offset_layer_computes_the_quantized_layer_to_the_last_bit(levels, weight_bits, kind):
    from fractions import Fraction
    from math import lcm

    net, w, b = _layer(11)
    dac_bits = 4
    circuit = CircuitConfig(device=Device(*OFFSET_DEVICE, levels), weight_bits=weight_bits, negative="offset",
                            dac=DACConfig(kind, dac_bits), adc=ADCConfig.preset("ideal", bits=14))
    assert circuit.device.g_min / (circuit.device.g_max - circuit.device.g_min) == pytest.approx(0.5)
    k = _codes(dac_bits, 300, seed=12)
    mapped = map_network(net, (Partition(2, 2),), circuit, TileCache(), x_calibration=k / ((1 << dac_bits) - 1))
    slices = 1 if weight_bits is None else weight_slices(weight_bits, levels)
    top = levels - 1 if weight_bits is None else (1 << weight_bits) - 1
    layer = mapped.crossbars[0]
    assert layer.n_columns == N_OUT * slices and mapped.n_tiles == 4
    for bl in layer.blocks:  # one cell per slice column, and the reference column
        assert bl.conductances.shape == (bl.rows.stop - bl.rows.start, bl.outs.stop - bl.outs.start + 1)
        assert bl.adc.n_columns == bl.n_columns == bl.outs.stop - bl.outs.start + 1
    exact = _offset_layer(w, b, k, top, dac_bits)
    # the readings: 1/2 (common mode), d / (levels - 1) and the reference level top / (2 (levels**S - 1))
    reference = Fraction(top, 2 * (levels ** slices - 1))
    step = (Fraction(1, (1 << dac_bits) - 1) if kind == "amplitude" else 1) / lcm(2, levels - 1, reference.denominator)
    s = max(np.abs(w).max(), np.abs(b).max())
    for use_adc, case in ((False, mapped), (True, _unit_adcs(mapped, float(step)))):
        out = case.forward(k / ((1 << dac_bits) - 1), use_adc=use_adc, energy=False)[0]
        got = out / s * top * ((1 << dac_bits) - 1)
        assert np.abs(got - exact).max() < 1e-9 * np.abs(exact).max(), use_adc
        np.testing.assert_array_equal(np.rint(got).astype(np.int64), exact)
    # the calibrated 14-bit ADCs convert the columns' whole currents: close, not exact
    got = mapped.forward(k / ((1 << dac_bits) - 1), energy=False)[0] / s * top * ((1 << dac_bits) - 1)
    assert 0 < np.abs(got - exact).max() < 0.01 * np.abs(exact).max()


def test_the_offset_scheme_halves_the_cells_and_adds_a_reference_conversion_per_tile():
    """One Dense layer 40 → 12 on 2 × 3 tiles, 4-bit weights on binary cells, 6-bit ADCs."""
    net, w, b = _layer(7)
    x = np.random.default_rng(8).uniform(0, 1, (30, N_IN))
    adc = ADCConfig.preset("sar", bits=6, noise_sigma=0.0)
    maps = {negative: map_network(net, (Partition(2, 3),), CircuitConfig(adc=adc, weight_bits=4, negative=negative),
                                  TileCache(), x_calibration=x) for negative in ("differential", "offset")}
    pair, offset = maps["differential"], maps["offset"]
    assert pair.crossbars[0].n_columns == offset.crossbars[0].n_columns == 4 * N_OUT  # slice columns
    assert pair.area()["area_cells"] == pytest.approx(41 * 2 * 4 * N_OUT * ISAAC_COSTS.cell_area)
    assert offset.area()["area_cells"] == pytest.approx(41 * (4 * N_OUT + 3) * ISAAC_COSTS.cell_area)  # 3 references
    assert offset.conversions_per_inference == pair.conversions_per_inference + 2 * 3  # one per tile
    assert offset.area()["area_adc"] == pytest.approx(2 * 3 * (16 + 1) * ISAAC_COSTS.adc_area_at(6))
    energy = offset.energy_per_inference(x)
    assert energy["adc_energy"] > pair.energy_per_inference(x)["adc_energy"] > 0
    for bl in offset.crossbars[0].blocks:  # columns read on their own, currents >= 0: unipolar ADCs
        config = bl.adc.config
        assert config.v_min == pytest.approx(-config.lsb / 2) and config.v_max > 0
    assert all(bl.adc.config.v_min + bl.adc.config.v_max == pytest.approx(bl.adc.config.lsb)
               for bl in pair.crossbars[0].blocks)  # pairs: mid-tread, symmetric
    # without ADCs both compute the layer within their weight steps: 1/15 (pairs), 2/15 (offset)
    s = max(np.abs(w).max(), np.abs(b).max())
    bound = (0.5 / 15 + 1 / 15) * s * (x.sum(axis=1) + 1)[:, None]
    gap = np.abs(offset.forward(x, use_adc=False, energy=False)[0] - pair.forward(x, use_adc=False, energy=False)[0])
    assert (gap <= bound).all() and gap.max() > 0


@pytest.mark.ngspice
def test_offset_and_differential_tiles_agree_with_ngspice_and_differ_with_wires():
    """A small layer (6 inputs, 4 outputs, bias) on one tile with wires: its effective weights
    from the native engine and from ngspice (the reference column is one more column of the
    deck), offset and differential."""
    from circuitsim.devices import Wires

    rng = np.random.default_rng(13)
    w, b = rng.uniform(-1, 1, (6, 4)), rng.uniform(-0.5, 0.5, 4)
    net = Network([Dense(w, b)], (6,))
    weights = {}
    for negative in ("differential", "offset"):
        for engine in ("native", "ngspice"):
            circuit = CircuitConfig(device=Device(*OFFSET_DEVICE, 16), wires=Wires(r_row=50.0, r_col=50.0),
                                    negative=negative, engine=engine)
            weights[negative, engine] = map_network(net, (Partition(),), circuit, TileCache()).crossbars[0].weights
        np.testing.assert_allclose(weights[negative, "ngspice"], weights[negative, "native"], rtol=1e-6, atol=1e-9)
    ideal = {n: map_network(net, (Partition(),), CircuitConfig(device=Device(*OFFSET_DEVICE, 16), negative=n),
                            TileCache()).crossbars[0].weights for n in ("differential", "offset")}
    np.testing.assert_allclose(ideal["offset"], ideal["differential"], atol=1 / 15 + 1e-12)  # 16 vs 31 levels
    errors = {n: np.abs(weights[n, "native"] - ideal[n]).max() for n in ideal}
    assert errors["offset"] > 1e-3 and errors["differential"] > 1e-3 and errors["offset"] != errors["differential"]


@pytest.mark.parametrize("extra, message", [
    ("[mapping]\nnegative = \"offst\"", "mapping.negative must be one of differential, offset, got 'offst'"),
    ("[mapping]\nnegative = \"offset\"\n[device]\npreset = \"mram-imac\"\nread_noise = 0.01",
     "negative = \"offset\" is not modelled with read noise"),
    ("[mapping]\nnegative = \"offset\"\n[circuit]\ntopology = \"imac-sim\"",
     "negative = \"offset\" is not modelled with the imac-sim topology"),
    ("[mapping]\nnegative = \"offset\"\nweight_bits = 7\n[sweep]\npartitions = [{auto = 7}]",
     "takes 7 slice columns per output and a reference column, more than a tile's 7 columns allow"),
])
def test_a_bad_negative_scheme_is_one_line_before_anything_runs(extra, message):
    with pytest.raises(ConfigError) as info:
        parse_spec(SPEC.format(extra=extra))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_negative_is_a_sweep_and_search_axis_and_a_tile_keeps_a_column_for_its_reference(tmp_path):
    import pandas as pd

    from circuitsim.study.search import design_axes, run_search

    text = SPEC.format(extra="[mapping]\nweight_bits = 2\n[adc]\nbits = 6\n[sweep]\n"
                             "\"mapping.negative\" = [\"differential\", \"offset\"]\npartitions = [{auto = 8}]")
    spec = parse_spec(text)
    points = spec.points()
    assert [p.config["mapping"]["negative"] for p in points] == ["differential", "offset"]
    # 8 columns: 4 outputs of 2 slices; 3 and the reference column
    assert [(p.h, p.v) for p in points[0].partitions] == [(9, 4), (3, 3)]
    assert [(p.h, p.v) for p in points[1].partitions] == [(9, 6), (3, 4)]
    assert design_axes(spec) == {"mapping.negative": 2, "partitions": 1}
    result = run_search(spec, tmp_path / "out", ("accuracy", "area"), cache_dir=tmp_path / "cache", log=lambda s: None)
    rows = pd.read_csv(tmp_path / "out" / "results.csv").set_index("negative")
    assert result.method == "exhaustive" and (rows["status"] == "ok").all()
    # one cell per weight slice instead of two; more ADC conversions (a reference column per tile)
    assert 0.5 < rows.loc["offset", "area_cells"] / rows.loc["differential", "area_cells"] < 0.7
    assert rows.loc["offset", "conversions_per_inference"] > rows.loc["differential", "conversions_per_inference"]
