"""Random-conductance networks pruned instead of programmed (issue 16).

Small problems only: scikit-learn digits at 8 × 8, a 64-32-10 network, tiny tiles.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from circuitsim.devices import Device, device_preset, wire_preset
from circuitsim.device_statistics import DeviceStatistics
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mask_training import top_fraction
from circuitsim.network.random_weights import RandomNetworkConfig, build, draw_conductances
from circuitsim.network.realization import realize_conductances
from circuitsim.tile.tile_cache import TileCache
from circuitsim.study.spec import parse_spec
from circuitsim.study.sweep import run_sweep
from circuitsim.tile.crossbar import Tile, build_circuit
from circuitsim.tile.extract import characterize
from circuitsim.tile.netlist import write_netlist

DEVICE = dataclasses.replace(device_preset("rram-zhang2020"), levels=16)
LAYERS = (64, 32, 10)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=8, test_fraction=0.3)


def _config(**changes):
    return RandomNetworkConfig(**{"layers": LAYERS, "activation": "relu", "epochs": 20, **changes})


def test_draw_is_lognormal_around_the_set_state_and_reproducible_by_seed():
    config = _config(layers=(400, 200, 10), spread=0.4)
    first, again = draw_conductances(config, DEVICE), draw_conductances(config, DEVICE)
    other = draw_conductances(dataclasses.replace(config, seed=1), DEVICE)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.allclose(first[0], other[0])
    log = np.log(first[0] / DEVICE.g_max)
    assert abs(log.mean()) < 0.01 and log.std() == pytest.approx(0.4, rel=0.02)
    w = (first[0][:, 0::2] - first[0][:, 1::2]) / (DEVICE.g_max - DEVICE.g_min)
    assert abs(w.mean()) < 0.01 and (w > 0).mean() == pytest.approx(0.5, abs=0.01)  # signed weights


def test_the_cells_are_the_same_under_any_partitioning(digits):
    net = build(digits, _config(training="mask", keep=0.5, epochs=1), DEVICE)
    for h, v in ((1, 1), (3, 2), (65, 32)):
        mapping = net.layer_mapping(0, Partition(h, v))
        whole = np.zeros_like(net.conductances[0])
        for a, rows in enumerate(mapping.row_slices):
            for c, outs in enumerate(mapping.out_slices):
                whole[rows, 2 * outs.start:2 * outs.stop] = mapping.tile_conductances(a, c)
        assert np.array_equal(whole, net.conductances[0]) and mapping.n_tiles == h * v
    with pytest.raises(ConfigError, match="partition h = 66"):
        net.layer_mapping(0, Partition(66, 1))


def test_top_fraction_keeps_exactly_that_many():
    scores = np.random.default_rng(0).random((13, 7))
    for keep in (0.01, 0.1, 0.5, 0.93, 1.0):
        mask = top_fraction(scores, keep)
        n = max(1, round(keep * scores.size))
        assert mask.sum() == n
        assert scores[mask].min() >= scores[~mask].max(initial=-1)


@pytest.mark.parametrize("training", ["none", "mask", "full"])
@pytest.mark.parametrize("pruned", ["open", "gmin"])
def test_exactly_keep_of_each_layers_pairs_are_connected(digits, training, pruned):
    net = build(digits, _config(training=training, keep=0.3, pruned_cells=pruned, epochs=2), DEVICE)
    drawn = draw_conductances(net.random, DEVICE)
    p = 0.0 if pruned == "open" else DEVICE.g_min
    for g, mask, g0 in zip(net.conductances, net.masks, drawn):
        n = round(0.3 * mask.size)
        assert mask.sum() == n
        cells = np.repeat(mask, 2, axis=1)
        assert np.all(g[~cells] == p) and (g == p).sum() >= 2 * (mask.size - n)
        if training != "full":  # the conductances of connected cells never change
            assert np.array_equal(g[cells], g0[cells])
    for w, b, mask in zip(net.weights, net.biases, net.masks):  # a pruned pair weighs exactly 0
        assert np.all(np.vstack([w, b[None]])[~mask] == 0)


def test_open_and_gmin_pruning_give_the_same_weights(digits):
    a = build(digits, _config(training="mask", keep=0.4, pruned_cells="open"), DEVICE)
    b = build(digits, _config(training="mask", keep=0.4, pruned_cells="gmin"), DEVICE)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))


def test_mask_training_beats_the_unpruned_random_network(digits):
    unpruned = build(digits, _config(training="none"), DEVICE)
    pruned = build(digits, _config(training="mask", keep=0.5), DEVICE)
    chance = build(digits, _config(training="none", keep=0.5), DEVICE)
    acc = [n.accuracy(digits.x_test, digits.y_test) for n in (unpruned, pruned, chance)]
    assert acc[1] > acc[0] + 0.4 and acc[1] > acc[2] + 0.4, acc


def test_ideal_tiles_compute_the_pruned_network_and_cost_less_when_open(digits):
    circuit = CircuitConfig(device=DEVICE)
    energies = {}
    for keep, pruned in ((1.0, "open"), (0.3, "open"), (0.3, "gmin")):
        net = build(digits, _config(training="mask", keep=keep, pruned_cells=pruned), DEVICE)
        mapped = map_network(net, [Partition(2, 2), Partition(1, 1)], circuit, TileCache())
        for w, w_tiles in zip(net.weights, mapped.mlp.weights):
            np.testing.assert_allclose(w_tiles, w, atol=1e-9)
        energies[keep, pruned] = mapped.energy_per_inference(digits.x_test)["crossbar_energy"]
    assert energies[0.3, "open"] < 0.5 * energies[1.0, "open"]
    assert energies[0.3, "open"] < energies[0.3, "gmin"] < energies[1.0, "open"]


def test_open_cells_stay_open_under_device_statistics():
    target = np.where(np.eye(6, 4) > 0, 0.0, 50e-6)
    stats = DeviceStatistics(programming_noise=0.1, stuck_at_gmin=0.2, stuck_at_gmax=0.2, drift_nu=0.05,
                             t_inference=1e4)
    programmed, drifted = realize_conductances(target, Device(8.49e3, 25.46e3, 2), 0, (0, 0), stats)
    assert np.all(programmed[target == 0] == 0) and np.all(drifted[target == 0] == 0)
    assert np.all(programmed[target > 0] > 0) and not np.allclose(programmed[target > 0], 50e-6)


@pytest.mark.ngspice
def test_pruned_tile_native_transfer_equals_ngspice(digits):
    net = build(digits, _config(training="mask", keep=0.3, pruned_cells="open", epochs=2), DEVICE)
    g = net.layer_mapping(0, Partition(5, 4)).tile_conductances(0, 0)
    assert (g == 0).mean() > 0.6
    tile = Tile(g, r_row=9.24, r_col=11.55)
    deck = write_netlist(build_circuit(tile))
    cells = [line for line in deck.splitlines() if re.match(r"R\w*cell", line)]
    assert len(cells) == int((g > 0).sum())  # an open cell is no resistor at all
    native, spice = characterize(tile).T, characterize(tile, engine="ngspice").T
    assert np.max(np.abs(native - spice)) / np.max(np.abs(spice)) < 1e-6


SPEC = """
title = "pruning, small"
[dataset]
name = "digits"
side = 8
test_fraction = 0.3
[network]
layers = [64, 32, 10]
weights = "random"
activation = "relu"
training = "mask"
epochs = 10
[device]
preset = "rram-zhang2020"
levels = 16
[wires]
preset = "imac-14nm"
[sweep]
"network.keep" = [0.2, 1.0]
"network.training" = ["none", "mask", "full"]
partitions = [{h = [2, 1], v = [2, 1]}]
"""


def test_keep_and_training_are_grid_axes_and_result_columns(tmp_path):
    run_sweep(parse_spec(SPEC), tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda s: None)
    csv = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    assert len(csv) == 6
    assert set(csv["training"]) == {"none", "mask", "full"} and set(csv["keep"]) == {0.2, 1.0}
    assert np.allclose(csv["connected"], csv["keep"], atol=0.002)
    by = csv.set_index(["training", "keep"])
    assert by.loc[("mask", 0.2), "accuracy"] > by.loc[("none", 1.0), "accuracy"] + 0.3
    assert by.loc[("mask", 0.2), "crossbar_energy"] < by.loc[("none", 1.0), "crossbar_energy"]
    assert by.loc[("mask", 1.0), "accuracy"] == by.loc[("none", 1.0), "accuracy"]  # nothing to prune


@pytest.mark.parametrize("change, message", [
    ('keep = 0.0', "network.keep must be a number in (0.0, 1.0]"),
    ('keep = 1.5', "network.keep must be a number in (0.0, 1.0]"),
    ('training = "prune"', "network.training must be one of none, mask, full"),
    ('pruned_cells = "float"', "network.pruned_cells must be one of open, gmin"),
    ('spread = -1.0', "network.spread must be a number"),
    ('keep = "half"', "network.keep must be a number"),
])
def test_bad_random_network_fields_are_one_line(change, message):
    text = SPEC.replace('"network.keep" = [0.2, 1.0]\n', "").replace('"network.training" = ["none", "mask", "full"]\n', "")
    text = text.replace('training = "mask"', change if "training" in change else f'training = "mask"\n{change}')
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_random_keys_need_random_weights():
    with pytest.raises(ConfigError, match="applies only to a random network"):
        parse_spec(SPEC.replace('weights = "random"', 'weights = "binary"'))
    parse_spec(SPEC + '\n[circuit]\ntopology = "imac-sim"\n')  # random cells in IMAC-Sim's layer circuits


def test_random_network_with_adc_and_device_statistics(digits):
    from circuitsim.periphery.adc import ADCConfig

    net = build(digits, _config(training="mask", keep=0.3), DEVICE)
    digital = net.accuracy(digits.x_test, digits.y_test)
    adc = ADCConfig.preset("sar", bits=6, v_min=-1.0, v_max=1.0)
    stats = DeviceStatistics(stuck_at_gmin=0.02, drift_nu=0.05, drift_nu_std=0.01, t_inference=1e4,
                             drift_compensation="global")
    parts = [Partition(3, 2), Partition(1, 1)]
    with_adc = map_network(net, parts, CircuitConfig(device=DEVICE, wires=wire_preset("imac-14nm"), adc=adc),
                           TileCache(), x_calibration=digits.x_train[:256])
    assert with_adc.n_tiles == 7 and with_adc.conversions_per_inference == 3 * 32 + 10
    assert digital - 0.1 < with_adc.accuracy(digits.x_test, digits.y_test) <= digital + 0.05
    varied = map_network(net, parts, CircuitConfig(device=dataclasses.replace(DEVICE, statistics=stats)), TileCache())
    # faults and drift change the connected cells only: pruned pairs still weigh exactly 0
    for w, b, w_real, b_real, mask in zip(net.weights, net.biases, varied.mlp.weights, varied.mlp.biases,
                                          net.masks):
        real = np.vstack([w_real, b_real[None]])
        assert np.all(real[~mask] == 0) and not np.allclose(real[mask], np.vstack([w, b[None]])[mask])
    assert 0.3 < varied.accuracy(digits.x_test, digits.y_test) < digital


VALIDATE = SPEC.replace('training = "mask"', 'training = "mask"\nkeep = 0.3').replace(
    '"network.keep" = [0.2, 1.0]\n"network.training" = ["none", "mask", "full"]',
    '"network.pruned_cells" = ["open", "gmin"]')


@pytest.mark.ngspice
def test_whole_circuit_of_a_pruned_network_agrees_with_the_evaluator(tmp_path):
    from circuitsim.study.points import PointContext
    from circuitsim.study.spec import build_circuit_config
    from circuitsim.study.validation import design_network, run_validation
    from circuitsim.study.whole_circuit import network_deck

    spec = parse_spec(VALIDATE)
    point = spec.points()[0]  # open cells
    context = PointContext(tmp_path / "cache")
    net, _ = context.network(point.config)
    circuit = build_circuit_config(point.config)
    mapped = map_network(net, point.partitions, circuit, context.tiles)
    designs = design_network(mapped, "behavioural", context.dataset(point.config).x_train[:256])
    deck = network_deck(mapped, designs, np.zeros((1, 64)))
    cells = len(re.findall(r"^R\d+_\d+_\d+_cell", deck.text, re.M))
    assert cells == sum(2 * int(m.sum()) for m in net.masks)  # open cells are not in the deck
    run_validation(spec, tmp_path / "out", n_images=30, cache_dir=tmp_path / "cache", log=lambda s: None)
    csv = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    assert list(csv["pruned_cells"]) == ["open", "gmin"]
    assert (csv["agreement"] >= 0.99).all() and (csv["max_output_error"] < 1e-3).all()
    np.testing.assert_allclose(csv["energy_crossbar"], csv["energy_crossbar_evaluator"], rtol=1e-4)
    assert csv["energy_crossbar"][0] < csv["energy_crossbar"][1]  # open pruned cells draw no current


def test_cached_network_is_verified_and_rebuilt_when_damaged(digits, tmp_path, caplog):
    from circuitsim.network.random_weights import load_or_build

    config = _config(training="mask", keep=0.3, epochs=2)
    first = load_or_build(digits, config, DEVICE, tmp_path)
    [entry] = list(tmp_path.glob("random-*.npz"))
    again = load_or_build(digits, config, DEVICE, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(first.conductances, again.conductances))
    assert all(np.array_equal(a, b) for a, b in zip(first.masks, again.masks))
    entry.write_bytes(b"not a zip file")
    rebuilt = load_or_build(digits, config, DEVICE, tmp_path)
    assert "damaged" in caplog.text
    assert all(np.array_equal(a, b) for a, b in zip(first.conductances, rebuilt.conductances))
    other = load_or_build(digits, config, dataclasses.replace(DEVICE, r_high=150e3), tmp_path)
    assert len(list(tmp_path.glob("random-*.npz"))) == 2  # the cells depend on the device's range
    assert not np.allclose(other.weights[0], first.weights[0])
