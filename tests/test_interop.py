"""Models from real exporters: PyTorch (default and legacy ONNX exporters) and skl2onnx.

Every imported network is compared with onnxruntime on the same file (1e-5, relative to
the output's magnitude) and, for PyTorch, with the module itself on a batch of another size
than the one it was exported with.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import circuitsim
from circuitsim.errors import ConfigError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # the default exporter's dependency
nn = torch.nn

TOLERANCE = 1e-5


def _close(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOLERANCE * max(1.0, np.abs(want).max())


def _onnxruntime(path, x):
    session = ort.InferenceSession(str(path))
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, np.float32)})


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(36, 12), nn.Linear(12, 5)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x.view(x.size(0), -1))))


class _CNN(nn.Module):
    def __init__(self, flatten: bool):
        super().__init__()
        self.flatten = flatten
        self.conv1, self.norm = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.pool = nn.Conv2d(4, 6, 3, stride=2), nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.norm(self.conv1(x))))
        x = torch.sigmoid(self.conv2(x))
        x = torch.flatten(x, 1) if self.flatten else x.view(x.size(0), -1)
        return torch.softmax(self.fc(x), dim=1)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.stem_norm = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv1, self.norm1 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.norm2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.stem_norm(self.stem(x)))
        y = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        x = torch.relu(x + y)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _randomized(module):
    """Non-trivial batch-norm statistics (a fresh one is the identity), eval mode."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
    return module.eval()


MODELS = {
    "mlp-view": (lambda: _MLP(), (1, 6, 6)),
    "cnn-view": (lambda: _CNN(False), (1, 10, 10)),
    "cnn-flatten": (lambda: _CNN(True), (1, 10, 10)),
    "residual": (lambda: _Residual(), (2, 6, 6)),
}


def _export(module, shape, path, dynamo):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, (torch.randn(1, *shape),), str(path), dynamo=dynamo)
    return path


@pytest.mark.parametrize("dynamo", [True, False], ids=["default-exporter", "legacy-exporter"])
@pytest.mark.parametrize("model", list(MODELS))
def test_pytorch_exports_import_and_equal_onnxruntime(tmp_path, model, dynamo):
    build, shape = MODELS[model]
    torch.manual_seed(1)
    module = _randomized(build())
    path = _export(module, shape, tmp_path / f"{model}.onnx", dynamo)
    net = circuitsim.load_network(path)
    x = np.random.default_rng(2).uniform(-1, 1, size=(1, *shape)).astype(np.float32)
    _close(net.forward(x.astype(np.float64)), _onnxruntime(path, x)[0])
    batch = np.random.default_rng(3).uniform(-1, 1, size=(7, *shape)).astype(np.float32)
    with torch.no_grad():  # another batch size than the export's: the batch dimension stays free
        _close(net.forward(batch.astype(np.float64)), module(torch.from_numpy(batch)).numpy())


def test_from_torch_prefers_the_default_exporter_and_keeps_the_file(tmp_path):
    torch.manual_seed(4)
    module = _randomized(_Residual()).train()
    net = circuitsim.from_torch(module, torch.randn(2, 2, 6, 6), path=tmp_path / "res.onnx")
    assert net.exporter == "dynamo" and net.name == "_Residual" and module.training  # mode restored
    x = np.random.default_rng(5).uniform(size=(3, 2, 6, 6))
    module.eval()
    with torch.no_grad():
        _close(net.forward(x), module(torch.from_numpy(x).float()).numpy())
    _close(circuitsim.load_network(tmp_path / "res.onnx").forward(x), net.forward(x))
    legacy = circuitsim.from_torch(module, np.zeros((1, 2, 6, 6)), exporter="legacy")
    assert legacy.exporter == "legacy"
    _close(legacy.forward(x), net.forward(x))


class _Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(nn.functional.leaky_relu(torch.exp(self.fc1(x))))


def test_refusals_name_every_node_in_one_line():
    with pytest.raises(ConfigError) as info:
        circuitsim.from_torch(_Unsupported(), torch.zeros(1, 8))
    message = str(info.value)
    assert "\n" not in message and "default exporter" in message and "legacy exporter" in message
    for exporter in message.split(" | "):  # both exporters' reasons name both nodes
        assert "'Exp'" in exporter and "'LeakyRelu'" in exporter, exporter
    with pytest.raises(ConfigError, match="exporter must be one of"):
        circuitsim.from_torch(_Unsupported(), torch.zeros(1, 8), exporter="jit")
    with pytest.raises(ConfigError, match="needs a batch dimension"):
        circuitsim.from_torch(_Unsupported(), torch.zeros(8))


# -- scikit-learn ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
@pytest.mark.parametrize("labels", ["integers", "strings"])
def test_sklearn_mlp_classifier_tail_is_digital_post_processing(tmp_path, digits, zipmap, labels):
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    x, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    target = y if labels == "integers" else names[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warning of a short fit
        clf = MLPClassifier((24,), max_iter=60, random_state=0).fit(x[:1200], target[:1200])
    model = to_onnx(clf, x[:1], options={id(clf): {"zipmap": zipmap}})
    path = tmp_path / "mlp.onnx"
    onnx.save(model, str(path))

    net = circuitsim.load_network(path)
    tail = net.classifier
    assert {"ArgMax", "ArrayFeatureExtractor"} <= set(tail.nodes) and ("ZipMap" in tail.nodes) == zipmap
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Activation", "Dense", "Activation"]
    test = x[1200:]
    label, probabilities = _onnxruntime(path, test)
    if zipmap:  # a list of {class: probability} maps
        probabilities = np.array([[row[c] for c in clf.classes_] for row in probabilities])
    out = net.forward(test)
    _close(out, probabilities)
    assert np.array_equal(tail.label(out), label) and np.array_equal(tail.label(out), clf.predict(test))
    assert np.array_equal(tail.labels[tail.indices(target[1200:])], target[1200:])
    assert net.accuracy(test, tail.indices(target[1200:])) == pytest.approx(clf.score(test, target[1200:]))
    with pytest.raises(ConfigError, match="is not one of the classifier's classes"):
        tail.indices(["ten"])


def test_sklearn_binary_classifier_imports_its_one_minus_p_column(tmp_path, digits):
    """skl2onnx writes a binary classifier's probabilities as Concat(1 - p, p) (issue 27's Sub and Concat)."""
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    x, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((8,), max_iter=20, random_state=0).fit(x[:300], y[:300] % 2)
    path = tmp_path / "binary.onnx"
    onnx.save(to_onnx(clf, x[:1]), str(path))
    net = circuitsim.load_network(path)
    out = net.forward(x[300:400].astype(np.float64))
    _close(out, clf.predict_proba(x[300:400]))
    assert np.array_equal(net.classifier.label(out), clf.predict(x[300:400]))


def test_one_refusal_names_attribute_and_operator_problems_together(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], group=2, name="grouped"),          # an unsupported attribute
             n("LeakyRelu", ["c"], ["l"], name="leaky"),                      # after it: still named
             n("Sin", ["l"], ["y"], name="sin")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 3, 3])],
                              [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(ConfigError) as info:
        circuitsim.load_network(tmp_path / "bad.onnx")
    message = str(info.value)
    assert message.startswith("3 ONNX nodes cannot be imported: Conv node 'grouped': group = 2 is not supported")
    assert "'LeakyRelu' in node 'leaky'" in message and "'Sin' in node 'sin'" in message
    assert "supported: Gemm" in message and "\n" not in message
