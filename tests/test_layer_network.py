"""Networks in the imac-sim topology: the effective network is the layer circuits' exact map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.layer_circuit import layer_circuit, layer_input_voltages
from circuitsim.network.mapped import map_network as map_layer_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.tile.tile_cache import TileCache
from circuitsim.study.spec import parse_spec
from circuitsim.study.validation import run_validation
from circuitsim.tile.layer_circuit import solve_layer
from circuitsim.tile.topology import TopologyConfig

DEVICE = Device(8.49e3, 25.46e3)
WIRES = Wires(9.241569, 11.551961)
IMAC = CircuitConfig(device=DEVICE, wires=WIRES, topology="imac-sim")


@pytest.fixture(scope="module")
def small_net():
    data = load_dataset("digits", side=8, test_fraction=0.3)
    return data, train_mlp(data, MLPConfig(layers=(64, 24, 10), epochs=8))


@pytest.mark.ngspice
def test_effective_layer_is_the_whole_layer_circuit_in_ngspice(small_net):
    """Tiles characterized one by one give the neuron inputs of the whole partitioned layer
    (every partition, its amplifiers and the 1 mΩ ties in one deck) as ngspice solves it."""
    data, net = small_net
    parts = (Partition(3, 2), Partition(2, 1))
    mapped = map_layer_network(net, parts, IMAC)
    x = data.x_test[:4]
    predicted = x @ mapped.mlp.weights[0] + mapped.mlp.biases[0]
    layer = layer_circuit(net.weights[0], net.biases[0], DEVICE, WIRES, parts[0], TopologyConfig.imac_sim(30.0))
    circuit = solve_layer(layer, layer_input_voltages(0.8 * x, 0.8, layer.topology), engine="ngspice")
    error = np.abs(predicted - circuit).max() / np.abs(circuit).max()
    print(f"\nimac-sim 64x24 layer, h/v 3/2, effective network vs ngspice whole layer: {error:.2e}")
    assert error <= 1e-9


def test_imac_sim_network_accuracy_and_cache(small_net, tmp_path):
    data, net = small_net
    digital = net.accuracy(data.x_test, data.y_test)
    ideal = map_layer_network(net, (Partition(), Partition()), CircuitConfig(device=DEVICE, topology="imac-sim"))
    # the ideal IMAC-Sim layer follows the weights up to its loaded, per-line normalization
    for k in range(2):
        eff = np.vstack([ideal.mlp.weights[k], ideal.mlp.biases[k]])
        w = np.vstack([net.weights[k], net.biases[k]])
        assert np.corrcoef(eff.ravel(), w.ravel())[0, 1] > 0.98
    assert 0.2 < ideal.accuracy(data.x_test, data.y_test) <= digital + 0.05
    assert ideal.n_tiles == 2 and ideal.energy_per_inference(data.x_test)["crossbar_energy"] > 0
    cache = TileCache(tmp_path)
    parts = (Partition(2, 2), Partition(1, 1))
    first = map_layer_network(net, parts, IMAC, cache)
    misses = cache.misses
    again = map_layer_network(net, parts, IMAC, cache)
    assert cache.misses == misses and np.array_equal(first.mlp.weights[0], again.mlp.weights[0])
    # wires change the effective weights, the neurons stay those of the ideal circuit
    assert not np.allclose(first.mlp.weights[0], ideal.mlp.weights[0])
    assert first.mlp.config.gains[0] == pytest.approx(ideal.mlp.config.gains[0])
    other = map_layer_network(net, parts, dataclasses.replace(IMAC, neuron_reference="partitioned"))
    assert other.mlp.config.gains[0] != pytest.approx(ideal.mlp.config.gains[0])


def test_imac_sim_config_errors(small_net):
    _, net = small_net
    with pytest.raises(ConfigError, match="analog neurons"):
        CircuitConfig(topology="imac-sim", readout="charge")
    with pytest.raises(ConfigError, match="must be one of canonical, imac-sim"):
        CircuitConfig(topology="crossim")
    with pytest.raises(ConfigError, match="amp_gains needs 2"):
        map_layer_network(net, (Partition(), Partition()), CircuitConfig(topology="imac-sim", amp_gains=(30.0,)))


@pytest.mark.ngspice
@pytest.mark.parametrize("statistics", ["", ", programming_noise = 0.1, stuck_at_gmin = 0.02",
                                        ', drift_nu = 0.06, t_inference = 86400.0, drift_compensation = "global"'])
def test_validate_in_the_imac_sim_topology(tmp_path, statistics):
    """Whole circuit (IMAC-Sim layer circuits, buffers, behavioural neurons) against the
    evaluator, with exact, with realized (noisy, faulty) and with drifted cells whose buffers
    carry the global drift compensation."""
    spec = parse_spec(
        'title = "imac-sim whole-circuit validation"\n'
        'dataset = {name = "digits", side = 8, test_fraction = 0.3}\n'
        'network = {layers = [64, 16, 10], epochs = 40}\n'
        f'device = {{preset = "sot-mram-amin2022"{statistics}}}\nwires = {{preset = "imac-14nm"}}\n'
        'circuit = {topology = "imac-sim"}\nsweep = {partitions = [{h = [4, 2], v = [2, 2]}]}\n')

    frame = run_validation(spec, tmp_path / "out", n_images=20, cache_dir=tmp_path / "cache",
                           model="behavioural", log=lambda line: None)
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    print(f"\nimac-sim validate 4-2 / 2-2, 20 images: agreement {row['agreement']:.3f}, "
          f"max output error {row['max_output_error']:.2e} V")
    assert row["agreement"] >= 0.99
    assert row["energy_crossbar"] == pytest.approx(row["energy_crossbar_evaluator"], rel=1e-4)
