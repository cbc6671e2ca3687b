"""Tests of circuitsim.network.datasets: splits, preprocessing, IDX parsing and errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from circuitsim.network import datasets
from circuitsim.errors import ConfigError
from circuitsim.network.datasets import Dataset, load_dataset

FASHION_INSTALLED = any(
    (d / "train-images-idx3-ubyte.gz").is_file() for d in datasets.FASHION_MNIST_DIRS
)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` (uint8) as an MNIST-format IDX file."""
    array = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_idx_dir(directory: Path, n_train=30, n_test=12, shape=(28, 28), compress=False, seed=0):
    """Write four IDX files of random images; return (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, *shape)), rng.integers(0, 3, n_train),
              rng.integers(0, 256, (n_test, *shape)), rng.integers(0, 3, n_test))
    suffix = ".gz" if compress else ""
    directory.mkdir(parents=True, exist_ok=True)
    for stem, a in zip(datasets._IDX_STEMS, arrays):
        write_idx(directory / (stem + suffix), a, compress)
    return arrays


def test_default_mnist_shapes_and_ranges():
    d = load_dataset()
    assert isinstance(d, Dataset) and d.name == "mnist"
    assert d.x_train.shape == (4000, 400) and d.x_test.shape == (1000, 400)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    assert d.image_shape == (20, 20) and d.n_classes == 10
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0 and d.x_train.max() > 0.99
    assert np.array_equal(np.bincount(d.y_test), np.full(10, 100))  # stratified
    assert not d.x_train.flags.writeable


def test_split_is_deterministic_and_seeded():
    a, b = load_dataset(seed=3), load_dataset(seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.content_hash() == b.content_hash()
    c = load_dataset(seed=4)
    assert not np.array_equal(a.y_test, c.y_test)
    assert a.content_hash() != c.content_hash()


def test_train_and_test_are_disjoint_and_complete():
    d = load_dataset(test_fraction=0.1)
    assert len(d.y_test) == 500 and len(d.y_train) == 4500
    rows = {r.tobytes() for r in d.x_train}
    assert sum(r.tobytes() in rows for r in d.x_test) < 5  # only exact duplicate images


def test_limit_caps_test_set():
    d = load_dataset(limit=37)
    assert d.x_test.shape == (37, 400) and len(d.y_test) == 37
    assert d.x_train.shape == (4000, 400)


def test_crop_resize_binarize_on_idx(tmp_path):
    x_tr, y_tr, x_te, y_te = make_idx_dir(tmp_path)
    cropped = load_dataset("idx", path=tmp_path, side=20, crop=True)
    assert np.allclose(cropped.x_train, x_tr[:, 4:24, 4:24].reshape(30, 400) / 255)
    full = load_dataset("idx", path=tmp_path, side=28, crop=False)
    assert np.allclose(full.x_test, x_te.reshape(12, 784) / 255)
    half = load_dataset("idx", path=tmp_path, side=14, crop=False)
    blocks = x_tr.reshape(30, 14, 2, 14, 2).mean(axis=(2, 4)) / 255
    assert np.allclose(half.x_train, blocks.reshape(30, 196))
    resized = load_dataset("idx", path=tmp_path, side=20, crop=False)
    assert resized.x_train.shape == (30, 400) and not np.allclose(resized.x_train, cropped.x_train)
    binary = load_dataset("idx", path=tmp_path, side=20, binarize=True, threshold=0.3)
    assert set(np.unique(binary.x_train)) <= {0.0, 1.0}
    assert np.array_equal(binary.x_train, (cropped.x_train >= 0.3).astype(float))


def test_idx_round_trip_plain_and_gzip(tmp_path):
    plain = make_idx_dir(tmp_path / "plain", compress=False)
    make_idx_dir(tmp_path / "gz", compress=True)
    a = load_dataset("idx", path=tmp_path / "plain", side=28, crop=False)
    b = load_dataset("idx", path=tmp_path / "gz", side=28, crop=False)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert np.array_equal(a.y_train, plain[1]) and np.array_equal(a.y_test, plain[3])
    assert a.n_classes == int(max(plain[1].max(), plain[3].max())) + 1
    assert len(a.y_train) == 30 and len(a.y_test) == 12  # official split kept


def test_digits_resize_up():
    d = load_dataset("digits")
    assert d.x_train.shape[1] == 400 and d.image_shape == (20, 20)
    assert len(d.y_train) + len(d.y_test) == 1797
    native = load_dataset("digits", side=8)
    assert set(np.unique(native.x_train * 16).round(9)) <= set(range(17))


def test_bad_magic_is_config_error(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(30))
    with pytest.raises(ConfigError, match="magic"):
        load_dataset("idx", path=tmp_path)


def test_truncated_idx_is_config_error(tmp_path):
    make_idx_dir(tmp_path)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ConfigError, match="complete"):
        load_dataset("idx", path=tmp_path)


def test_mismatched_labels_is_config_error(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(ConfigError, match="labels"):
        load_dataset("idx", path=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="cifar"), "unknown dataset"),
    (dict(name="idx"), "path"),
    (dict(name="idx", path="/nonexistent/dir"), "does not exist"),
    (dict(name="mnist", path="/tmp"), "path"),
    (dict(side=0), "side"),
    (dict(test_fraction=1.0), "test_fraction"),
    (dict(limit=0), "limit"),
    (dict(threshold=2.0), "threshold"),
])
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        load_dataset(**kwargs)


def test_missing_idx_file_is_config_error(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match="t10k-labels"):
        load_dataset("idx", path=tmp_path)


def test_fashion_mnist_missing_message(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", (tmp_path,))
    datasets._raw_fashion.cache_clear()
    try:
        with pytest.raises(ConfigError, match="apt-get install dataset-fashion-mnist"):
            load_dataset("fashion-mnist")
    finally:
        datasets._raw_fashion.cache_clear()


@pytest.mark.skipif(FASHION_INSTALLED, reason="dataset-fashion-mnist is installed")
def test_fashion_mnist_not_installed():
    with pytest.raises(ConfigError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.skipif(not FASHION_INSTALLED, reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_loads():
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 400) and d.x_test.shape == (10000, 400)
    assert d.n_classes == 10 and 0 <= d.x_test.min() and d.x_test.max() <= 1
