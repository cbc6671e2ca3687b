"""Device statistics: presets, deterministic realization, drift and its compensation, specs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from circuitsim.device_statistics import STATISTICS_PRESETS, DeviceStatistics, statistics_preset
from circuitsim.devices import Device, Wires, device_preset
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.network.mlp import MLP, MLPConfig
from circuitsim.network.realization import realize_conductances, realize_tile, realized_tile
from circuitsim.tile.tile_cache import TileCache
from circuitsim.study.monte_carlo import t_interval
from circuitsim.study.spec import build_circuit_config, parse_spec
from circuitsim.study.sweep import run_sweep

MRAM = device_preset("sot-mram-amin2022")


def _with(device: Device, **stats) -> Device:
    import dataclasses

    return dataclasses.replace(device, statistics=DeviceStatistics(**stats))


def _target(rows=40, cols=30, seed=0, device=MRAM):
    choice = np.random.default_rng(seed).integers(0, 2, (rows, cols))
    return np.where(choice == 1, device.g_max, device.g_min)


def test_default_statistics_return_the_targets_themselves():
    target = _target()
    programmed, drifted = realize_conductances(target, MRAM, 0, (0, 0))
    assert programmed is target and drifted is target
    assert DeviceStatistics().is_exact and MRAM.statistics == DeviceStatistics()


def test_realization_is_deterministic_and_distinct_per_seed_layer_and_tile():
    device = _with(MRAM, programming_noise=0.05, stuck_at_gmin=0.02, read_noise=0.01)
    target = _target()
    a = realize_conductances(target, device, 1, (2, 3))[0]
    assert np.array_equal(a, realize_conductances(target, device, 1, (2, 3))[0])
    for other in ((0, (2, 3)), (1, (3, 2)), (1, (2, 4))):
        assert not np.allclose(a, realize_conductances(target, device, *other)[0])
    reseeded = _with(MRAM, programming_noise=0.05, stuck_at_gmin=0.02, seed=1)
    assert not np.allclose(a, realize_conductances(target, reseeded, 1, (2, 3))[0])
    # streams are independent: read noise or drift settings do not move the programmed cells
    quiet = _with(MRAM, programming_noise=0.05, stuck_at_gmin=0.02, drift_nu=0.1, t_inference=1e4)
    assert np.array_equal(a, realize_conductances(target, quiet, 1, (2, 3))[0])


@pytest.mark.parametrize("model", ["state-independent", "proportional"])
def test_programming_noise_has_the_asked_spread(model):
    device = _with(MRAM, programming_noise=0.05, programming_noise_model=model)
    target = np.full((300, 300), MRAM.g_max)
    g = realize_conductances(target, device, 0, (0, 0))[0]
    expected = 0.05 * ((MRAM.g_max - MRAM.g_min) if model == "state-independent" else MRAM.g_max)
    assert abs(g.std() / expected - 1) < 0.02  # 90,000 draws: sampling error 0.24 %
    assert abs(g.mean() - MRAM.g_max) < 4 * expected / 300


def test_pcm_polynomial_of_aihwkit():
    pcm = device_preset("pcm-aihwkit")
    assert pcm.g_max == pytest.approx(25e-6)
    stats = statistics_preset("pcm-aihwkit")
    device = _with(pcm, programming_noise=stats.programming_noise, programming_noise_model="pcm")
    for g_norm, sigma_us in ((1.0, 0.2635 + 1.9650 - 1.1731), (0.5, 0.2635 + 0.9825 - 0.293275)):
        g = realize_conductances(np.full((400, 400), g_norm * pcm.g_max), device, 0, (0, 0))[0]
        assert abs(g.std() / (sigma_us * 1e-6) - 1) < 0.02


def test_stuck_at_faults_hit_the_asked_fractions_and_bounds():
    device = _with(MRAM, stuck_at_gmin=0.1, stuck_at_gmax=0.05)
    target = np.full((200, 200), 0.5 * (MRAM.g_min + MRAM.g_max))
    g = realize_conductances(target, device, 0, (0, 0))[0]
    n = g.size
    assert abs(np.mean(g == MRAM.g_min) - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)
    assert abs(np.mean(g == MRAM.g_max) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n)
    assert set(np.unique(g)) == {MRAM.g_min, MRAM.g_max, target[0, 0]}


def test_drift_follows_the_power_law_and_global_compensation_undoes_a_uniform_drift():
    t, t0, nu = 86400.0, 20.0, 0.06
    device = _with(MRAM, drift_nu=nu, t_inference=t, t0=t0)
    target = _target(8, 6)
    programmed, drifted = realize_conductances(target, device, 0, (0, 0))
    np.testing.assert_allclose(drifted, target * (t / t0) ** -nu, rtol=1e-14)
    cache = TileCache()
    circuit = CircuitConfig(device=device)
    plain = realize_tile(target, circuit, cache, 0, (0, 0))
    assert plain.scale == 1.0
    compensated = realize_tile(target, CircuitConfig(device=_with(MRAM, drift_nu=nu, t_inference=t, t0=t0,
                                                                 drift_compensation="global")), cache, 0, (0, 0))
    # no wires, one nu for all cells: the reference read gives exactly (t/t0)^nu
    assert compensated.scale == pytest.approx((t / t0) ** nu, rel=1e-12)
    np.testing.assert_allclose(compensated.characterization.T * compensated.scale, target.T, rtol=1e-10)
    # before t0 nothing drifts
    early = _with(MRAM, drift_nu=nu, t_inference=10.0)
    assert realize_conductances(target, early, 0, (0, 0))[1] is target


@pytest.mark.parametrize("drift", [False, True])
def test_cells_realized_once_give_what_realize_tile_draws(drift):
    """``realize_tile`` with the tile ``realized_tile`` gave (a layer's tiles characterized
    together first) is ``realize_tile`` realizing the cells itself."""
    device = _with(MRAM, programming_noise=0.1, drift_nu=0.06 if drift else 0.0, t_inference=86400.0,
                   drift_compensation="global" if drift else "none")
    circuit, target = CircuitConfig(device=device), _target(8, 6)
    realized = realized_tile(target, circuit, 1, (2, 0))
    assert (realized[0] is realized[1].conductances) is not drift  # no drift: one array
    given, drawn = (realize_tile(target, circuit, TileCache(), 1, (2, 0), r) for r in (realized, None))
    for name in ("programmed", "conductances", "scale"):
        np.testing.assert_array_equal(getattr(given, name), getattr(drawn, name))
    np.testing.assert_array_equal(given.characterization.T, drawn.characterization.T)


def _net(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.choice([-1.0, 1.0], (12, 8)), rng.choice([-1.0, 1.0], (8, 4))]
    biases = [rng.choice([-1.0, 1.0], 8), rng.choice([-1.0, 1.0], 4)]
    return MLP(weights, biases, MLPConfig(layers=(12, 8, 4), weights="binary"))


def test_evaluator_uses_the_realized_tiles_and_exact_defaults_change_nothing():
    net, parts = _net(), [Partition(2, 2), Partition(1, 1)]
    wires = Wires(5.0, 5.0)
    x = np.random.default_rng(1).random((50, 12))
    exact = map_network(net, parts, CircuitConfig(wires=wires))
    named = map_network(net, parts, CircuitConfig(device=_with(MRAM, seed=7), wires=wires))
    for a, b in zip(exact.mlp.weights, named.mlp.weights):
        np.testing.assert_array_equal(a, b)
    noisy = map_network(net, parts, CircuitConfig(device=_with(MRAM, programming_noise=0.1), wires=wires))
    assert not np.allclose(noisy.mlp.weights[0], exact.mlp.weights[0])
    again = map_network(net, parts, CircuitConfig(device=_with(MRAM, programming_noise=0.1), wires=wires))
    np.testing.assert_array_equal(noisy.mlp.weights[0], again.mlp.weights[0])
    # read noise is drawn anew for every inference
    reads = map_network(net, parts, CircuitConfig(device=_with(MRAM, read_noise=0.05), wires=wires))
    first, second = reads.forward(x)[0], reads.forward(x)[0]
    assert not np.allclose(first, second)
    assert np.abs(first - exact.forward(x)[0]).max() < 0.5


def test_presets_are_valid_and_bad_values_fail_clearly():
    assert {"ideal", "pcm-aihwkit", "rram-wan2022", "sot-mram-wafer"} <= set(STATISTICS_PRESETS)
    for bad, message in (({"programming_noise": -0.1}, "programming_noise"),
                         ({"programming_noise_model": "gauss"}, "programming_noise_model"),
                         ({"stuck_at_gmin": 0.7, "stuck_at_gmax": 0.5}, "stuck_at"),
                         ({"drift_compensation": "local"}, "drift_compensation"),
                         ({"t0": 0}, "t0"), ({"seed": -1}, "seed")):
        with pytest.raises(ConfigError, match=message):
            DeviceStatistics(**bad)
    with pytest.raises(ConfigError, match="unknown device statistics preset"):
        statistics_preset("nope")


def test_t_interval_matches_scipy():
    from scipy import stats

    x = [0.91, 0.93, 0.90, 0.95, 0.92]
    mean, std, low, high = t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (low, high) == pytest.approx(ref)
    assert std == pytest.approx(np.std(x, ddof=1)) and mean == pytest.approx(np.mean(x))


SPEC = """
dataset = {name = "digits", side = 8, test_fraction = 0.3}
network = {layers = [64, 16, 10], epochs = 5}
wires = {r_row = 5.0, r_col = 5.0}
[device]
preset = "sot-mram-amin2022"
statistics = "rram-wan2022"
stuck_at_gmax = 0.01
[sweep]
seeds = 3
partitions = [{h = [1, 1], v = [1, 1]}, {h = [4, 2], v = [2, 2]}]
"device.programming_noise" = [0.0, 0.1]
"""


def test_spec_device_fields_presets_and_bad_values():
    spec = parse_spec(SPEC)
    assert spec.seeds == 3 and len(spec.points()) == 2 * 2 * 3
    circuit = build_circuit_config(spec.points()[-1].config)
    stats = circuit.device.statistics
    assert stats.programming_noise == 0.1 and stats.stuck_at_gmax == 0.01 and stats.name == "rram-wan2022"
    assert stats.seed == 2 and circuit.device.g_max == MRAM.g_max
    for bad, message in (("seeds = 3", "seeds = 0"), ('stuck_at_gmax = 0.01', 'stuck_at_gmax = -1.0'),
                         ('statistics = "rram-wan2022"', 'statistics = "nope"')):
        with pytest.raises(ConfigError, match="seeds|stuck_at_gmax|preset"):
            parse_spec(SPEC.replace(bad, message))


def test_monte_carlo_sweep_writes_seeds_and_intervals_and_resumes_per_seed(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    frame = run_sweep(parse_spec(SPEC), out, cache_dir=cache, log=lambda line: None)
    seeds = pd.read_csv(out / "seeds.csv")
    assert len(seeds) == 12 and sorted(set(seeds["seed"])) == [0, 1, 2]
    assert len(frame) == 4 and (frame["n_seeds"] == 3).all()
    for _, row in frame.iterrows():
        runs = seeds[seeds["point"] == row["point"]]["accuracy"]
        assert row["accuracy"] == pytest.approx(runs.mean())
        assert row["accuracy_std"] == pytest.approx(runs.std(ddof=1))
        assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
    noisy = frame[frame["programming_noise"] == 0.1]
    assert (noisy["accuracy_std"] > 0).all()
    assert json.loads((out / "provenance.json").read_text())["complete"] is True
    # resume at seed granularity: remove one run, only that run is computed again
    victim = sorted((out / "points").iterdir())[5]
    victim.unlink()
    lines = []
    again = run_sweep(parse_spec(SPEC), out, cache_dir=cache, log=lines.append)
    assert len(lines) == 1 and victim.is_file()
    figures = ["accuracy", "accuracy_std", "accuracy_ci_low", "accuracy_ci_high", "n_seeds"]
    pd.testing.assert_frame_equal(again[figures], frame[figures])


def test_read_noise_is_the_same_law_through_map_layers_and_map_network():
    """Layer networks (CNN/ONNX path, per-tile draws) and MLPs (one draw per layer) agree."""
    from circuitsim.network.mapped import map_layers
    from circuitsim.network.network import Network

    net, parts = _net(3), [Partition(2, 2), Partition(1, 1)]
    circuit = CircuitConfig(device=_with(MRAM, read_noise=0.05), wires=Wires(5.0, 5.0))
    x = np.tile(np.random.default_rng(2).random(12), (4000, 1))
    mlp = map_network(net, parts, circuit).forward(x, energy=False)[0]
    layers = map_layers(Network.from_mlp(net), parts, circuit)
    other = layers.forward(x, energy=False)[0]
    assert not np.allclose(other[:2000], layers.forward(x[:2000], energy=False)[0])  # drawn anew
    spread = mlp.std(axis=0, ddof=1)
    assert np.all(spread > 0)
    np.testing.assert_array_less(np.abs(other.std(axis=0, ddof=1) / spread - 1), 4 / np.sqrt(len(x) - 1))
    np.testing.assert_array_less(np.abs(other.mean(axis=0) - mlp.mean(axis=0)), 4 * spread * np.sqrt(2 / len(x)))


def test_analog_accuracy_includes_read_noise_and_imac_sim_realizes_its_cells():
    from circuitsim.network.mapped import map_network as map_layer_network
    from circuitsim.periphery.adc import ADCConfig

    net, parts = _net(), [Partition(1, 1), Partition(1, 1)]
    x = np.random.default_rng(1).random((300, 12))
    y = net.predict(x)
    noisy = CircuitConfig(device=_with(MRAM, read_noise=0.3), adc=ADCConfig(kind="ideal", bits=8))
    mapped = map_network(net, parts, noisy, x_calibration=x)
    assert mapped.analog_accuracy(x, y) < mapped.mlp.accuracy(x, y)  # 30 % read noise costs accuracy
    exact = map_layer_network(net, parts, CircuitConfig(topology="imac-sim"))
    noisy = map_layer_network(net, parts, CircuitConfig(device=_with(MRAM, programming_noise=0.1), topology="imac-sim"))
    assert not np.allclose(noisy.mlp.weights[0], exact.mlp.weights[0])
    assert noisy.mlp.config.gains == exact.mlp.config.gains  # the design sets the gains
    reading = map_layer_network(net, parts, CircuitConfig(device=_with(MRAM, read_noise=0.3), topology="imac-sim"))
    assert all(c.read_noise is not None for c in reading.crossbars)
    assert reading.analog_accuracy(x, y) < exact.analog_accuracy(x, y)  # imac-sim's read noise costs accuracy too


def test_imac_sim_global_drift_compensation_restores_the_programmed_layer():
    """One drift exponent for every cell: the imac-sim layer's neuron inputs shrink by the
    drift; the compensation factor of each vertical partition (its reference read through the
    wires) brings them back."""
    t, t0, nu = 86400.0, 20.0, 0.06
    net, parts = _net(), [Partition(2, 2), Partition(1, 1)]
    wires = Wires(5.0, 5.0)
    fresh = map_network(net, parts, CircuitConfig(wires=wires, topology="imac-sim"))
    drifted = map_network(net, parts, CircuitConfig(device=_with(MRAM, drift_nu=nu, t_inference=t, t0=t0),
                                                    wires=wires, topology="imac-sim"))
    compensated = map_network(net, parts, CircuitConfig(device=_with(MRAM, drift_nu=nu, t_inference=t, t0=t0,
                                                                     drift_compensation="global"),
                                                        wires=wires, topology="imac-sim"))
    w0, w1, w2 = (m.crossbars[0].weights for m in (fresh, drifted, compensated))
    shrink = np.abs(w1).sum() / np.abs(w0).sum()
    scales = {b.drift_scale for b in compensated.crossbars[0].blocks}
    print(f"\nimac-sim drift over {t / t0:.0f} t0: neuron inputs x{shrink:.4f}; compensation factors "
          f"{sorted(round(a, 4) for a in scales)} (1/(t/t0)^-nu = {(t / t0) ** nu:.4f})")
    assert shrink < 0.75 and len(scales) == 2  # one factor per vertical partition
    # one factor cannot undo the wires' share, which drift changes cell by cell (less current,
    # less IR drop): the compensated layer is within 6 % of its largest weight, drift alone is not
    err, err_drift = np.abs(w2 - w0).max(), np.abs(w1 - w0).max()
    assert err < 0.06 * np.abs(w0).max() and err < 0.2 * err_drift
