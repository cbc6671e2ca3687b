"""ONNX models handed over by a user (issue 22): the model's content is part of each point's
identity and of provenance.json; a model with fewer outputs than classes, string weights or a
Reshape to ``[0, 0, 0]`` is one clear line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_integrity import SPEC, one_error_line

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def dense_model(path: Path, weights: np.ndarray, extra_nodes=(), extra_inits=()) -> Path:
    """``y = x @ W`` (with ``extra_nodes`` before the MatMul reading ``x`` and writing ``h``)."""
    n_in, n_out = weights.shape
    first = "h" if extra_nodes else "x"
    nodes = [*extra_nodes, helper.make_node("MatMul", [first, "w"], ["y"], name="fc")]
    inits = [*extra_inits, numpy_helper.from_array(weights.astype(np.float32), "w")]
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def onnx_spec(tmp_path: Path, model: Path) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("layers = [64, 16, 10]\nepochs = 3", f'onnx = "{model}"')
                    .replace("partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [2, 1]}]",
                             "partitions = [{h = [1], v = [1]}, {h = [2], v = [2]}]"))
    return spec


def sweep(spec: Path, out: Path, cache: Path):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", "sweep", str(spec), "--out", str(out),
                           "--cache", str(cache)], capture_output=True, text=True, timeout=300)


def test_a_model_replaced_at_the_same_path_is_new_points(tmp_path):
    rng = np.random.default_rng(0)
    model = dense_model(tmp_path / "model.onnx", rng.normal(size=(64, 10)))
    spec, out, cache = onnx_spec(tmp_path, model), tmp_path / "out", tmp_path / "cache"
    first = sweep(spec, out, cache)
    assert first.returncode == 0, first.stderr
    old_hash = json.loads((out / "provenance.json").read_text())["model_sha256"][str(model)]
    import hashlib

    assert old_hash == hashlib.sha256(model.read_bytes()).hexdigest()
    old = pd.read_csv(out / "results.csv")
    dense_model(model, rng.normal(size=(64, 10)))  # another model, same path, same spec
    second = sweep(spec, out, cache)
    assert second.returncode == 0, second.stderr
    assert re.findall(r"^\[\d+/2\]", second.stdout, flags=re.M) == ["[1/2]", "[2/2]"]  # both computed again
    new_hash = json.loads((out / "provenance.json").read_text())["model_sha256"][str(model)]
    assert new_hash != old_hash and new_hash == hashlib.sha256(model.read_bytes()).hexdigest()
    assert not np.allclose(pd.read_csv(out / "results.csv")["digital_accuracy"], old["digital_accuracy"]) or \
        not np.allclose(pd.read_csv(out / "results.csv")["accuracy"], old["accuracy"])


def test_point_keys_of_specs_without_a_model_file_are_unchanged():
    """Existing results folders resume: the keys of the points of a spec without a model file are
    the ones circuitsim gave them before model hashes were part of a point's identity."""
    from circuitsim.study.spec import parse_spec

    assert [p.key for p in parse_spec(SPEC).points()] == ["013fe02ab72e9898", "de0f5cde21e56089"]


def test_a_model_with_fewer_outputs_than_classes_is_refused(tmp_path):
    model = dense_model(tmp_path / "five.onnx", np.ones((64, 5)))
    line = one_error_line(sweep(onnx_spec(tmp_path, model), tmp_path / "out", tmp_path / "cache"))
    assert "has 5 outputs but dataset 'digits' has 10 classes" in line
    assert not (tmp_path / "out").exists()


def test_string_weights_and_reshape_to_zeros_are_one_line(tmp_path):
    strings = helper.make_tensor("w", TensorProto.STRING, [64, 10], [b"0.5"] * 640)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [strings])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "strings.onnx"))
    line = one_error_line(sweep(onnx_spec(tmp_path, tmp_path / "strings.onnx"), tmp_path / "a", tmp_path / "c"))
    assert "holds object values, not numbers" in line
    reshape = dense_model(tmp_path / "reshape.onnx", np.ones((64, 10)),
                          [helper.make_node("Reshape", ["x", "shape"], ["h"], name="r")],
                          [numpy_helper.from_array(np.array([0, 0, 0], dtype=np.int64), "shape")])
    line = one_error_line(sweep(onnx_spec(tmp_path, reshape), tmp_path / "b", tmp_path / "c"))
    assert "cannot reshape an input of shape" in line and "(0, 0, 0)" in line
