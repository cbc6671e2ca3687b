"""Whole-circuit validation with device statistics: the deck simulates the realized
conductances (programming noise, stuck-at faults, drift with global compensation) and
ngspice still agrees with the evaluator."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from circuitsim.network.mapped import map_network
from circuitsim.network.mapping import map_layer
from circuitsim.network.realization import realize_conductances
from circuitsim.study.points import PointContext
from circuitsim.study.spec import build_circuit_config, parse_spec
from circuitsim.study.validation import design_network, run_validation
from circuitsim.study.whole_circuit import network_deck

SPEC = """
title = "small whole-circuit validation with variation"
dataset = {name = "digits", side = 8, test_fraction = 0.3}
network = {layers = [64, 16, 10], epochs = 40}
wires = {r_row = 2.0, r_col = 2.0}
sweep = {partitions = [{h = [4, 2], v = [2, 2]}]}
[device]
preset = "sot-mram-amin2022"
programming_noise = 0.1
stuck_at_gmin = 0.02
read_noise = 0.01
drift_nu = 0.05
drift_nu_std = 0.01
t_inference = 1e4
drift_compensation = "global"
seed = 5
"""


@pytest.mark.ngspice
def test_deck_holds_the_realized_conductances(tmp_path):
    point = parse_spec(SPEC).points()[0]
    circuit = build_circuit_config(point.config)
    context = PointContext(tmp_path)
    net, _ = context.network(point.config)
    data = context.dataset(point.config)
    layer = map_layer(net.weights[0], net.biases[0], circuit.device, point.partitions[0])
    target = layer.tile_conductances(1, 0)
    realized = realize_conductances(target, circuit.device, 0, (1, 0))[1]
    assert not np.allclose(realized, target)
    mapped = map_network(net, point.partitions, circuit, context.tiles)
    designs = design_network(mapped, "behavioural", data.x_train[:256])
    deck = network_deck(mapped, designs, np.zeros((1, 64)), layers=[0])
    values = {m.group(1): float(m.group(2)) for m in
              re.finditer(r"^R0_1_0_cell(\d+_\d+) \S+ \S+ (\S+)", deck.text, re.M)}
    for (i, j) in ((0, 0), (3, 5), (7, 9)):
        assert values[f"{i}_{j}"] == pytest.approx(1 / realized[i, j], rel=1e-6)
    assert re.search(r"\*\(v\(0_1_0_tia1\)-v\(0_1_0_tia0\)\)", deck.text)  # compensation factor


@pytest.mark.ngspice
def test_validation_with_variation_agrees(tmp_path):
    run_validation(parse_spec(SPEC), tmp_path / "out", n_images=30, cache_dir=tmp_path / "cache",
                   log=lambda s: None)
    csv = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert (csv["status"] == "ok").all(), csv["error"].tolist()
    assert (csv["agreement"] >= 29 / 30).all()
    assert (csv["max_output_error"] < 1e-3).all()
