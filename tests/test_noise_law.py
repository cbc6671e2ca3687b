"""The layer-wide read-noise law as the evaluator draws it: its simplifications against the
tiles' own laws, and the normal draws."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import device_preset, wire_preset
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLP, MLPConfig
from circuitsim.tile.noise_law import TOLERANCE, normal_with_variance

MRAM = device_preset("sot-mram-amin2022")


def _mapped(wires: str, weights: str = "binary"):
    rng = np.random.default_rng(2)
    w = rng.uniform(-1, 1, (48, 24))
    if weights == "binary":
        w = np.sign(w)
    net = MLP([w], [rng.uniform(-1, 1, 24)], MLPConfig(layers=(48, 24), weights=weights))
    device = dataclasses.replace(MRAM, statistics=DeviceStatistics(read_noise=0.05))
    return map_network(net, [Partition(2, 3)], CircuitConfig(device=device, wires=wire_preset(wires)))


def _tiles_variance(mapped, v):
    """The layer's variance as the sum of its tiles' own (uncompressed) laws."""
    v = np.hstack([v, np.ones((len(v), 1))])
    var = np.zeros((len(v), mapped.mlp.weights[0].shape[1]))
    for block in mapped.crossbars[0].blocks:
        var[:, block.outs] += block.read_noise.variance(v[:, block.rows])
    return var


@pytest.mark.parametrize("weights", ["binary", "float"])
def test_layer_law_keeps_every_sigma_of_its_tiles_within_tolerance_and_bound(weights):
    mapped = _mapped("imac-14nm", weights)
    law = mapped.crossbars[0].read_noise
    if weights == "binary":  # two conductance levels: the outputs of a row of tiles share their directions
        assert law.shared and not law.own
    v = np.random.default_rng(5).uniform(0, 1, (500, 48))
    ours, tiles = law.variance(v, bias=True).astype(float), _tiles_variance(mapped, v)
    gap = np.abs(np.sqrt(ours) - np.sqrt(tiles)) / np.sqrt(tiles)
    added = law.residual - sum(np.bincount(np.arange(24)[b.outs], b.read_noise.residual, 24) for b in mapped.crossbars[0].blocks)
    squared = np.sum(np.square(v), axis=1, keepdims=True) + 2  # two bias rows of 1 (one per tile row)
    print(f"\nlayer law / tiles' laws ({weights} weights, 14 nm wires): σ gap up to {gap.max():.4f}")
    assert gap.max() <= 2 * TOLERANCE
    assert np.all(np.abs(ours - tiles) <= added * squared * (1 + 1e-5) + 1e-6 * tiles)


def test_two_level_differential_diagonal_has_two_factors_without_wires():
    mapped = _mapped("ideal")
    law = mapped.crossbars[0].read_noise
    # G+² + G−² is the same in every pair of the weights, and the bias row adds one factor
    assert law.factors is not None and law.factors[0].shape[1] == 2
    v = np.random.default_rng(6).uniform(0, 1, (200, 48))
    np.testing.assert_allclose(law.variance(v, bias=True), _tiles_variance(mapped, v), rtol=1e-4)


def test_float_weights_keep_the_whole_diagonal():
    assert _mapped("ideal", "float").crossbars[0].read_noise.factors is None


def test_normal_draws_scale_with_their_variance():
    var = np.repeat(np.float32([0.0, 0.25, 4.0]), 20001).reshape(3, -1).copy()
    z = normal_with_variance(np.random.default_rng(8), var.copy())
    assert np.all(z[0] == 0)
    for row, scale in ((1, 0.5), (2, 2.0)):
        assert stats.kstest(z[row] / scale, "norm").pvalue > 1e-3
    assert np.all(np.isfinite(z)) and np.abs(z[2]).max() <= 2.0 * 5.8
