"""Networks read through sense resistors (issue 25, item 4): ``[circuit] readout = "sense"``.

Every canonical tile's bit lines end in ``r_sense`` to ground; the output is the current through
it. Linear cells: the tile's ``T`` with the bit-line ends loaded by the resistor (the port of
:meth:`TIA.sense_resistor`); nonlinear cells: the exact solve with ``r_sense``. The whole-circuit
deck writes real resistors (``Rsense``), so the ngspice side is an independent circuit.

The small network: scikit-learn digits at 8 × 8, MLP 64-16-10, SOT-MRAM conductances, 2 Ω wire
segments, partitions 2-1 / 2-1, ``r_sense = 100 Ω``. Measured: 20 of 20 predictions agree for
linear and sinh cells (whole circuit, behavioural neurons), crossbar energies within 3e-8; every
layer's summed outputs in ngspice (tight tolerances) within 4e-11 of the evaluator's sums. The
docs' spec (``r_sense`` = 10, 100, 1000 Ω, 60 images) validated: 60 of 60 at every point.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from circuitsim.cli import main as cli_main
from circuitsim.device_statistics import DeviceStatistics
from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import Partition
from circuitsim.study.points import PointContext
from circuitsim.study.spec import build_circuit_config, parse_spec
from circuitsim.study.validation import validate_point
from circuitsim.study.whole_circuit import FullCircuitConfig, layer_sum_lines
from circuitsim.tile.cells import SinhCell
from circuitsim.tile.crossbar import TIA, Tile
from circuitsim.tile.extract import characterize
from test_nonlinear_network import _small_mlp
from test_validate import SPEC as VALIDATE_SPEC

ROOT = Path(__file__).resolve().parent.parent
SINH = '[cells]\nmodel = "sinh"\nv0 = 0.1\nr_series = 1000.0\n'
SPEC = VALIDATE_SPEC.split("[sweep]")[0].replace("[wires]", '[circuit]\nreadout = "sense"\nr_sense = 100.0\n[wires]')
ONE_POINT = "[sweep]\npartitions = [{h = [2, 1], v = [2, 1]}]\n"
SOT = Device(8.49e3, 25.46e3, 2, "sot-mram-amin2022")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.ngspice
def test_the_sense_port_is_the_resistor():
    """The native ``T`` of a tile ending in the port equals ngspice's deck with real resistors,
    and is smaller than at virtual ground (the bit lines rise)."""
    from circuitsim.study.layer_validation import _ngspice_currents

    rng = np.random.default_rng(0)
    plain = Tile(rng.uniform(1 / 25e3, 1 / 8e3, (5, 4)), r_row=2.0, r_col=3.0)
    sensed = characterize(plain.with_wires(tia=TIA.sense_resistor(100.0)))
    volts = rng.uniform(0.0, 0.8, (3, 5))
    spice = _ngspice_currents(plain, volts, "shared", r_sense=100.0)  # Rsense<j> to ground
    assert np.abs(volts @ sensed.T.T - spice).max() <= 1e-12 * np.abs(spice).max()
    grounded = characterize(plain).T
    assert np.all(sensed.T < grounded) and (grounded - sensed.T).max() > 0.01 * grounded.max()


def test_circuit_tiles_and_their_cache_keys():
    g = np.full((3, 2), 1e-4)
    current, sense = CircuitConfig(wires=Wires(2.0, 2.0)), CircuitConfig(wires=Wires(2.0, 2.0), readout="sense")
    assert current.tile(g).content_hash() == Tile(g, r_row=2.0, r_col=2.0).content_hash()  # as before
    assert sense.tile(g).tia == TIA.sense_resistor(100.0) and sense.tile(g).content_hash() != current.tile(g).content_hash()
    assert not sense.charge_mode and CircuitConfig(readout="charge").charge_mode


def test_nonlinear_tiles_end_in_the_sense_resistor():
    """Weakly nonlinear sinh cells solved with the resistor give what the linear port's ``T``
    gives; strongly nonlinear ones do not; both read less than at virtual ground."""
    net, parts = _small_mlp(), [Partition(), Partition()]
    h = np.random.default_rng(0).integers(0, 2, (20, 6)).astype(float)

    def mapped(v0, readout="sense"):
        cells = SinhCell(i0=1.0, v0=v0, r_series=500.0)
        return map_network(net, parts, CircuitConfig(device=SOT, wires=Wires(2.0, 2.0), cells=cells, readout=readout))

    weak = mapped(100.0)
    assert weak.crossbars[0].blocks[0].exact.tile.r_sense == 100.0
    exact, linear = weak.layer_sums(0, h), weak.linear_at_read().layer_sums(0, h)
    assert np.abs(exact - linear).max() < 1e-4 * np.abs(linear).max()
    grounded = mapped(100.0, "current").linear_at_read().layer_sums(0, h)
    assert np.abs(linear - grounded).max() > 0.01 * np.abs(grounded).max()  # 100 ohm lifts the bit lines
    strong = mapped(0.05)
    assert np.abs(strong.layer_sums(0, h) - strong.linear_at_read().layer_sums(0, h)).max() > 0.05


def test_read_noise_is_drawn_through_the_sense_resistors():
    stats = DeviceStatistics(read_noise=0.05)
    device = Device(8.49e3, 25.46e3, 2, "sot", statistics=stats)
    laws = [map_network(_small_mlp(), [Partition(), Partition()],
                        CircuitConfig(device=device, wires=Wires(2.0, 2.0), readout=r)).crossbars[0].blocks[0].read_noise
            for r in ("current", "sense")]
    h = np.ones((1, 7))
    assert all(law is not None for law in laws)
    assert 0 < laws[1].variance(h).sum() < laws[0].variance(h).sum()  # the loaded bit lines pass less of it


@pytest.mark.parametrize("extra, message", [
    ("r_sense = 0.0", "circuit.r_sense must be a resistance > 0"),
    ("r_sense = -5.0", "circuit.r_sense must be a resistance > 0"),
    ("r_sense = nan", "circuit.r_sense must be a resistance > 0"),
    ("r_sense = inf", "circuit.r_sense must be a resistance > 0"),
    ('r_sense = "100"', "circuit.r_sense must be a number"),
    ('topology = "imac-sim"', "the imac-sim topology reads its bit lines with its own difference amplifiers"),
    ('topology = "resistance-sum"', "reads its strings with its own resistance readout"),
    ("t_int = 5e-8", 'circuit.t_int is ignored with readout = "sense"'),
])
def test_what_the_sense_readout_cannot_be_is_refused_in_one_line(extra, message):
    circuit = extra if extra.startswith("r_sense") else "r_sense = 100.0\n" + extra
    with pytest.raises(ConfigError) as info:
        parse_spec(SPEC.replace("r_sense = 100.0", circuit) + ONE_POINT)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_r_sense_without_the_sense_readout_is_refused():
    with pytest.raises(ConfigError, match='circuit.r_sense is ignored with readout = "current"'):
        parse_spec(SPEC.replace('readout = "sense"\n', "") + ONE_POINT)
    with pytest.raises(ConfigError, match="r_sense must be > 0"):
        TIA.sense_resistor(0.0)
    assert len(parse_spec(SPEC + '[sweep]\n"circuit.readout" = ["current", "sense"]\n').points()) == 2


def test_docs_spec_sweeps_r_sense(cache, tmp_path):
    """The spec of docs/tutorials/nonlinear-cells.md's sense-resistor section: r_sense a grid axis."""
    text = (ROOT / "docs" / "tutorials" / "nonlinear-cells.md").read_text()
    (spec,) = [b for b in re.findall(r"```toml\n(.*?)```", text, flags=re.S) if 'readout = "sense"' in b]
    points = parse_spec(spec).points()
    assert [build_circuit_config(p.config).r_sense for p in points] == [10.0, 100.0, 1000.0]
    (tmp_path / "sense.toml").write_text(spec)
    assert cli_main(["sweep", str(tmp_path / "sense.toml"), "--out", str(tmp_path / "out"), "--cache", str(cache)]) == 0
    frame = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(frame["status"]) == ["ok"] * 3 and list(frame["r_sense"]) == [10.0, 100.0, 1000.0]
    assert set(frame["readout"]) == {"sense"} and set(frame["cells"]) == {"sinh"}
    energy = frame["crossbar_energy"].to_numpy()  # a larger resistor in every column's path draws less
    assert np.all(np.diff(energy) < 0) and np.all(np.diff(frame["crossbar_energy_linear"].to_numpy()) < 0)


@pytest.mark.ngspice
@pytest.mark.parametrize("cells", ["", SINH], ids=["linear", "sinh"])
def test_whole_circuit_agrees_with_the_evaluator(cells, cache):
    """The whole MLP in one ngspice deck (every bit line ending in its Rsense, difference
    amplifiers, neurons) against the evaluator behind the same neurons."""
    (point,) = parse_spec(SPEC + cells + ONE_POINT).points()
    row = validate_point(point, PointContext(cache), 20, FullCircuitConfig(scope="network"), "behavioural")
    assert row["status"] == "ok", row["error"]
    assert row["agreement"] >= 0.99 and row["accuracy_circuit"] > 0.3
    assert abs(row["energy_crossbar"] - row["energy_crossbar_evaluator"]) < 1e-4 * row["energy_crossbar_evaluator"]


@pytest.mark.ngspice
@pytest.mark.parametrize("cells", ["", SINH], ids=["linear", "sinh"])
def test_every_layers_sums_agree_with_ngspice(cells, cache):
    """Each layer's tiles, sense resistors and summing amplifiers of the deck, driven by the
    layer's inputs (ngspice at tight tolerances), give the evaluator's sums."""
    from circuitsim.spice import get_backend
    from circuitsim.tile.nonlinear_run import SPICE_OPTIONS

    (point,) = parse_spec(SPEC + cells + ONE_POINT).points()
    context, circuit = PointContext(cache), build_circuit_config(point.config)
    net, _ = context.network(point.config)
    mapped = map_network(net, point.partitions, circuit, context.tiles)
    inputs, _ = mapped.mlp.forward(context.dataset(point.config).x_test[:10], return_preactivations=True)
    for k, (crossbar, h) in enumerate(zip(mapped.crossbars, inputs)):
        s = crossbar.sums(h, use_adc=False)
        per_unit = 0.5 / np.abs(s).max()  # within the amplifiers' rails
        n_in, v = h.shape[1], circuit.v_read
        lines = [f"layer {k}", *[f"Vx{k}_{i} x{k}_{i} 0 DC 0" for i in range(n_in)], f"Vx{k}_{n_in} x{k}_{n_in} 0 DC {v}"]
        nodes = layer_sum_lines(mapped, k, per_unit, FullCircuitConfig(), lines)
        assert any(line.startswith(f"R{k}_0_0_sense0 ") for line in lines) and not any("Eamp" in ln for ln in lines)
        steps = [[f"alter vx{k}_{i} dc = {float(v * x)!r}" for i, x in enumerate(row)] + ["op"] for row in h]
        deck = "\n".join(lines + list(SPICE_OPTIONS) + [".end", ""])
        results = get_backend(circuit.backend).run(deck, steps, save=[f"v({n})" for n in nodes])
        spice = np.array([[r[f"v({n})"][0] for n in nodes] for r in results])
        assert np.abs(spice - per_unit * s).max() <= 1e-6 * np.abs(per_unit * s).max()
