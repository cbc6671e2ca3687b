"""Map network layers onto differential conductance pairs and partitioned tiles.

A layer with weights ``W`` (``n_in × n_out``, values in [-1, 1]) and bias ``b``
becomes a conductance array with ``n_in + 1`` rows (the bias row is driven from
``v_read``, like an input held at 1) and ``2 n_out`` columns: output ``k`` uses
column ``2k`` for ``G+`` and ``2k + 1`` for ``G-``, with
``G± = g_min + (g_max - g_min) · max(±w, 0)`` after quantizing ``|w|`` to the
device's levels. A binary weight +1 gives ``G+ = g_max, G- = g_min``.

Horizontal partitions split the rows, vertical partitions split the outputs
(each differential pair stays in one tile), as in docs/design.md.

Public API
----------
Partition, LayerMapping, map_layer, weight_slices, sliced_weights, cell_mapping, auto_partition, format_partitions,
parse_partitions
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..devices import Device
from ..errors import ConfigError
from ..tile.topology import partition_slices


@dataclass(frozen=True)
class Partition:
    """Horizontal and vertical partition counts of one layer."""

    h: int = 1
    """Pieces the input rows are split into (each with its own readout; partial sums added)."""
    v: int = 1
    """Pieces the outputs are split into (inputs re-driven at each piece)."""


def format_partitions(values) -> str:
    """``[16, 8, 8]`` → ``"16-8-8"``."""
    return "-".join(str(int(v)) for v in values)


def parse_partitions(text: str) -> list[int]:
    """``"16-8-8"`` → ``[16, 8, 8]``."""
    try:
        return [int(v) for v in str(text).split("-")]
    except ValueError:
        raise ConfigError(f"partitions must be written like 16-8-8, got {text!r}") from None


def auto_partition(layers, max_rows: int, max_cols: int | None = None, bias: bool = True,
                   slices: int = 1) -> list[Partition]:
    """Smallest partitions so that no tile exceeds ``max_rows × max_cols``.

    Rows count the inputs plus the bias row; columns count outputs (differential
    pairs), the convention of IMAC-Sim's automatic partitioning — for 32 × 32
    arrays and a 400-120-84-10 network it gives h = 13-4-3, v = 4-3-1. With sliced
    weights every output takes ``slices`` columns, all in one tile.
    """
    max_cols = max_cols or max_rows
    if max_rows < 1 or max_cols < 1:
        raise ConfigError(f"maximum array size must be >= 1, got {max_rows} x {max_cols}")
    if slices > max_cols:
        raise ConfigError(f"[mapping] weight_bits takes {slices} slice columns per output, more than a tile's "
                          f"{max_cols} columns allow; use fewer weight_bits, cells with more levels or larger tiles")
    outputs = max_cols // slices
    return [
        Partition(math.ceil((n_in + int(bias)) / max_rows), math.ceil(n_out / outputs))
        for n_in, n_out in zip(layers[:-1], layers[1:])
    ]


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """A layer's conductances cut into tiles.

    ``tiles[a][b]`` holds rows ``row_slices[a]`` and outputs ``out_slices[b]``
    (columns ``2 * out_slices[b]``), in siemens.
    """

    conductances: np.ndarray
    """Whole-layer conductance array, ``(n_in + 1) × 2 n_out``, siemens."""
    row_slices: tuple[slice, ...]
    """Row range of each horizontal partition."""
    out_slices: tuple[slice, ...]
    """Output range of each vertical partition."""

    def tile_conductances(self, a: int, b: int) -> np.ndarray:
        """Conductances of tile ``(a, b)``."""
        out = self.out_slices[b]
        return self.conductances[self.row_slices[a], 2 * out.start:2 * out.stop]

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return len(self.row_slices) * len(self.out_slices)


def cell_mapping(cells, partition: Partition = Partition(), rounding: str = "nearest") -> LayerMapping:
    """A layer's own cells (``rows × 2 n_out`` conductances, siemens) cut into tiles."""
    g = np.asarray(cells, dtype=float)
    for name, value, limit in (("h", partition.h, g.shape[0]), ("v", partition.v, g.shape[1] // 2)):
        if int(value) != value or not 1 <= value <= limit:
            raise ConfigError(f"partition {name} = {value!r} must be an integer in 1..{limit} for a layer of "
                              f"{g.shape[0]} rows and {g.shape[1] // 2} outputs")
    if rounding != "nearest":
        return LayerMapping(g, partition_slices(g.shape[0], partition.h, rounding),
                            partition_slices(g.shape[1] // 2, partition.v, rounding))
    return LayerMapping(g, _slices(g.shape[0], partition.h), _slices(g.shape[1] // 2, partition.v))


def _slices(n: int, parts: int) -> tuple[slice, ...]:
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]))


def quantize(weights: np.ndarray, levels: int) -> np.ndarray:
    """Round ``|w|`` in [0, 1] to ``levels`` evenly spaced values, keeping the sign."""
    steps = levels - 1
    return np.sign(weights) * np.round(np.clip(np.abs(weights), 0, 1) * steps) / steps


def weight_slices(bits: int, levels: int) -> int:
    """Cells per weight magnitude of ``bits`` bits on cells of ``levels`` levels: the fewest
    base-``levels`` digits reaching ``2**bits - 1`` (``ceil(bits / log2(levels))``)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ConfigError(f"[mapping] weight_bits must be an integer >= 1, got {bits!r}")
    slices = 1
    while levels ** slices < 1 << bits:
        slices += 1
    return slices


def sliced_weights(weights: np.ndarray, bits: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights in [-1, 1] as ``bits``-bit magnitudes (and their sign) sliced over cells.

    ``q = round(w (2**bits - 1))`` is written in base ``levels``, digit ``k`` in slice ``k``;
    slice ``k`` of output ``o`` is column ``o · S + k`` of the returned ``rows × n_out S``
    weights ``sign(q) d_k / (levels - 1)`` (exactly a cell level each), and
    ``Σ_k factors[k] · slice_k = q / (2**bits - 1)``, the ``bits``-bit quantized weight, with
    ``factors[k] = levels**k (levels - 1) / (2**bits - 1)`` (the digital shift-add).
    """
    w = np.asarray(weights, dtype=float)
    top = (1 << bits) - 1
    q = np.rint(np.clip(w, -1.0, 1.0) * top)
    magnitude, sign = np.abs(q).astype(np.int64), np.sign(q)
    n = weight_slices(bits, levels)
    digits = [sign * ((magnitude // levels ** k) % levels) / (levels - 1) for k in range(n)]
    expanded = np.stack(digits, axis=-1).reshape(w.shape[:-1] + (w.shape[-1] * n,))
    factors = np.array([levels ** k * (levels - 1) / top for k in range(n)])
    return expanded, factors


def map_layer(weights, bias, device: Device, partition: Partition = Partition(),
              rounding: str = "nearest", zero_weight: str = "g-min") -> LayerMapping:
    """Map one layer onto conductance pairs and cut it into tiles.

    Parameters
    ----------
    weights : array_like
        ``n_in × n_out`` weights in [-1, 1].
    bias : array_like or None
        ``n_out`` biases in [-1, 1] (one extra row), or None.
    device : Device
        Conductance range and levels.
    partition : Partition
        Horizontal/vertical partition counts.
    rounding : {"nearest", "imac-sim"}
        Partition sizes (:func:`~circuitsim.tile.topology.partition_slices`).
    zero_weight : {"g-min", "g-max"}
        Cell pair of a weight 0: both at ``g_min`` (default) or both at ``g_max`` (IMAC-Sim).
    """
    w = np.asarray(weights, dtype=float)
    if bias is not None:
        w = np.vstack([w, np.asarray(bias, dtype=float)[None, :]])
    n_rows, n_out = w.shape
    h, v = partition.h, partition.v
    for name, value, limit, what in (("h", h, n_rows, "rows"), ("v", v, n_out, "outputs")):
        if int(value) != value or value < 1:
            raise ConfigError(f"partition {name} must be a positive integer, got {value!r}")
        if value > limit:
            raise ConfigError(f"{value} {'horizontal' if name == 'h' else 'vertical'} partitions "
                              f"but the layer has only {limit} {what}")
    q = quantize(w, device.levels)
    g = np.empty((n_rows, 2 * n_out))
    for column, fraction in ((0, np.maximum(q, 0)), (1, np.maximum(-q, 0))):
        # g_min (1 - f) + g_max f: exactly g_min and g_max at the ends
        g[:, column::2] = device.g_min * (1 - fraction) + device.g_max * fraction
    if zero_weight not in ("g-min", "g-max"):
        raise ConfigError(f"zero_weight must be g-min or g-max, got {zero_weight!r}")
    if zero_weight == "g-max":
        g[:, 0::2][q == 0] = g[:, 1::2][q == 0] = device.g_max
    if rounding != "nearest":
        return LayerMapping(g, partition_slices(n_rows, h, rounding), partition_slices(n_out, v, rounding))
    return LayerMapping(g, _slices(n_rows, h), _slices(n_out, v))
