"""Specs with layer networks: a trained CNN and an ONNX model."""

from __future__ import annotations

import numpy as np
import pytest

from circuitsim.errors import ConfigError
from circuitsim.study.points import PointContext, run_point
from circuitsim.study.spec import parse_spec

CNN = """
[dataset]
name = "digits"
side = 12
[network]
kind = "cnn"
channels = [6, 12]
kernel = 3
padding = 1
dense = [32]
epochs = 3
batch_size = 32
learning_rate = 0.01
weights = "ternary"
[wires]
r_row = 0.0
r_col = 0.0
[sweep]
partitions = [{auto = 32}, {h = [1, 2, 3, 1], v = [1, 1, 2, 1]}]
"adc.bits" = [6]
"""


def test_cnn_spec_points_and_run(tmp_path):
    spec = parse_spec(CNN)
    points = spec.points()
    assert [p.values["h_partitions"] for p in points] == ["1-2-2-2", "1-2-3-1"]
    row = run_point(points[0], PointContext(tmp_path))
    assert row["status"] == "ok", row["error"]
    assert row["n_tiles"] == 1 + 2 + 2 + 2
    # conv1: 12x12 (padded) positions x 6 outputs; conv2: 4x4 positions x 12 outputs in 2 row pieces;
    # the dense layers: 32 and 10 outputs in 2 row pieces each
    assert row["conversions_per_inference"] == 144 * 6 + 2 * 16 * 12 + 2 * 32 + 2 * 10
    assert row["digital_accuracy"] > 0.4
    # ternary weights on ideal wires: the analog tiles are the digital network
    assert row["analog_accuracy"] == pytest.approx(row["digital_accuracy"])
    assert abs(row["accuracy"] - row["digital_accuracy"]) < 0.1  # a 6-bit ADC costs little


def test_layer_spec_errors():
    with pytest.raises(ConfigError, match="key 'layers' does not apply to a \\[network\\] of kind 'cnn'"):
        parse_spec(CNN.replace('kind = "cnn"', 'kind = "cnn"\nlayers = [144, 10]'))
    with pytest.raises(ConfigError, match="one value per crossbar layer \\(4\\)"):
        parse_spec(CNN.replace("h = [1, 2, 3, 1]", "h = [1, 2]"))
    with pytest.raises(ConfigError, match="kind must be one of mlp, cnn, onnx"):
        parse_spec(CNN.replace('kind = "cnn"', 'kind = "rnn"'))


def test_onnx_spec_feeds_the_dataset_in_the_model_shape(tmp_path):
    onnx = pytest.importorskip("onnx")
    from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten
    from circuitsim.network.network import Network
    from circuitsim.network.onnx_export import save_onnx

    rng = np.random.default_rng(3)
    net = Network([Conv2d(rng.normal(size=(2, 1, 3, 3))), Activation("relu"), Flatten(),
                   Dense(rng.normal(size=(72, 10)), rng.normal(size=10))], (1, 8, 8))
    path = save_onnx(net, tmp_path / "model.onnx")
    assert onnx.load(str(path)).graph.input[0].name == "x"
    text = f'[dataset]\nname = "digits"\nside = 8\n[network]\nonnx = "{path}"\n[sweep]\npartitions = [{{auto = 16}}]\n'
    point = parse_spec(text).points()[0]
    row = run_point(point, PointContext(tmp_path / "cache"))
    assert row["status"] == "ok", row["error"]
    assert row["n_tiles"] == 1 + 5
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(1, 8, 8\) but the dataset gives 20 × 20"):
        parse_spec(text.replace("side = 8", "side = 20"))
    with pytest.raises(ConfigError, match="does not exist"):
        parse_spec(text.replace(str(path), str(tmp_path / "nothing.onnx")))


@pytest.mark.ngspice
def test_validate_scope_layer_on_a_cnn(tmp_path):
    """Every crossbar layer's tiles in ngspice (a sample of conv positions) against the evaluator."""
    from circuitsim.cli import main

    spec = tmp_path / "cnn.toml"
    spec.write_text(CNN.replace('"adc.bits" = [6]', "").replace("r_row = 0.0", "r_row = 5.0")
                    .replace("r_col = 0.0", "r_col = 5.0").replace("{auto = 32}, ", ""))
    out = tmp_path / "out"
    status = main(["validate", str(spec), "--scope", "layer", "--images", "10", "--out", str(out),
                   "--cache", str(tmp_path / "cache")])
    assert status == 0
    import pandas as pd

    row = pd.read_csv(out / "validation.csv").iloc[0]
    assert row["agreement"] >= 0.99 and row["max_output_error"] < 1e-6
    # tiles per layer 1, 2, 3 x 2, 1: 4 sampled positions per image in the convolutions
    assert row["n_operating_points"] == 10 * 4 * 1 + 10 * 4 * 2 + 10 * 6 + 10 * 1
    assert main(["validate", str(spec), "--images", "10", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 2
