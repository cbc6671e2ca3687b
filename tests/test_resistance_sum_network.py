"""Binary networks on resistance-sum strings through the one mapping path (``map_network``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from circuitsim.devices import Device, Wires
from circuitsim.errors import ConfigError
from circuitsim.network import CircuitConfig, map_network
from circuitsim.network.layers import Activation, Dense
from circuitsim.network.mapping import Partition
from circuitsim.network.network import Network
from circuitsim.periphery.adc import ADCConfig
from circuitsim.tile.resistance_sum import StringCell, StringReadout, string_currents

MTJ = Device(5e3, 10e3, 2, "mtj")


def _binary(rng, *shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _network(rng, n_in=90, n_hidden=20, n_out=4, hidden="step"):
    layers = [Dense(_binary(rng, n_in, n_hidden), _binary(rng, n_hidden), gain=0.1), Activation(hidden),
              Dense(_binary(rng, n_hidden, n_out), _binary(rng, n_out), gain=0.1), Activation("softmax")]
    return Network(layers, (n_in,))


def _images(rng, n, n_in=90):
    return (rng.random((n, n_in)) < 0.4).astype(float)


def _circuit(**changes):
    return CircuitConfig(**{"device": MTJ, "topology": "resistance-sum", "wires": Wires(r_col=5.0), **changes})


def test_nominal_strings_compute_the_binary_network_exactly():
    rng = np.random.default_rng(0)
    net, x = _network(rng), _images(rng, 50)
    mapped = map_network(net, [Partition(2, 1), Partition(1, 1)], _circuit())
    np.testing.assert_allclose(mapped.forward(x, energy=False)[0], net.forward(x), rtol=1e-12, atol=1e-12)
    # energy: every string's read at its mean resistance, by hand (91 rows in 46 + 45, then 21)
    cell = StringCell(5e3, 10e3, 500.0, 1e9, 5.0)
    per_cell = 0.5 * (cell.r_lo + cell.r_hi)
    circuit = mapped.circuit
    joules = circuit.t_read * circuit.v_read ** 2 * (20 / (46 * per_cell) + 20 / (45 * per_cell) + 4 / (21 * per_cell))
    assert mapped.energy_per_inference(x)["crossbar_energy"] == pytest.approx(joules, rel=1e-12)


def test_layer_sums_are_the_solved_strings_with_mtj_spread():
    """The mapped sums equal the native engine's string currents read by the readout."""
    rng = np.random.default_rng(1)
    net, x = _network(rng), _images(rng, 6)
    circuit = _circuit(mtj_ra_spread=0.05, mtj_tmr_spread=0.1)
    mapped = map_network(net, [Partition(2, 1), Partition(1, 1)], circuit)
    layer = mapped.crossbars[0]
    sums = layer.sums(x, use_adc=False)
    w, b = net.layers[0].matrix()
    target = np.vstack([w, b[None, :]])
    h_aug = np.hstack([x, np.ones((len(x), 1))])
    nominal = StringCell(5e3, 10e3, circuit.fet_r_on, circuit.fet_r_off, 5.0)
    readout = StringReadout(nominal, v_read=circuit.v_read)
    expect = np.zeros_like(sums)
    for block in layer.blocks:  # the tile's MTJs, re-derived from its effective weights' circuit
        from circuitsim.network.resistance_sum import mtj_resistances
        r_a, r_b = mtj_resistances(target[block.rows, block.outs], circuit, 0, block.tile)
        xs = 2 * h_aug[:, block.rows] - 1
        mac = readout.mac(string_currents(r_a, r_b, xs, nominal, circuit.v_read), block.rows.stop - block.rows.start)
        expect[:, block.outs] += 0.5 * (mac + target[block.rows, block.outs].sum(0))
    np.testing.assert_allclose(sums, expect, rtol=0, atol=1e-7)  # MACs are differences of ~1e5 ohm: 1e-7 of a step
    assert np.abs(sums - h_aug @ target).max() > 0.05  # the spread shows
    again = map_network(net, [Partition(2, 1), Partition(1, 1)], circuit).crossbars[0].sums(x, use_adc=False)
    np.testing.assert_array_equal(again, sums)  # seeded per tile


def test_adc_after_every_string():
    rng = np.random.default_rng(2)
    net, x = _network(rng), _images(rng, 40)
    mapped = map_network(net, [Partition(2, 1), Partition(1, 1)], _circuit(adc=ADCConfig(bits=6)), x_calibration=x)
    assert all(b.adc is not None for c in mapped.crossbars for b in c.blocks)
    agree = np.mean(mapped.predict(x) == np.argmax(net.forward(x), axis=1))
    assert agree > 0.8


@pytest.mark.parametrize("make, message", [
    (lambda rng: (_network(rng), [Partition(1, 1), Partition(1, 1)], _circuit()),
     "strings of 91 cells (91 rows in 1 partitions) are longer than the readout's range of 64"),
    (lambda rng: (_network(rng, hidden="sigmoid"), [Partition(2, 1), Partition(1, 1)], _circuit()),
     "reads Activation sigmoid outputs"),
    (lambda rng: (Network([Dense(0.5 * _binary(rng, 90, 4), np.ones(4)), Activation("softmax")], (90,)),
                  [Partition(2, 1)], _circuit()), "crossbar layer 1 weight[0, 0] is -0.5; train with binary weights"),
])
def test_bad_networks_are_one_line(make, message):
    net, parts, circuit = make(np.random.default_rng(3))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        map_network(net, parts, circuit)
    assert "\n" not in str(info.value)


def test_non_binary_images_are_one_line():
    rng = np.random.default_rng(4)
    mapped = map_network(_network(rng), [Partition(2, 1), Partition(1, 1)], _circuit())
    with pytest.raises(ConfigError, match=re.escape("image value[0, 0] is 0.3; binarize the images")):
        mapped.predict(np.full((2, 90), 0.3))


DOC = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "resistance-sum.md"
SPEC = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)[0]
"""The docs page's sweep (run here as it stands)."""


def test_sweep_over_partitions_and_mtj_spread(tmp_path):
    from circuitsim.study.spec import parse_spec
    from circuitsim.study.sweep import run_sweep

    frame = run_sweep(parse_spec(SPEC), tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda line: None)
    assert (frame["status"] == "ok").all() and len(frame) == 4
    nominal = frame[frame["mtj_tmr_spread"] == 0.0]
    # nominal strings compute the binary network exactly, whatever the partitions
    np.testing.assert_array_equal(nominal["accuracy"], nominal["digital_accuracy"])
    assert (frame["crossbar_energy"] > 0).all()



@pytest.mark.parametrize("edit, message", [
    (("{h = [3, 1], v = [1, 2]}", "{h = [1, 1], v = [1, 1]}"),
     "layer 1 has strings of 65 cells, longer than the readout's range of 64 (circuit.string_max)"),
    (('activation = "step"', 'activation = "sigmoid"'), "network.activation is 'sigmoid'; set network.activation = "),
    (('weights = "binary"', 'weights = "ternary"'), "network.weights is 'ternary'"),
    (("binarize = true", "binarize = false"), "dataset.binarize is False; set dataset.binarize = true"),
    (('[circuit]', '[circuit]\nstring_max = 32'), "layer 1 has strings of 33 cells"),
])
def test_bad_resistance_sum_specs_are_one_line_before_anything_runs(edit, message):
    from circuitsim.study.spec import parse_spec

    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_spec(SPEC.replace(*edit))
    assert "\n" not in str(info.value)


def test_a_cnn_on_resistance_sum_strings_is_one_line():
    from circuitsim.study.spec import parse_spec

    spec = (SPEC.replace('layers = [64, 32, 10]\nweights = "binary"\nactivation = "step"\nepochs = 5',
                         'kind = "cnn"\nepochs = 1').replace("side = 8", "side = 28")
            .replace("partitions = [{h = [2, 1], v = [1, 1]}, {h = [3, 1], v = [1, 2]}]", "partitions = [{auto = 64}]"))
    with pytest.raises(ConfigError, match=re.escape("the resistance-sum topology maps binary MLPs; network kind 'cnn'")):
        parse_spec(spec)


@pytest.mark.ngspice
def test_validate_runs_the_strings_in_ngspice(tmp_path, capsys):
    import pandas as pd

    from circuitsim.cli import main

    spec = tmp_path / "rs.toml"
    spec.write_text(SPEC)
    out = tmp_path / "val"
    status = main(["validate", str(spec), "--images", "3", "--out", str(out), "--cache", str(tmp_path / "cache"),
                   "--points", "3", "--scope", "layer"])
    assert status == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "validation.csv")
    assert frame["status"][0] == "ok", frame["error"][0]
    with capsys.disabled():
        print(f"\nresistance-sum validate (tmr spread 0.3): max sum error {frame['max_output_error'][0]:.2e}, "
              f"agreement {frame['agreement'][0]}, operating points {frame['n_operating_points'][0]}")
    assert frame["max_output_error"][0] < 1e-6 and frame["agreement"][0] == 1.0
    assert main(["validate", str(spec), "--images", "3", "--out", str(tmp_path / "v2"), "--cache",
                 str(tmp_path / "cache"), "--points", "0"]) != 0
    assert "use --scope layer" in capsys.readouterr().err


def test_docs_string_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]
    exec(compile(code, "<resistance-sum.md>", "exec"), {"__name__": "__example__"})
    mac, exact = (np.array(re.findall(r"-?\d+\.?\d*", part), float) for part in
                  capsys.readouterr().out.split("] [")[:2])
    np.testing.assert_allclose(mac, exact, atol=1e-9)
