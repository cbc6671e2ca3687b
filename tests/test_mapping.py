"""Mapping, partitioning and the evaluator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.devices import Device, Wires, device_preset
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition, auto_partition, map_layer, quantize
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.tile.tile_cache import TileCache

DEVICE = device_preset("sot-mram-amin2022")


def test_binary_weights_map_to_differential_pairs():
    w = np.array([[1.0, -1.0], [-1.0, 1.0]])
    layer = map_layer(w, np.array([1.0, -1.0]), DEVICE)
    g = layer.conductances
    assert g.shape == (3, 4)
    assert g[0, 0] == DEVICE.g_max and g[0, 1] == DEVICE.g_min  # +1: G+ on, G- off
    assert g[0, 2] == DEVICE.g_min and g[0, 3] == DEVICE.g_max  # -1 reversed
    assert g[2, 0] == DEVICE.g_max  # bias row


def test_multilevel_quantization():
    device = Device(1e3, 1e4, levels=5)
    assert quantize(np.array([0.1, 0.3, -0.6, 1.2]), 5).tolist() == [0.0, 0.25, -0.5, 1.0]
    layer = map_layer(np.array([[0.5]]), None, device)
    span = device.g_max - device.g_min
    assert layer.conductances[0, 0] - layer.conductances[0, 1] == pytest.approx(0.5 * span)


def test_partitions_cover_the_layer_once():
    w = np.random.default_rng(0).choice([-1.0, 1.0], size=(50, 9))
    layer = map_layer(w, np.ones(9), DEVICE, Partition(4, 3))
    assert layer.n_tiles == 12
    rows = np.concatenate([np.arange(s.start, s.stop) for s in layer.row_slices])
    outs = np.concatenate([np.arange(s.start, s.stop) for s in layer.out_slices])
    assert rows.tolist() == list(range(51)) and outs.tolist() == list(range(9))
    assert layer.tile_conductances(3, 2).shape == (13, 6)


def test_auto_partition_matches_imac_sim():
    parts = auto_partition((400, 120, 84, 10), 32)
    assert [p.h for p in parts] == [13, 4, 3] and [p.v for p in parts] == [4, 3, 1]


@pytest.mark.parametrize("partition, message", [
    (Partition(52, 1), "only 51 rows"), (Partition(1, 10), "only 9 outputs"), (Partition(0, 1), "positive"),
])
def test_bad_partitions(partition, message):
    with pytest.raises(ConfigError, match=message):
        map_layer(np.ones((50, 9)), np.ones(9), DEVICE, partition)


@pytest.fixture(scope="module")
def small_net():
    data = load_dataset("digits", side=8, test_fraction=0.3)
    net = train_mlp(data, MLPConfig(layers=(64, 24, 10), epochs=8))
    return data, net


PARTS = [(Partition(1, 1), Partition(1, 1)), (Partition(3, 2), Partition(2, 3)), (Partition(65, 24), Partition(25, 10))]


@pytest.mark.parametrize("parts", PARTS)
def test_ideal_wires_give_the_digital_network(small_net, parts):
    data, net = small_net
    mapped = map_network(net, parts, CircuitConfig(device=DEVICE))
    for w_eff, w in zip(mapped.mlp.weights, net.weights):
        np.testing.assert_allclose(w_eff, w, atol=1e-9)
    assert np.array_equal(mapped.predict(data.x_test), net.predict(data.x_test))
    assert mapped.accuracy(data.x_test, data.y_test) == net.accuracy(data.x_test, data.y_test)


def test_wire_resistance_shrinks_weights_and_partitions_help(small_net):
    data, net = small_net
    wires = Wires(r_row=200.0, r_col=200.0)
    whole = map_network(net, PARTS[0], CircuitConfig(device=DEVICE, wires=wires))
    split = map_network(net, PARTS[1], CircuitConfig(device=DEVICE, wires=wires))
    error = [np.abs(m.mlp.weights[0] - net.weights[0]).mean() for m in (whole, split)]
    assert error[1] < error[0]
    assert np.abs(whole.mlp.weights[0]).max() < 1.0


def test_tile_cache_never_characterizes_a_tile_twice(small_net, tmp_path):
    _, net = small_net
    circuit = CircuitConfig(device=DEVICE, wires=Wires(r_row=2.0, r_col=2.0))
    cache = TileCache(tmp_path)
    first = map_network(net, PARTS[1], circuit, cache)
    assert cache.misses == first.n_tiles and cache.hits == 0
    map_network(net, PARTS[1], circuit, cache)
    assert cache.misses == first.n_tiles
    fresh = TileCache(tmp_path)  # from disk
    again = map_network(net, PARTS[1], circuit, fresh)
    assert fresh.misses == 0 and fresh.hits == again.n_tiles
    for a, b in zip(first.mlp.weights, again.mlp.weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.ngspice
def test_ngspice_and_native_tiles_give_the_same_network(small_net):
    _, net = small_net
    native = CircuitConfig(device=DEVICE, wires=Wires(r_row=5.0, r_col=5.0))
    spice = dataclasses.replace(native, engine="ngspice")
    parts = (Partition(2, 1), Partition(1, 2))
    a, b = map_network(net, parts, native), map_network(net, parts, spice)
    for wa, wb in zip(a.mlp.weights, b.mlp.weights):
        assert np.abs(wa - wb).max() <= 1e-6 * np.abs(wb).max()


def test_amplifier_gains_are_configurable(small_net):
    data, net = small_net
    mapped = map_network(net, PARTS[0], CircuitConfig(device=DEVICE, gains=(1e-3, 1e-3)))
    assert mapped.mlp.config.gains == (1e-3, 1e-3)
    with pytest.raises(ConfigError, match="2 values"):
        map_network(net, PARTS[0], CircuitConfig(device=DEVICE, gains=(1.0,)))


def test_adc_after_every_tile(small_net):
    from circuitsim.periphery.adc import ADCConfig

    data, net = small_net
    circuit = CircuitConfig(device=DEVICE, wires=Wires(r_row=2.0, r_col=2.0))
    analog = map_network(net, PARTS[1], circuit)
    accuracies = {}
    for bits in (1, 3, 8):
        with_adc = dataclasses.replace(circuit, adc=ADCConfig.preset("ideal", bits=bits))
        mapped = map_network(net, PARTS[1], with_adc, x_calibration=data.x_train[:256])
        accuracies[bits] = mapped.accuracy(data.x_test, data.y_test)
        assert mapped.conversions_per_inference == 3 * 24 + 2 * 10  # h x outputs per layer
        energy = mapped.energy_per_inference(data.x_test)
        assert energy["adc_energy"] > 0 and energy["crossbar_energy"] > 0
    assert accuracies[1] < accuracies[3] <= accuracies[8] + 0.02
    assert abs(accuracies[8] - analog.accuracy(data.x_test, data.y_test)) <= 0.01
    with pytest.raises(ConfigError, match="calibration"):
        map_network(net, PARTS[1], dataclasses.replace(circuit, adc=ADCConfig(bits=4)))


def test_crossbar_energy_matches_supply_power(small_net):
    """The evaluator's crossbar energy is t_read times the power the sources deliver."""
    from circuitsim.tile.extract import simulate

    _, net = small_net
    circuit = CircuitConfig(device=DEVICE, wires=Wires(r_row=3.0, r_col=3.0), t_read=5e-9)
    mapped = map_network(net, PARTS[0], circuit)
    x = np.random.default_rng(1).uniform(0, 1, (1, 64))
    layer = map_layer(net.weights[0], net.biases[0], DEVICE)
    from circuitsim.tile.crossbar import Tile

    v = circuit.v_read * np.append(x[0], 1.0)
    op = simulate(Tile(layer.conductances, r_row=3.0, r_col=3.0), v).operating_point
    power = -np.sum(op.current([f"vin{i}" for i in range(65)]) * v)
    block = mapped.crossbars[0].blocks[0]
    assert v @ block.energy_matrix @ v == pytest.approx(power * 5e-9, rel=1e-9)


@pytest.mark.ngspice
def test_charge_readout_with_a_long_window_matches_current_readout(small_net):
    data, net = small_net
    current = CircuitConfig(device=DEVICE, wires=Wires(r_row=2.0, r_col=2.0, c_row=1e-16, c_col=1e-16))
    charge = dataclasses.replace(current, readout="charge", t_int=10e-9, c_int=1e-12)
    parts = (Partition(8, 4), Partition(4, 2))
    a, b = map_network(net, parts, current), map_network(net, parts, charge)
    for wa, wb in zip(a.mlp.weights, b.mlp.weights):
        assert np.abs(wa - wb).max() <= 0.01 * np.abs(wa).max()
    assert b.accuracy(data.x_test, data.y_test) == pytest.approx(a.accuracy(data.x_test, data.y_test), abs=0.01)
    assert b.energy_per_inference(data.x_test[:50])["crossbar_energy"] > 0
    with pytest.raises(ConfigError, match="readout"):
        CircuitConfig(readout="voltage")
