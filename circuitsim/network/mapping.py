"""Map network layers onto differential conductance pairs and partitioned tiles.

A layer with weights ``W`` (``n_in × n_out``, values in [-1, 1]) and bias ``b``
becomes a conductance array with ``n_in + 1`` rows (the bias row is driven from
``v_read``, like an input held at 1) and ``2 n_out`` columns: output ``k`` uses
column ``2k`` for ``G+`` and ``2k + 1`` for ``G-``, with
``G± = g_min + (g_max - g_min) · max(±w, 0)`` after quantizing ``|w|`` to the
device's levels. A binary weight +1 gives ``G+ = g_max, G- = g_min``.

Horizontal partitions split the rows, vertical partitions split the outputs
(each differential pair stays in one tile), as in docs/design.md.

The offset scheme (``[mapping] negative = "offset"``, :func:`map_offset_layer`) holds every
weight (every slice of it) on one cell at an offset conductance, weight 0 at the reference
level, and adds one reference column per tile, every cell of it at that level; the reference
column's ADC code is subtracted from every column's (:func:`offset_weights`).

Public API
----------
Partition, LayerMapping, map_layer, map_sliced_layer, map_offset_layer, weight_slices, sliced_weights,
offset_weights, cell_mapping, auto_partition, format_partitions, parse_partitions
"""

from __future__ import annotations

import dataclasses
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
                   slices: int = 1, reference: bool = False) -> list[Partition]:
    """Smallest partitions so that no tile exceeds ``max_rows × max_cols``.

    Rows count the inputs plus the bias row; columns count outputs (differential
    pairs), the convention of IMAC-Sim's automatic partitioning — for 32 × 32
    arrays and a 400-120-84-10 network it gives h = 13-4-3, v = 4-3-1. With sliced
    weights every output takes ``slices`` columns, all in one tile; with a ``reference`` column
    (the offset scheme) a tile holds ``max_cols - 1`` weight columns.
    """
    max_cols = max_cols or max_rows
    if max_rows < 1 or max_cols < 1:
        raise ConfigError(f"maximum array size must be >= 1, got {max_rows} x {max_cols}")
    if slices + int(reference) > max_cols:
        what = f"{slices} slice columns per output" + (" and a reference column" if reference else "")
        key = "weight_bits" if slices > 1 else "negative = \"offset\""
        raise ConfigError(f"[mapping] {key} takes {what}, more than a tile's {max_cols} columns allow; "
                          "use fewer weight_bits, cells with more levels or larger tiles")
    outputs = (max_cols - int(reference)) // slices
    return [
        Partition(math.ceil((n_in + int(bias)) / max_rows), math.ceil(n_out / outputs))
        for n_in, n_out in zip(layers[:-1], layers[1:])
    ]


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """A layer's conductances cut into tiles.

    ``tiles[a][b]`` holds rows ``row_slices[a]`` and outputs ``out_slices[b]``
    (columns ``2 * out_slices[b]``; ``out_slices[b]`` with a reference column, last), in siemens.
    """

    conductances: np.ndarray
    """Whole-layer conductance array, ``(n_in + 1) × 2 n_out`` (``× n_out`` with a reference), siemens."""
    row_slices: tuple[slice, ...]
    """Row range of each horizontal partition."""
    out_slices: tuple[slice, ...]
    """Output range of each vertical partition."""
    reference: np.ndarray | None = None
    """The offset scheme: the conductance of the reference column's cell in every row, siemens;
    None: differential pairs."""

    @property
    def n_columns(self) -> int:
        """Weight columns of the layer (pairs, or single cells with a reference)."""
        return int(self.conductances.shape[1] // (1 if self.reference is not None else 2))

    def tile_conductances(self, a: int, b: int) -> np.ndarray:
        """Conductances of tile ``(a, b)`` (its reference column last)."""
        rows, out = self.row_slices[a], self.out_slices[b]
        if self.reference is None:
            return self.conductances[rows, 2 * out.start:2 * out.stop]
        return np.hstack([self.conductances[rows, out], self.reference[rows, None]])

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
    n = weight_slices(bits, levels)
    expanded = _digits(np.abs(q).astype(np.int64), levels, n) * np.repeat(np.sign(q), n, axis=-1)
    return expanded, _factors(levels, n, top)


def _digits(codes: np.ndarray, levels: int, n: int) -> np.ndarray:
    """Non-negative integer ``codes`` (last axis: outputs) in base ``levels`` as cell levels in
    [0, 1], digit ``k`` of output ``o`` in column ``o · n + k``."""
    digits = [(codes // levels ** k) % levels / (levels - 1) for k in range(n)]
    return np.stack(digits, axis=-1).reshape(codes.shape[:-1] + (codes.shape[-1] * n,))


def _factors(levels: int, n: int, top: int) -> np.ndarray:
    """The shift-add factor of each of ``n`` slices of codes up to ``top``: ``levels**k (levels - 1) / top``."""
    return np.array([levels ** k * (levels - 1) / top for k in range(n)])


def offset_weights(weights: np.ndarray, bits: int | None, levels: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Weights in [-1, 1] as unsigned codes on one cell per slice, and the reference level.

    ``u = round((w + 1) / 2 · top)`` with ``top = 2**bits - 1`` (``levels - 1`` when ``bits`` is
    None: one cell per weight) is written in base ``levels`` over ``S`` slices (``S`` =
    :func:`weight_slices`, 1 without ``bits``); the cells hold levels ``ℓ_k = d_k / (levels - 1)``
    in [0, 1] (column ``o · S + k``). With ``factors[k] = 2 levels**k (levels - 1) / top`` and the
    reference level ``ℓ_ref = top / (2 (levels**S - 1))`` (1/2 when ``levels**S = top + 1``),
    ``Σ_k factors[k] (ℓ_k - ℓ_ref) = 2 u / top - 1``: the weight on ``top + 1`` evenly spaced
    values over [-1, 1] (no exact 0 for even ``top + 1``; DNN+NeuroSim's weight shift).

    Returns
    -------
    levels, factors, reference : numpy.ndarray, numpy.ndarray, float
    """
    w = np.asarray(weights, dtype=float)
    n = 1 if bits is None else weight_slices(bits, levels)
    top = levels - 1 if bits is None else (1 << bits) - 1
    u = np.rint((np.clip(w, -1.0, 1.0) + 1.0) / 2.0 * top).astype(np.int64)
    return _digits(u, levels, n), 2.0 * _factors(levels, n, top), top / (2.0 * (levels ** n - 1))


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
    _check_partition(partition, n_rows, n_out)
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


def _check_partition(partition: Partition, n_rows: int, n_out: int) -> None:
    for name, value, limit, what in (("h", partition.h, n_rows, "rows"), ("v", partition.v, n_out, "outputs")):
        if int(value) != value or value < 1:
            raise ConfigError(f"partition {name} must be a positive integer, got {value!r}")
        if value > limit:
            raise ConfigError(f"{value} {'horizontal' if name == 'h' else 'vertical'} partitions "
                              f"but the layer has only {limit} {what}")


def map_offset_layer(weights, bias, device: Device, partition: Partition = Partition(),
                     bits: int | None = None) -> tuple[LayerMapping, np.ndarray]:
    """Map one layer onto single cells at offset conductances and a reference column per tile.

    Every weight (``bits``-bit, sliced; or rounded to the device's levels, one cell) becomes
    cells at ``g = g_min + ℓ (g_max - g_min)`` for its levels ``ℓ`` (:func:`offset_weights`),
    every output's slices side by side in one tile; each tile's reference column holds
    ``g_min + ℓ_ref (g_max - g_min)`` in every row (not one of the device's levels unless
    ``ℓ_ref (levels - 1)`` is an integer: a fixed reference cell). Returns the mapping
    (``conductances``: ``rows × n_out S``, ``out_slices`` in slice columns) and the shift-add
    factors of the slices.
    """
    w = np.asarray(weights, dtype=float)
    if bias is not None:
        w = np.vstack([w, np.asarray(bias, dtype=float)[None, :]])
    n_rows, n_out = w.shape
    _check_partition(partition, n_rows, n_out)
    cells, factors, reference = offset_weights(w, bits, device.levels)
    g = device.g_min * (1 - cells) + device.g_max * cells
    n = len(factors)
    outs = tuple(slice(o.start * n, o.stop * n) for o in _slices(n_out, partition.v))
    g_ref = np.full(n_rows, device.g_min * (1 - reference) + device.g_max * reference)
    return LayerMapping(g, _slices(n_rows, partition.h), outs, g_ref), factors


def map_sliced_layer(weights, bias, device: Device, partition: Partition,
                     bits: int) -> tuple[LayerMapping, np.ndarray]:
    """Map one layer's ``bits``-bit weights sliced over pairs of cells (:func:`sliced_weights`),
    every output's slices in one tile: the mapping (``out_slices`` in slice columns) and the
    slices' shift-add factors."""
    w = np.asarray(weights, dtype=float)
    n_out = w.shape[1]
    if partition.v > n_out:
        raise ConfigError(f"{partition.v} vertical partitions but the layer has only {n_out} outputs")
    expanded, factors = sliced_weights(w, bits, device.levels)
    sliced_bias = None if bias is None else sliced_weights(np.asarray(bias, dtype=float)[None, :], bits,
                                                           device.levels)[0][0]
    n = len(factors)
    mapping = map_layer(expanded, sliced_bias, device, partition)
    outs = tuple(slice(o.start * n, o.stop * n) for o in _slices(n_out, partition.v))
    return dataclasses.replace(mapping, out_slices=outs), factors
