"""Read noise through the wires: first-order sensitivities, their error bound, and an
ngspice Monte Carlo of the same tile."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from circuitsim.devices import device_preset
from circuitsim.tile.read_noise import ReadNoise, sensitivities
from circuitsim.tile.crossbar import Tile, build_circuit, sense_source_names
from circuitsim.tile.extract import simulate
from circuitsim.tile.netlist import write_netlist

MRAM = device_preset("sot-mram-amin2022")
RELATIVE = 0.05
DRAWS = 1000


def _tile(rows=5, cols=4, r=300.0, seed=3) -> tuple[Tile, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.uniform(MRAM.g_min, MRAM.g_max, (rows, cols))
    return Tile(g, r_row=r, r_col=r), rng.uniform(0.2, 0.8, rows)


def test_sensitivities_match_finite_differences_of_the_native_engine():
    tile, v = _tile(r=200.0)
    cells, D, K = sensitivities(tile)
    base = simulate(tile, v).output_currents
    for c in (0, 7, 13, 19):
        i, j = cells[c]
        g = tile.conductances.copy()
        step = 1e-6 * g[i, j]
        g[i, j] += step
        moved = simulate(Tile(g, r_row=200.0, r_col=200.0), v).output_currents
        np.testing.assert_allclose((moved - base) / step, K[:, c] * (D[c] @ v), rtol=1e-4, atol=1e-12)


def test_first_order_error_is_within_its_stated_bound():
    """|dI − dI1| <= Σ_c |dG_c| |ΔV'_c − ΔV_c| |K_jc| (compensation theorem), checked on exact re-solves."""
    tile, v = _tile()
    cells, D, K = sensitivities(tile)
    dv0 = D @ v
    rng = np.random.default_rng(0)
    base = simulate(tile, v).output_currents
    ratios = []
    for _ in range(20):
        dg = RELATIVE * tile.conductances * rng.standard_normal(tile.shape)
        perturbed = Tile(tile.conductances + dg, r_row=tile.r_row, r_col=tile.r_col)
        exact = simulate(perturbed, v).output_currents - base
        dv1 = sensitivities(perturbed)[1] @ v
        d = dg[cells[:, 0], cells[:, 1]]
        first = K @ (d * dv0)
        bound = np.abs(K) @ (np.abs(d) * np.abs(dv1 - dv0))
        assert np.all(np.abs(exact - first) <= bound * (1 + 1e-9) + 1e-15)
        ratios.append(np.max(np.abs(exact - first) / np.abs(first).max()))
    rows = cells[:, 0]
    ir_drop = float(np.max(1 - dv0 / v[rows]))  # largest share of an input lost before its cell
    print(f"\nfirst-order error: max {max(ratios):.4f} of the largest output change; "
          f"read noise {RELATIVE:.0%}, IR drop up to {ir_drop:.1%}")
    assert max(ratios) < 4 * RELATIVE * ir_drop  # second order: read noise times the tile's IR drop


def _ngspice_monte_carlo(tile: Tile, v: np.ndarray, draws: np.ndarray) -> np.ndarray:
    from circuitsim.spice import get_backend

    deck = write_netlist(build_circuit(tile, v))
    sensed = [f"i({s.lower()})" for s in sense_source_names(tile.cols)]
    rows, cols = np.nonzero(tile.conductances > 0)
    steps = []
    for eps in draws:
        g = tile.conductances[rows, cols] * (1 + RELATIVE * eps)
        steps.append([f"alter rcell{i}_{j} = {1 / gij:.12e}" for i, j, gij in zip(rows, cols, g)] + ["op"])
    results = get_backend("shared").run(deck, steps, save=sensed)
    return np.array([[r[name][0] for name in sensed] for r in results])


@pytest.mark.ngspice
@pytest.mark.slow
def test_read_noise_mean_and_std_agree_with_an_ngspice_monte_carlo():
    tile, v = _tile()
    rng = np.random.default_rng(2026)
    mc = _ngspice_monte_carlo(tile, v, rng.standard_normal((DRAWS, tile.rows * tile.cols)))
    noise = ReadNoise(tile, RELATIVE)
    nominal = simulate(tile, v).output_currents
    std = noise.first_order_std(v[None, :])[0]
    law = noise.law()
    mean_mc, std_mc = mc.mean(axis=0), mc.std(axis=0, ddof=1)
    # sampling error of a mean: std / sqrt(n); of a std: std / sqrt(2 (n - 1))
    z_mean = (mean_mc - nominal) / (std / np.sqrt(DRAWS))
    z_std = (std_mc / std - 1) * np.sqrt(2 * (DRAWS - 1))
    print(f"\nngspice Monte Carlo, {DRAWS} draws, {tile.rows}x{tile.cols} tile, r = {tile.r_row:g} ohm, "
          f"read noise {RELATIVE:.0%}")
    for j in range(tile.cols):
        print(f"  I{j}: mean {mean_mc[j]:.6e} A vs {nominal[j]:.6e} A (z = {z_mean[j]:+.2f}); "
              f"std {std_mc[j]:.4e} A vs first order {std[j]:.4e} A (ratio {std_mc[j] / std[j]:.4f}, "
              f"z = {z_std[j]:+.2f})")
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs(z_std) < 4)
    # circuitsim's own per-image draws of the same tile against ngspice's: two-sample checks
    ours = law.draw(np.tile(v, (DRAWS, 1)), np.random.default_rng(7)) + nominal
    z_two = (ours.mean(axis=0) - mean_mc) / (std * np.sqrt(2 / DRAWS))
    ratio = ours.std(axis=0, ddof=1) / std_mc
    print(f"  circuitsim draws vs ngspice: mean z {np.round(z_two, 2)}, std ratio {np.round(ratio, 4)}")
    assert np.all(np.abs(z_two) < 4) and np.all(np.abs(ratio - 1) < 4 * np.sqrt(1 / (DRAWS - 1)))
    # the wires matter: the wire-free law (σ_j² = Σ_i (r G_ij v_i)²) misses the ngspice spread
    naive = np.sqrt(((RELATIVE * tile.conductances) ** 2 * (v ** 2)[:, None]).sum(axis=0))
    print(f"  wire-free std / ngspice std: {np.round(naive / std_mc, 4)}")
    assert np.any(np.abs(naive / std_mc - 1) * np.sqrt(2 * (DRAWS - 1)) > 6)


def test_without_wires_the_draw_is_exact_and_in_distribution():
    tile = Tile(_tile()[0].conductances)
    v = np.random.default_rng(1).uniform(0, 0.8, (20000, tile.rows))
    noise = ReadNoise(tile, RELATIVE)
    assert noise.exact
    draws = noise.law().draw(v, np.random.default_rng(3))
    expected = np.sqrt((v ** 2) @ (RELATIVE * tile.conductances) ** 2)
    z = draws / expected
    assert abs(z.std() - 1) < 4 / np.sqrt(2 * z.size) and abs(z.mean()) < 4 / np.sqrt(z.size)


@pytest.mark.parametrize("differential", [False, True])
def test_drawn_law_is_within_its_bound_of_the_first_order_law(differential):
    """σ as drawn (diagonal and RANK eigenpairs) against the full first-order σ, and the bound."""
    tile, _ = _tile(rows=12, cols=6, r=300.0)
    noise = ReadNoise(tile, RELATIVE)
    law = noise.law(differential)
    volts = np.random.default_rng(4).uniform(0.0, 0.8, (50, tile.rows))
    drawn, first = np.sqrt(law.variance(volts)), noise.first_order_std(volts, differential)
    bound = noise.std_bound(volts, law, differential)
    gap = np.abs(drawn - first)
    assert np.all(gap <= bound * (1 + 1e-9) + 1e-18)
    cells, D, _ = sensitivities(tile)
    ir_drop = float(np.max(1 - D[np.arange(len(cells)), cells[:, 0]]))
    own_row_only = np.sqrt(np.square(volts) @ (law.diagonal))  # the law without its eigenpairs
    print(f"\ndrawn / first-order σ: largest gap {np.max(gap / first):.4f} (diagonal alone "
          f"{np.max(np.abs(own_row_only - first) / first):.4f}), bound {np.max(bound / first):.4f}; "
          f"IR drop up to {ir_drop:.1%}")
    assert np.max(gap / first) < 0.1 * ir_drop  # the eigenpairs take the cross-row voltages in


def test_gaussian_draws_pass_a_kolmogorov_smirnov_test():
    from scipy import stats

    from circuitsim.tile.noise_law import standard_normal32

    z = standard_normal32(np.random.default_rng(5), (301, 333)).astype(float).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / np.sqrt(z.size)
    half = (z.size + 1) // 2  # the cosine and sine halves of Box–Muller are independent
    assert abs(np.corrcoef(z[: z.size - half], z[half:])[0, 1]) < 4 / np.sqrt(z.size)


def test_layer_noise_matches_exact_re_solves_of_every_tile():
    """The evaluator's layer-wide draw against cell draws re-solved exactly, tile by tile."""
    import dataclasses

    from circuitsim.device_statistics import DeviceStatistics
    from circuitsim.devices import Wires
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.network.mapped import map_network
    from circuitsim.network.mapping import Partition, map_layer
    from circuitsim.network.mlp import MLP, MLPConfig

    rng = np.random.default_rng(0)
    w, b = rng.uniform(-1, 1, (9, 4)), rng.uniform(-1, 1, 4)
    net = MLP([w], [b], MLPConfig(layers=(9, 4), weights="float"))
    wires, partition, draws = Wires(300.0, 300.0), Partition(2, 2), 1000
    device = dataclasses.replace(MRAM, statistics=DeviceStatistics(read_noise=RELATIVE))
    circuit = CircuitConfig(device=device, wires=wires)
    mapped = map_network(net, [partition], circuit)
    v = np.append(rng.uniform(0.2, 1.0, 9), 1.0)  # one image and the bias input
    ours = mapped.crossbars[0].read_noise.draw(np.tile(v, (draws, 1)), mapped.crossbars[0].read_rng)
    mapping = map_layer(w, b, device, partition)
    scale = 1 / (circuit.v_read * (device.g_max - device.g_min))
    exact = np.zeros((draws, 4))
    for a, rows in enumerate(mapping.row_slices):
        for c, outs in enumerate(mapping.out_slices):
            g = mapping.tile_conductances(a, c)
            volts = circuit.v_read * v[rows]
            nominal = simulate(Tile(g, r_row=wires.r_row, r_col=wires.r_col), volts).output_currents
            for n in range(draws):
                noisy = g * (1 + RELATIVE * rng.standard_normal(g.shape))
                d = simulate(Tile(noisy, r_row=wires.r_row, r_col=wires.r_col), volts).output_currents - nominal
                exact[n, outs] += (d[0::2] - d[1::2]) * scale
    law_std = np.sqrt(mapped.crossbars[0].read_noise.variance(v[None, :])[0])
    ratio = exact.std(axis=0, ddof=1) / law_std
    print(f"\nlayer read noise, exact re-solves / drawn law, std ratio per output: {np.round(ratio, 4)}")
    assert np.all(np.abs(ratio - 1) < 4 / np.sqrt(2 * (draws - 1)))  # sampling error of a std
    assert np.all(np.abs(ours.std(axis=0, ddof=1) / law_std - 1) < 4 / np.sqrt(2 * (draws - 1)))
    assert np.all(np.abs(ours.mean(axis=0)) < 4 * ours.std(axis=0) / np.sqrt(draws))


def _imac_piece(rows=6, outs=3, r=300.0, seed=5):
    """One piece of an imac-sim layer circuit (difference amplifiers) with wires, and inputs."""
    from circuitsim.tile.layer_circuit import LayerCircuit
    from circuitsim.tile.topology import TopologyConfig

    rng = np.random.default_rng(seed)
    g = rng.uniform(MRAM.g_min, MRAM.g_max, (2, rows, outs))
    layer = LayerCircuit(g[0], g[1], (slice(0, rows),), (slice(0, outs),), TopologyConfig.imac_sim(), r, r)
    return layer, rng.uniform(0.2, 0.8, rows)


def test_layer_sensitivities_match_finite_differences():
    from circuitsim.tile.layer_circuit import solve_layer
    from circuitsim.tile.read_noise import layer_sensitivities

    layer, v = _imac_piece()
    cells, g, D, K, word = layer_sensitivities(layer)
    assert np.all((word > 0.5) & (word <= 1.0))  # the word-line node follows its own input, less the IR drop
    base = solve_layer(layer, v)[0]
    for c in (0, 5, 17, 30):
        i, o = cells[c]
        positive = c < len(cells) // 2  # G+ cells come first
        gp, gn = layer.g_pos.copy(), layer.g_neg.copy()
        step = 1e-6 * g[c]
        (gp if positive else gn)[i, o] += step
        moved = solve_layer(dataclasses.replace(layer, g_pos=gp, g_neg=gn), v)[0]
        np.testing.assert_allclose((moved - base) / step, K[:, c] * (D[c] @ v), rtol=1e-4, atol=1e-9)


@pytest.mark.ngspice
@pytest.mark.slow
def test_imac_sim_amplifier_noise_agrees_with_an_ngspice_monte_carlo():
    """An imac-sim piece's amplifier outputs under read noise: ngspice re-solves against the
    first-order law that the evaluator draws from (:meth:`ReadNoise.of_layer`)."""
    from circuitsim.spice import get_backend
    from circuitsim.tile.layer_circuit import build_layer_circuit, solve_layer

    layer, v = _imac_piece()
    rng = np.random.default_rng(2026)
    deck = write_netlist(build_layer_circuit(layer, v))
    saved = [f"v(nin{o})" for o in range(layer.n_out)]
    rows, outs = np.nonzero(layer.g_pos > 0)
    steps = []
    for _ in range(DRAWS):
        gp = layer.g_pos * (1 + RELATIVE * rng.standard_normal(layer.g_pos.shape))
        gn = layer.g_neg * (1 + RELATIVE * rng.standard_normal(layer.g_neg.shape))
        steps.append([f"alter rc{s}{i}_{o} = {1 / g[i, o]:.12e}" for s, g in (("p", gp), ("n", gn))
                      for i, o in zip(rows, outs)] + ["op"])
    mc = np.array([[r[name][0] for name in saved] for r in get_backend("shared").run(deck, steps, save=saved)])
    noise = ReadNoise.of_layer(layer, RELATIVE)
    nominal = solve_layer(layer, v)[0]
    std = noise.first_order_std(v[None, :])[0]
    z_mean = (mc.mean(axis=0) - nominal) / (std / np.sqrt(DRAWS))
    z_std = (mc.std(axis=0, ddof=1) / std - 1) * np.sqrt(2 * (DRAWS - 1))
    ours = noise.law().draw(np.tile(v, (DRAWS, 1)), np.random.default_rng(7))
    ratio = ours.std(axis=0, ddof=1) / mc.std(axis=0, ddof=1)
    print(f"\nimac-sim piece {layer.n_rows}x{layer.n_out}, r = {layer.r_row:g} ohm, read noise {RELATIVE:.0%}, "
          f"{DRAWS} ngspice draws: std ratio ngspice / first order {np.round(mc.std(axis=0, ddof=1) / std, 4)}, "
          f"mean z {np.round(z_mean, 2)}; circuitsim draws / ngspice std {np.round(ratio, 4)}")
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs(z_std) < 4)
    assert np.all(np.abs(ratio - 1) < 4 * np.sqrt(1 / (DRAWS - 1)))


@pytest.mark.parametrize("r", [0.0, 10.0, 300.0])
def test_imac_sim_drawn_law_is_within_its_bound_and_tolerance(r):
    """A layer circuit's law (far cells bounded, as many eigenpairs as TOLERANCE needs) against
    the full first-order σ."""
    from circuitsim.tile.noise_law import TOLERANCE

    layer, _ = _imac_piece(rows=40, outs=6, r=r)
    noise = ReadNoise.of_layer(layer, RELATIVE)
    law = noise.law()
    volts = np.random.default_rng(4).uniform(0.0, 0.8, (50, layer.n_rows))
    drawn, first = np.sqrt(law.variance(volts)), noise.first_order_std(volts)
    gap = np.abs(drawn - first)
    rank = law.own[0][1].shape[0] if law.own else 0
    print(f"\nimac-sim piece 40x6, r = {r:g} ohm: {rank} eigenpairs, largest σ gap {np.max(gap / first):.2e}")
    assert np.all(gap <= noise.std_bound(volts, law) * (1 + 1e-9) + 1e-18)
    assert np.max(gap / first) < TOLERANCE


@pytest.mark.parametrize("rows, partition", [(9, (2, 2)), (12, (1, 2))], ids=["h2-v2", "h1-v2-unequal-ranks"])
def test_imac_sim_network_read_noise_matches_exact_re_solves_of_its_pieces(rows, partition):
    """map_network in the imac-sim topology draws each output's noise (neuron-input volts per
    unit activation) as exact re-solves of its partition pieces with noisy cells give it.

    In the 12-row layer the two pieces of the same rows keep different numbers of directions
    (13 and 11): their laws stand side by side in one layer law (that raised a broadcast error)."""
    from circuitsim.device_statistics import DeviceStatistics
    from circuitsim.devices import Wires
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.network.mapped import map_network
    from circuitsim.network.mlp import MLP, MLPConfig
    from circuitsim.network.mapping import Partition
    from circuitsim.tile.layer_circuit import layer_transfer

    rng = np.random.default_rng(0)
    w, b = rng.uniform(-1, 1, (rows, 4)), rng.uniform(-1, 1, 4)
    net = MLP([w], [b], MLPConfig(layers=(rows, 4), weights="float"))
    draws = 600
    device = dataclasses.replace(MRAM, statistics=DeviceStatistics(read_noise=RELATIVE))
    circuit = CircuitConfig(device=device, wires=Wires(300.0, 300.0), topology="imac-sim")
    layer = map_network(net, [Partition(*partition)], circuit).crossbars[0]
    if partition[0] == 1:  # the case this covers: pieces of the same rows with laws of unequal ranks
        assert len({len(block.read_noise.own[0][1]) for block in layer.blocks}) > 1
    h = np.append(rng.uniform(0.2, 1.0, rows), 1.0)  # one image and the bias input
    exact = np.zeros((draws, 4))
    for block in layer.blocks:
        piece = _piece_of(block, circuit)
        nominal = layer_transfer(piece) @ (circuit.v_read * h[block.rows])
        for n in range(draws):
            noisy = dataclasses.replace(piece, g_pos=piece.g_pos * (1 + RELATIVE * rng.standard_normal(piece.g_pos.shape)),
                                        g_neg=piece.g_neg * (1 + RELATIVE * rng.standard_normal(piece.g_neg.shape)))
            change = layer_transfer(noisy) @ (circuit.v_read * h[block.rows]) - nominal
            exact[n, block.outs] += change / partition[0]  # the horizontal pieces are averaged at the neurons
    law_std = np.sqrt(layer.read_noise.variance(h[None, :])[0])
    ratio = exact.std(axis=0, ddof=1) / law_std
    print(f"\nimac-sim layer read noise, exact re-solves / drawn law, std ratio per output: {np.round(ratio, 4)}")
    assert np.all(np.abs(ratio - 1) < 4 / np.sqrt(2 * (draws - 1)))
    ours = layer.read_noise.draw(np.tile(h, (draws, 1)), layer.read_rng)
    assert np.all(np.abs(ours.std(axis=0, ddof=1) / law_std - 1) < 4 / np.sqrt(2 * (draws - 1)))


def _piece_of(block, circuit):
    from circuitsim.network.topologies import imac_amp_gains
    from circuitsim.tile.layer_circuit import LayerCircuit
    from circuitsim.tile.topology import TopologyConfig

    g = block.conductances
    return LayerCircuit(g[:, 0::2], g[:, 1::2], (slice(0, g.shape[0]),), (slice(0, g.shape[1] // 2),),
                        TopologyConfig.imac_sim(imac_amp_gains(circuit, 1)[0], circuit.opamp_gain),
                        circuit.wires.r_row, circuit.wires.r_col)


def test_a_tiles_read_noise_law_is_computed_once_per_content_and_sigma(monkeypatch):
    """``realize_tile`` takes the law from ``TileCache.derived``: the same realized cells and σ
    (e.g. two points of a sweep that differ only after the crossbar) reuse it, equal to a fresh one."""
    from circuitsim.device_statistics import DeviceStatistics
    from circuitsim.devices import wire_preset
    from circuitsim.network import realization
    from circuitsim.network.circuit_config import CircuitConfig
    from circuitsim.tile.tile_cache import TileCache

    calls = []
    original = ReadNoise.law

    def counted(self, differential=False):
        calls.append(differential)
        return original(self, differential)

    monkeypatch.setattr(ReadNoise, "law", counted)
    g = _tile(6, 8)[0].conductances
    cache = TileCache()
    circuits = [CircuitConfig(device=dataclasses.replace(MRAM, statistics=DeviceStatistics(read_noise=s)),
                              wires=wire_preset("imac-14nm")) for s in (0.02, 0.02, 0.05)]
    laws = [realization.realize_tile(g, c, cache, 0, (0, 0)).read_noise for c in circuits]
    assert len(calls) == 2  # the second 2 % tile hit; 5 % is another law
    fresh = realization.realize_tile(g, circuits[0], TileCache(), 0, (0, 0)).read_noise
    assert np.array_equal(laws[0].diagonal, fresh.diagonal) and np.array_equal(laws[1].own[0][1], fresh.own[0][1])
    assert np.allclose(laws[2].diagonal, laws[0].diagonal * (0.05 / 0.02) ** 2, rtol=1e-5)
