"""The gate of the one mapping path: every network kind and topology reproduces the numbers
of the paths it replaced.

``tests/golden/one_path.npz`` holds the outputs and energies of 100 digits test images as the
three former paths computed them (``map_network`` for MLPs and random-conductance networks,
``map_layers`` for layer networks, ``map_layer_network`` for the imac-sim topology), recorded
with those paths just before they were merged (commit of issue 21). The one path must give
them again: to rounding for everything that does not draw read noise, and a CNN's read noise,
which now follows the MLP's law (one draw per layer without ADCs), by its statistics only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import Wires
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.datasets import load_dataset
from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten, MaxPool
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLPConfig, train_mlp
from circuitsim.network.network import Network
from circuitsim.network.random_weights import RandomNetworkConfig, build
from circuitsim.periphery.adc import ADCConfig
from circuitsim.tile.tile_cache import TileCache

GOLDEN = Path(__file__).parent / "golden" / "one_path.npz"
PARTITIONS = (Partition(3, 2), Partition(2, 1))
IMAGES = 100


def _circuits() -> dict[str, CircuitConfig]:
    base = CircuitConfig(wires=Wires(r_row=5.0, r_col=5.0))
    adc = ADCConfig.preset("sar", bits=4, v_min=-1, v_max=1)

    def stats(**fields):
        return dataclasses.replace(base.device, statistics=DeviceStatistics(**fields))

    return {
        "plain": base,
        "adc": dataclasses.replace(base, adc=adc),
        "read": dataclasses.replace(base, device=stats(read_noise=0.02, seed=3)),
        "read+adc": dataclasses.replace(base, device=stats(read_noise=0.02, seed=3), adc=adc),
        "prog": dataclasses.replace(base, device=stats(programming_noise=0.1, stuck_at_gmin=0.01, seed=2)),
        "gains": dataclasses.replace(base, gains=(3.0, 5.0)),
        "charge": dataclasses.replace(base, readout="charge"),
        "imac": dataclasses.replace(base, topology="imac-sim"),
        "imac-prog": dataclasses.replace(base, topology="imac-sim", device=stats(programming_noise=0.1, seed=2)),
        "imac-part": dataclasses.replace(base, topology="imac-sim", neuron_reference="partitioned"),
    }


def cases(digits) -> dict[str, tuple[object, CircuitConfig]]:
    """Every (network, circuit) of the gate, by name."""
    circuits = _circuits()
    mlp = train_mlp(digits, MLPConfig(layers=(64, 24, 10), epochs=4))
    cells = build(digits, RandomNetworkConfig(layers=(64, 24, 10), training="mask", keep=0.5, epochs=1),
                  circuits["plain"].device)
    rng = np.random.default_rng(0)
    cnn = Network([Conv2d(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4) * 0.1, padding=1), Activation("relu"),
                   MaxPool(), Flatten(), Dense(rng.normal(size=(64, 10)) * 0.3, rng.normal(size=10) * 0.1),
                   Activation("softmax")], (1, 8, 8))
    out = {f"mlp-{name}": (mlp, circuit) for name, circuit in circuits.items()}
    out |= {f"random-{name}": (cells, circuits[name]) for name in ("adc", "read")}
    out |= {f"cnn-{name}": (cnn, circuits[name]) for name in ("plain", "adc", "read", "prog")}
    return out


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", side=8)


@pytest.fixture(scope="module")
def all_cases(digits):
    return cases(digits)


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as f:
        return dict(f)


NAMES = ["mlp-plain", "mlp-adc", "mlp-read", "mlp-read+adc", "mlp-prog", "mlp-gains",
         pytest.param("mlp-charge", marks=pytest.mark.ngspice), "mlp-imac", "mlp-imac-prog", "mlp-imac-part",
         "random-adc", "random-read", "cnn-plain", "cnn-adc", "cnn-read", "cnn-prog"]


@pytest.mark.parametrize("name", NAMES)
def test_the_one_path_gives_the_former_paths_numbers(name, all_cases, golden, digits):
    net, circuit = all_cases[name]
    mapped = map_network(net, PARTITIONS, circuit, TileCache(), x_calibration=digits.x_train[:100])
    outputs, energy = mapped.forward(digits.x_test[:IMAGES])
    reference = golden[f"{name}/outputs"]
    if name == "cnn-read":  # other draws of the same law: the same statistics
        assert np.abs(outputs - reference).max() > 0
        assert np.mean(outputs.argmax(1) == reference.argmax(1)) > 0.8
        assert energy == pytest.approx(float(golden[f"{name}/energy"]), rel=0.05)
        return
    np.testing.assert_allclose(outputs, reference, rtol=1e-9, atol=1e-12)
    assert energy == pytest.approx(float(golden[f"{name}/energy"]), rel=1e-9)
    assert mapped.conversions_per_inference == int(golden[f"{name}/conversions"])
    assert mapped.n_tiles == int(golden[f"{name}/tiles"])
