"""Every network kind × topology × feature: a sweep point runs, or is refused before anything
runs with one line giving a physical reason.

The matrix is walked on small specs (digits 8 × 8, one small network per kind). ``EXPECTED``
is the table the closing note of issue 21 quotes; a cell is ``"runs"`` or a fragment of the
refusal's one line.
"""

from __future__ import annotations

import pytest

from circuitsim.errors import CircuitsimError
from circuitsim.network.layers import Activation, Conv2d, Dense, Flatten, MaxPool
from circuitsim.network.network import Network
from circuitsim.study.points import PointContext, run_point
from circuitsim.study.spec import parse_spec
from circuitsim.study.validation import validate_point
from circuitsim.study.whole_circuit import FullCircuitConfig

NETWORKS = {
    "mlp": 'layers = [64, 12, 10]\nweights = "binary"\nepochs = 2',
    "random": 'layers = [64, 12, 10]\nweights = "random"\ntraining = "mask"\nepochs = 1',
    "cnn": 'kind = "cnn"\nchannels = [2]\nkernel = 3\npadding = 1\ndense = [12]\nweights = "ternary"\nepochs = 1',
    "onnx": None,  # written per test session: a small CNN saved as a weights file
}
TOPOLOGIES = ("canonical", "imac-sim")
FEATURES = {
    "plain": "",
    "statistics": "[device]\nprogramming_noise = 0.05\nstuck_at_gmin = 0.01\nseed = 3\n",
    "read-noise": "[device]\nread_noise = 0.01\nseed = 3\n",
    "adc": "[adc]\nkind = \"sar\"\nbits = 4\n",
    "affine": "[compensation]\nmethod = \"affine\"\n",
    "lora": "[compensation]\nmethod = \"lora\"\nrank = 1\nepochs = 1\n",
    "hwa": "[compensation]\nmethod = \"hwa\"\nepochs = 1\nrefresh_steps = 5\n",
    "keep": "[network-extra]\nkeep = 0.25\n",
    "validate": "",  # whole-circuit (MLPs) or layer-by-layer (CNN, ONNX) validation against ngspice
}

IMAC_ADC = "feeds its difference amplifiers straight into analog neurons"
HWA_RANDOM = "cells are drawn, not programmed"
KEEP = "applies only to a random network"
LAYER_IMAC = "an imac-sim layer circuit is checked whole"

EXPECTED = {
    ("mlp", "canonical"): {"keep": KEEP},
    ("mlp", "imac-sim"): {"adc": IMAC_ADC, "keep": KEEP},
    ("random", "canonical"): {"hwa": HWA_RANDOM},
    ("random", "imac-sim"): {"adc": IMAC_ADC, "hwa": HWA_RANDOM},
    ("cnn", "canonical"): {"keep": KEEP},
    ("cnn", "imac-sim"): {"adc": IMAC_ADC, "keep": KEEP, "validate": LAYER_IMAC},
    ("onnx", "canonical"): {"keep": KEEP},
    ("onnx", "imac-sim"): {"adc": IMAC_ADC, "keep": KEEP, "validate": LAYER_IMAC},
}


def _save_small_cnn(path):
    """A small CNN of the kind an ONNX file brings, written as a weights file (``Network.save``)."""
    import numpy as np

    rng = np.random.default_rng(1)
    net = Network([Conv2d(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2) * 0.1, padding=1), Activation("relu"),
                   MaxPool(), Flatten(), Dense(rng.normal(size=(32, 10)) * 0.3, rng.normal(size=10) * 0.1),
                   Activation("softmax")], (1, 8, 8), name="small")
    net.save(path)
    return path


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return _save_small_cnn(tmp_path_factory.mktemp("model") / "small.npz")


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return PointContext(tmp_path_factory.mktemp("cache"))


def _spec(kind: str, topology: str, feature: str, onnx_model) -> str:
    network = NETWORKS[kind] if kind != "onnx" else f'onnx = "{onnx_model}"'
    extra = FEATURES[feature]
    if extra.startswith("[network-extra]"):
        network += "\n" + extra.split("\n", 1)[1]
        extra = ""
    device = "[device]\npreset = \"sot-mram-amin2022\"\n"
    if extra.startswith("[device]"):
        device += extra.split("\n", 1)[1]
        extra = ""
    return (f"[dataset]\nname = \"digits\"\nside = 8\ntest_fraction = 0.2\n[network]\n{network}\n{device}"
            f"[wires]\nr_row = 5.0\nr_col = 5.0\n[circuit]\ntopology = \"{topology}\"\n{extra}"
            "[sweep]\npartitions = [{auto = 16}]\n")


def _outcome(kind, topology, feature, onnx_model, context) -> str:
    try:
        spec = parse_spec(_spec(kind, topology, feature, onnx_model))
        point = spec.points()[0]
        if feature != "validate":
            row = run_point(point, context)
        else:
            scope = "layer" if kind in ("cnn", "onnx") else "network"
            row = validate_point(point, context, n_images=2, config=FullCircuitConfig(scope=scope), model="behavioural")
    except CircuitsimError as exc:
        return str(exc).splitlines()[0]
    return "runs" if row["status"] == "ok" else row["error"]


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.parametrize("kind,topology", list(EXPECTED))
def test_every_feature_runs_or_is_refused_for_a_physical_reason(kind, topology, onnx_model, context):
    expected = EXPECTED[(kind, topology)]
    got = {feature: _outcome(kind, topology, feature, onnx_model, context) for feature in FEATURES}
    for feature, outcome in got.items():
        want = expected.get(feature, "runs")
        assert (outcome == "runs") if want == "runs" else (want in outcome), (feature, outcome)
        assert "not supported" not in outcome and "\n" not in outcome


def _table() -> str:
    """The matrix as a Markdown table (``python tests/test_feature_matrix.py``): what runs, and why the
    rest is refused."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        model = _save_small_cnn(Path(folder) / "small.npz")
        context = PointContext(Path(folder) / "cache")
        lines = ["| network × topology | " + " | ".join(FEATURES) + " |", "|---" * (len(FEATURES) + 1) + "|"]
        for kind, topology in EXPECTED:
            cells = [_outcome(kind, topology, feature, model, context) for feature in FEATURES]
            lines.append(f"| {kind} × {topology} | " + " | ".join(c if c == "runs" else f"refused: {c}" for c in cells)
                         + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table())
