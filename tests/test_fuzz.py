"""Fuzzing the inputs a user hands over (issue 22), with Hypothesis, for a bounded time.

Four targets: sweep specs (TOML text mutated key by key and byte by byte), ``.npy``/``.npz``
arrays (valid files with flipped, cut or rewritten headers), ONNX models (random small graphs
and damaged protobufs), and results folders (a real finished folder whose files are replaced by
random or hostile content). Every case must end in a result or a ``CircuitsimError`` — any other
exception (a traceback for the user) fails the test — within a time bound (a hang fails it), and
nothing may be written outside the folder the case owns.

The examples are derandomized (the same cases on every run, so the suite stays reproducible);
``CIRCUITSIM_FUZZ_EXAMPLES=N`` multiplies the number of cases for a longer, random session.
Cases per second are printed with ``pytest -s``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from circuitsim.errors import CircuitsimError  # noqa: E402

SCALE = int(os.environ.get("CIRCUITSIM_FUZZ_EXAMPLES", "1"))
RANDOM = SCALE > 1
CASE_SECONDS = 20
"""A case still running after this long is a hang."""


def fuzz_settings(examples: int):
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


class Hang(Exception):
    """A case ran longer than :data:`CASE_SECONDS`."""


@contextmanager
def bounded(seconds: float = CASE_SECONDS):
    """Raise :class:`Hang` in the test when the block runs longer than ``seconds``."""
    def alarm(signum, frame):
        raise Hang(f"a case ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


class Rate:
    """Counts cases per target, for the cases-per-second line."""

    def __init__(self, name: str):
        self.name, self.cases, self.start = name, 0, time.perf_counter()

    def __call__(self):
        self.cases += 1

    def report(self):
        seconds = time.perf_counter() - self.start
        print(f"\nfuzz {self.name}: {self.cases} cases in {seconds:.1f} s = {self.cases / seconds:.1f} cases/s")


def survives(call):
    """Run ``call``; a ``CircuitsimError`` is a fine answer, anything else fails the case."""
    with bounded():
        try:
            return call()
        except CircuitsimError as exc:
            assert str(exc).strip() and "Traceback" not in str(exc)
            return exc


# -- specs ------------------------------------------------------------------------------------

BASE = {
    "title": "fuzz",
    "dataset": {"name": "digits", "side": 8, "test_fraction": 0.3, "limit": 30, "train_limit": 100},
    "network": {"layers": [64, 12, 10], "epochs": 1},
    "wires": {"r_row": 5.0, "r_col": 5.0},
    "sweep": {"partitions": [{"h": [1, 1], "v": [1, 1]}, {"h": [2, 1], "v": [2, 1]}]},
}
SECTION_KEYS = {
    "dataset": ["name", "side", "crop", "binarize", "threshold", "test_fraction", "limit", "seed", "path",
                "train_limit"],
    "network": ["layers", "epochs", "activation", "weights", "seed", "kind", "onnx", "channels", "kernel",
                "batch_size", "learning_rate", "bias", "keep", "training"],
    "device": ["preset", "r_low", "r_high", "levels", "statistics", "programming_noise", "stuck_at_min", "seed"],
    "wires": ["preset", "r_row", "r_col", "c_row", "c_col"],
    "circuit": ["v_read", "engine", "backend", "readout", "t_int", "c_int", "topology", "gains", "t_read"],
    "adc": ["kind", "bits", "seed"],
    "sweep": ["partitions", "seeds", "wires.r_row", "adc.bits", "dataset.side", "network.epochs", "nope.x",
              "compensation"],
    "compensation": ["method", "rank", "epochs"],
    "junk": ["x"],
}
values = st.deferred(lambda: st.one_of(
    st.booleans(), st.integers(-3, 3), st.integers(-2**70, 2**70), st.sampled_from([0, 1, 2, 10, 10**9, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-300, 1e300, float("nan")]),
    st.text(max_size=12), st.sampled_from(["digits", "mnist", "idx", "native", "ngspice", "sar", "none",
                                           "imac-sim", "random", "cnn", "/dev/zero", "../../etc/passwd"]),
    st.lists(st.integers(-2, 300), max_size=4), st.lists(st.floats(-1e3, 1e3), max_size=3),
    st.lists(st.dictionaries(st.sampled_from(["h", "v", "auto", "x"]),
                             st.one_of(st.integers(-1, 70), st.lists(st.integers(-1, 70), max_size=3)),
                             max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
))
mutation = st.tuples(st.sampled_from(sorted(SECTION_KEYS)), st.integers(0, 20), values)


def spec_text(mutations) -> str:
    from circuitsim.study.smoke import _key, _value

    data = json.loads(json.dumps(BASE))
    for section, index, value in mutations:
        keys = SECTION_KEYS[section]
        key = keys[index % len(keys)]
        if section == "junk" or index >= 18:
            data[section] = value  # a section that is not a table
            continue
        data.setdefault(section, {}) if isinstance(data.get(section), dict) else data.__setitem__(section, {})
        data[section][key] = [value] if section == "sweep" and "." in key and not isinstance(value, list) else value
    lines = []
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{_key(section)}]")
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items())
        else:
            lines.insert(0, f"{_key(section)} = {_value(table)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    from circuitsim.study.points import PointContext

    return PointContext(tmp_path_factory.mktemp("fuzz-cache"))


def _check_spec(text: str, context) -> None:
    from circuitsim.study.network_spec import check_dataset
    from circuitsim.study.spec import parse_spec

    spec = parse_spec(text, max_points=10_000)
    points = spec.points()
    for point in points[:3]:
        dataset = point.config["dataset"]
        if dataset.get("name") == "digits" and isinstance(dataset.get("side"), int) and dataset["side"] <= 32:
            check_dataset(point.config, context.dataset(point.config))


def test_fuzz_specs(tmp_path, context):
    rate = Rate("specs")
    before = snapshot(tmp_path.parent)

    @fuzz_settings(600)
    @given(st.lists(mutation, min_size=1, max_size=4))
    @example([("dataset", 7, -1)])  # found by a random session: a negative split seed was a traceback
    @example([("sweep", 18, "0")])  # [sweep] that is not a table
    def by_key(mutations):
        rate()
        survives(lambda: _check_spec(spec_text(mutations), context))

    @fuzz_settings(300)
    @given(st.binary(max_size=40), st.integers(0, 400))
    def by_byte(junk, where):
        rate()
        text = spec_text([])
        raw = text.encode()[:where] + junk + text.encode()[where:]
        survives(lambda: _check_spec(raw.decode("utf-8", errors="replace"), context))

    by_key()
    by_byte()
    rate.report()
    assert snapshot(tmp_path.parent) == before  # parsing and checking write nothing


# -- .npy / .npz arrays -----------------------------------------------------------------------


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


arrays = st.one_of(
    st.builds(lambda r, c, v: np.full((r, c), v), st.integers(1, 6), st.integers(1, 6),
              st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda n: np.arange(n, dtype=np.int32), st.integers(0, 8)),
    st.just(np.array(["a", "b"])), st.just(np.zeros((2, 2), dtype=complex)), st.just(np.array(True)),
)
header_edits = st.sampled_from([
    ("'shape': (", "'shape': (1000000000000, "), ("'shape': (", "'shape': (-1, "), ("<f8", "<f16"),
    ("<f8", "|O"), ("False", "True"), ("'descr'", "'descx'"), ("{", "["), ("(", "(("),
])


@st.composite
def npy_files(draw):
    data = bytearray(_npy_bytes(draw(arrays)))
    kind = draw(st.sampled_from(["flip", "cut", "header", "junk"]))
    if kind == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif kind == "header":
        old, new = draw(header_edits)
        head_len = 10 + int.from_bytes(data[8:10], "little")
        head = bytes(data[:head_len]).replace(old.encode(), new.encode(), 1)
        data = bytearray(head + bytes(data[head_len:]))
    else:
        data = bytearray(b"\x93NUMPY" + draw(st.binary(max_size=200)))
    return bytes(data)


def test_fuzz_arrays(tmp_path):
    from circuitsim.circuit_commands import load_array
    from circuitsim.network.network import Network
    from circuitsim.tile.extract import Characterization

    rate = Rate("arrays")
    before = snapshot(tmp_path.parent)
    target = tmp_path / "a.npy"

    @fuzz_settings(600)
    @given(npy_files(), st.booleans())
    def case(data, zipped):
        rate()
        if zipped:  # the same member inside an .npz, read as a tile cache entry and as weights
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("T.npy", data)
                archive.writestr("metadata.npy", _npy_bytes(np.array("{}")))
            target.with_suffix(".npz").write_bytes(buffer.getvalue())
            for load in (Characterization.load, Network.load):
                with bounded():
                    try:
                        load(target.with_suffix(".npz"))
                    except CircuitsimError:
                        pass
                    except (ValueError, KeyError, OSError, zipfile.BadZipFile, EOFError, TypeError):
                        pass  # the tile cache turns these into "damaged: computed again"
        else:
            target.write_bytes(data)
            survives(lambda: load_array(str(target)))

    case()
    rate.report()
    after = snapshot(tmp_path.parent)
    assert {k for k in after if not k.startswith(str(tmp_path))} == \
        {k for k in before if not k.startswith(str(tmp_path))}


# -- ONNX models ------------------------------------------------------------------------------

OPS = ["Relu", "Sigmoid", "Tanh", "Flatten", "MatMul", "Gemm", "Add", "Conv", "MaxPool", "AveragePool",
       "Reshape", "Softmax", "Identity", "BatchNormalization", "GlobalAveragePool", "Clip", "LeakyRelu"]


@st.composite
def onnx_models(draw):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = draw(st.sampled_from([[4], [1, 4, 4], [2, 3, 3], [0], [10**12]]))
    nodes, inits, current = [], [], "x"
    for k in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPS))
        out = f"t{k}"
        inputs = [current]
        attrs = {}
        if op in ("MatMul", "Gemm", "Add", "Conv", "Reshape", "BatchNormalization", "Clip"):
            dims = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
            kind = draw(st.sampled_from(["float", "int", "string"]))
            if kind == "string":
                value = helper.make_tensor(f"c{k}", TensorProto.STRING, dims, [b"1"] * int(np.prod(dims)))
            else:
                value = numpy_helper.from_array(np.ones(dims, np.float32 if kind == "float" else np.int64), f"c{k}")
            inits.append(value)
            inputs.append(f"c{k}")
        if op == "Conv":
            attrs["pads"] = draw(st.lists(st.sampled_from([0, 1, 10**6]), min_size=4, max_size=4))
        if op in ("MaxPool", "AveragePool"):
            attrs["kernel_shape"] = draw(st.lists(st.integers(0, 3), min_size=2, max_size=2))
        if op in ("Flatten", "Softmax"):
            attrs["axis"] = draw(st.integers(-3, 3))
        nodes.append(helper.make_node(op, inputs, [out], name=f"n{k}", **attrs))
        current = out
    nodes.append(helper.make_node("Identity", [current], ["y"], name="out"))
    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([11, 13, 17])))])
    model.ir_version = 8
    data = bytearray(model.SerializeToString())
    if draw(st.booleans()) and data:  # a damaged protobuf
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def test_fuzz_onnx_models(tmp_path):
    pytest.importorskip("onnx")
    from circuitsim.network.onnx_import import load_network

    rate = Rate("onnx models")
    before = snapshot(tmp_path.parent)
    path = tmp_path / "model.onnx"

    @fuzz_settings(400)
    @given(onnx_models())
    def case(data):
        rate()
        path.write_bytes(data)
        net = survives(lambda: load_network(path))
        if isinstance(net, CircuitsimError):
            return
        if np.prod(net.input_shape) <= 10_000:
            survives(lambda: net.forward(np.zeros((2, int(np.prod(net.input_shape))))))

    case()
    rate.report()
    after = snapshot(tmp_path.parent)
    assert {k for k in after if not k.startswith(str(tmp_path))} == \
        {k for k in before if not k.startswith(str(tmp_path))}


# -- results folders --------------------------------------------------------------------------

FOLDER_SPEC = "\n".join(["title = \"fuzz folder\"", "[dataset]", "name = \"digits\"", "side = 8",
                         "test_fraction = 0.3", "limit = 30", "[network]", "layers = [64, 12, 10]", "epochs = 1",
                         "[sweep]", "partitions = [{h = [1, 1], v = [1, 1]}, {h = [2, 1], v = [2, 1]}]"]) + "\n"
hostile_json = st.sampled_from([
    "", "{", "[" * 100_000, "null", "[]", '{"point": 0}', '{"point": 0, "status": "ok", "accuracy": NaN}',
    '{"point": 1e400}', '"\\ud800"', "{\"a\": " * 50_000, '{"point": 0, "status": "error", "error": "x"}',
])


@pytest.fixture(scope="module")
def finished_folder(tmp_path_factory):
    from circuitsim.study.spec import parse_spec
    from circuitsim.study.sweep import run_sweep

    root = tmp_path_factory.mktemp("fuzz-folder")
    run_sweep(parse_spec(FOLDER_SPEC), root / "out", cache_dir=root / "cache", log=lambda line: None)
    return root


def test_fuzz_results_folders(finished_folder, tmp_path):
    import shutil

    from circuitsim.study.spec import parse_spec
    from circuitsim.study.sweep import read_results, run_sweep

    rate = Rate("results folders")
    spec = parse_spec(FOLDER_SPEC)
    work = tmp_path / "work"
    cache = finished_folder / "cache"
    names = ["points/*.json", "provenance.json", "results.csv", "results.parquet", "spec.toml",
             "points", ".circuitsim.lock"]

    @fuzz_settings(150)
    @given(st.lists(st.tuples(st.sampled_from(names), st.one_of(hostile_json, st.binary(max_size=300),
                                                              st.sampled_from(["<dir>", "<link>", "<fifo>"]))),
                    min_size=1, max_size=3), st.booleans())
    def case(changes, rerun):
        rate()
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        shutil.copytree(finished_folder / "out", work / "out")
        (work / "outside.txt").write_text("a user's file")
        for name, content in changes:
            if not (work / "out" / name).parent.is_dir():
                continue  # points/ was made a file by an earlier change
            targets = sorted((work / "out").glob(name)) or [work / "out" / name.replace("*", "0" * 16)]
            target = targets[0]
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            if content == "<dir>":
                target.mkdir()
            elif content == "<link>":
                target.symlink_to(work / "outside.txt")
            elif content == "<fifo>":
                os.mkfifo(target)
            else:
                target.write_bytes(content.encode() if isinstance(content, str) else content)
        outside = snapshot(cache) | {str(work / "outside.txt"): (work / "outside.txt").stat().st_size}
        survives(lambda: read_results(work / "out"))
        if rerun:
            survives(lambda: run_sweep(spec, work / "out", cache_dir=cache, log=lambda line: None))
        assert (work / "outside.txt").read_text() == "a user's file"
        tiles_and_networks = {k: v for k, v in snapshot(cache).items()}
        assert set(tiles_and_networks) == {k for k in outside if k.startswith(str(cache))}

    case()
    rate.report()
