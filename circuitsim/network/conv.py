"""Convolutions and pooling as matrix products: im2col unrolling (and its adjoint).

A 2-D convolution of an ``(N, C, H, W)`` input with ``c_out`` kernels of ``C × k_h × k_w``
is, output position by output position, a product of the position's receptive field
(flattened in ``C, k_h, k_w`` order, the order of ONNX's and PyTorch's weight tensors) with
the ``(C·k_h·k_w) × c_out`` matrix of the kernels. :func:`im2col` gathers those receptive
fields, one row per output position; the crossbar tiles then compute every position with
the same (weight-stationary) conductances. Pooling windows are gathered the same way.

Padding is ``(top, left, bottom, right)`` pixels, as in ONNX's ``pads`` (begin then end);
padded pixels are 0 for convolutions and excluded from max and average pooling (unless
``count_include_pad``).

Public API
----------
im2col, col2im, output_size, max_pool, avg_pool
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int) -> int:
    """Output length of a window ``kernel`` sliding by ``stride`` over a padded axis."""
    n = (size + pad_begin + pad_end - kernel) // stride + 1
    if n < 1:
        raise ConfigError(f"a {kernel}-wide window does not fit an input of {size} "
                          f"(padding {pad_begin}+{pad_end}); use a smaller kernel or a larger image")
    return n


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int, int, int] = (0, 0, 0, 0), fill: float = 0.0) -> np.ndarray:
    """Receptive fields of every output position.

    Parameters
    ----------
    x : ndarray
        Input, ``(N, C, H, W)``.
    kernel, stride : tuple of int
        Window ``(k_h, k_w)`` and step ``(s_h, s_w)``.
    padding : tuple of int
        ``(top, left, bottom, right)`` pixels added around the image, of value ``fill``.

    Returns
    -------
    ndarray
        ``(N, H_out, W_out, C·k_h·k_w)``; the last axis runs over ``C, k_h, k_w``.
    """
    n, c, height, width = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, padding
    ho = output_size(height, kh, sh, pt, pb)
    wo = output_size(width, kw, sw, pl, pr)
    if any(padding):
        padded = np.full((n, c, height + pt + pb, width + pl + pr), fill, dtype=x.dtype)
        padded[:, :, pt:pt + height, pl:pl + width] = x
        x = padded
    s = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, ho, wo, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2], s[3]), writeable=False)
    return windows.reshape(n, ho, wo, c * kh * kw)


def col2im(cols: np.ndarray, shape: tuple[int, int, int, int], kernel: tuple[int, int],
           stride: tuple[int, int] = (1, 1), padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every window's values back onto an ``shape`` input."""
    n, c, height, width = shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, padding
    ho, wo = cols.shape[1:3]
    out = np.zeros((n, c, height + pt + pb, width + pl + pr))
    windows = cols.reshape(n, ho, wo, c, kh, kw)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += windows[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, pt:pt + height, pl:pl + width]


def _pool_windows(x, kernel, stride, padding, fill):
    n, c, height, width = x.shape
    cols = im2col(x.reshape(n * c, 1, height, width), kernel, stride, padding, fill)
    return cols.reshape(n, c, cols.shape[1], cols.shape[2], -1)


def _tiled(x, kernel, stride, padding):
    """Non-overlapping unpadded windows as axes 3 and 5 (no copy), or None."""
    (kh, kw), (n, c, height, width) = kernel, x.shape
    if tuple(stride) != tuple(kernel) or any(padding):
        return None
    ho, wo = output_size(height, kh, kh, 0, 0), output_size(width, kw, kw, 0, 0)
    return x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)


def max_pool(x: np.ndarray, kernel, stride, padding=(0, 0, 0, 0)) -> np.ndarray:
    """Maximum over each window (padded pixels never win), ``(N, C, H_out, W_out)``."""
    x = np.asarray(x, dtype=np.float64)
    tiled = _tiled(x, kernel, stride, padding)
    if tiled is not None:
        return tiled.max(axis=(3, 5))
    return _pool_windows(x, kernel, stride, padding, -np.inf).max(axis=-1)


def avg_pool(x: np.ndarray, kernel, stride, padding=(0, 0, 0, 0), count_include_pad: bool = False) -> np.ndarray:
    """Mean over each window, ``(N, C, H_out, W_out)``; padded pixels count only with
    ``count_include_pad``."""
    x = np.asarray(x, dtype=np.float64)
    tiled = _tiled(x, kernel, stride, padding)
    if tiled is not None:
        return tiled.mean(axis=(3, 5))
    total = _pool_windows(x, kernel, stride, padding, 0.0).sum(axis=-1)
    if count_include_pad or not any(padding):
        return total / (kernel[0] * kernel[1])
    ones = np.ones((1, 1) + x.shape[2:])
    count = _pool_windows(ones, kernel, stride, padding, 0.0).sum(axis=-1)
    return total / count
