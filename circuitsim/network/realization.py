"""Realized conductances of a tile: device statistics drawn from (seed, layer, tile).

The mapping gives every tile its *target* conductances; :func:`realize_conductances`
draws what the cells really hold after programming (noise, stuck-at faults) and at the
time of inference (drift), following :class:`~circuitsim.device_statistics.DeviceStatistics`
(the model and its sources are in that module's docstring). Every random stream is
``numpy.random.SeedSequence(seed, spawn_key=(layer, row_block, col_block, stream))``: a
point is reproducible, two tiles never share a draw, and the programming, fault, drift and
read-noise streams of one tile are independent of each other (changing the read noise
does not change the programmed conductances). Read noise is drawn per layer (every tile's
at once, :func:`read_rng`), from the stream of the layer's first tile.

:func:`realize_tile` is what the evaluator calls for every tile: it realizes the
conductances, characterizes the realized tile exactly (native engine, or ngspice when
the circuit asks; cached by the realized content, so exact cells hit the same cache
entries as before), computes the global drift compensation factor from two reference
reads through the wires, and prepares the tile's read noise. With default statistics
the realized conductances *are* the targets and nothing else changes.

Public API
----------
STREAMS, tile_rng, read_rng, realize_conductances, realize_layer, drift_compensation, RealizedTile, realized_tile,
realize_tile
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..device_statistics import PCM_G_MAX, PCM_PROGRAMMING_COEFFICIENTS, DeviceStatistics
from ..devices import Device
from ..errors import ConfigError
from ..tile.crossbar import Tile
from ..tile.extract import Characterization
from .circuit_config import CircuitConfig
from ..tile.noise_law import NoiseLaw
from ..tile.read_noise import ReadNoise
from ..tile.tile_cache import TileCache

STREAMS = {"programming": 0, "faults": 1, "drift": 2, "read": 3}
"""Index of each random stream in the spawn key."""


def tile_rng(seed: int, layer: int, tile: tuple[int, int], stream: str) -> np.random.Generator:
    """The generator of one stream of one tile: ``SeedSequence(seed, spawn_key=(layer, a, c, s))``."""
    key = (int(layer), int(tile[0]), int(tile[1]), STREAMS[stream])
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def read_rng(seed: int, layer: int) -> np.random.Generator:
    """The read-noise generator of one layer (the evaluator draws a layer's read noise at once)."""
    return tile_rng(seed, layer, (0, 0), "read")


def _programming_sigma(target: np.ndarray, device: Device, stats: DeviceStatistics) -> np.ndarray:
    """σ of the programmed conductance of every cell, siemens."""
    if stats.programming_noise_model == "state-independent":
        return np.full(target.shape, stats.programming_noise * (device.g_max - device.g_min))
    if stats.programming_noise_model == "proportional":
        return stats.programming_noise * target
    c0, c1, c2 = PCM_PROGRAMMING_COEFFICIENTS
    g = target / device.g_max
    micro = np.maximum(c0 + c1 * g + c2 * g * g, 0.0)
    return stats.programming_noise * micro * 1e-6 * (device.g_max / PCM_G_MAX)


def realize_conductances(target, device: Device, layer: int, tile: tuple[int, int],
                         stats: DeviceStatistics | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Programmed and drifted conductances of one tile.

    Parameters
    ----------
    target : array_like
        Target conductances, siemens.
    device : Device
        The cell (``g_min``, ``g_max`` and, unless ``stats`` is given, its statistics).
    layer : int
        Layer index in the network.
    tile : (int, int)
        Horizontal and vertical block of the tile in its layer.
    stats : DeviceStatistics, optional
        Statistics to use instead of ``device.statistics``.

    Returns
    -------
    programmed, drifted : numpy.ndarray
        Conductances right after programming (``t0``) and at ``t_inference``, siemens;
        both are ``target`` itself (the same array) when nothing is drawn. Open cells
        (target 0, e.g. a pruned random network's) stay open.
    """
    stats = device.statistics if stats is None else stats
    target = np.asarray(target, dtype=float)
    g = target
    if stats.programming_noise > 0:
        noise = tile_rng(stats.seed, layer, tile, "programming").standard_normal(target.shape)
        g = np.maximum(target + _programming_sigma(target, device, stats) * noise, 0.0)
    stuck = np.zeros(target.shape, bool)
    if stats.stuck_at_gmin > 0 or stats.stuck_at_gmax > 0:
        u = tile_rng(stats.seed, layer, tile, "faults").random(target.shape)
        low, high = u < stats.stuck_at_gmin, (u >= stats.stuck_at_gmin) & (u < stats.stuck_at_gmin + stats.stuck_at_gmax)
        g = np.where(low, device.g_min, np.where(high, device.g_max, g))
        stuck = low | high
    drifted = g
    if stats.drifts:
        nu = tile_rng(stats.seed, layer, tile, "drift").normal(stats.drift_nu, stats.drift_nu_std, target.shape)
        factor = (stats.t_inference / stats.t0) ** -np.maximum(nu, 0.0)
        drifted = np.where(stuck, g, g * factor)
    if g is not target and not target.all():  # a cell of target 0 is open: no device, nothing drawn
        g, drifted = np.where(target == 0, 0.0, g), np.where(target == 0, 0.0, drifted)
    return g, drifted


def realize_layer(target, device: Device, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Programmed and drifted conductances of a whole layer drawn as one array (the layer
    circuits of the imac-sim topology, whose tiles share amplifiers): the streams of tile
    ``(0, 0)``, so every cell still has its own draw (:func:`realize_conductances`)."""
    return realize_conductances(target, device, layer, (0, 0))


@dataclass(frozen=True, eq=False)
class RealizedTile:
    """One tile as the device statistics make it, characterized."""

    target: np.ndarray
    """Ideal target conductances of the mapping, siemens."""
    programmed: np.ndarray
    """Conductances right after programming, siemens."""
    conductances: np.ndarray
    """Conductances at the time of inference (the tile that is characterized), siemens."""
    characterization: Characterization
    """Exact characterization of the realized tile (``T``, ``Y``)."""
    scale: float = 1.0
    """Global drift compensation factor applied to the tile's outputs (1: none)."""
    read_noise: NoiseLaw | None = None
    """Law of the read noise of the tile's normalized sums per normalized input, or None."""


def _reference_read(T: np.ndarray) -> float:
    """Absolute summed differential outputs of an all-ones input (per volt)."""
    return float(np.abs((T[0::2] - T[1::2]).sum(axis=1)).sum())


def drift_compensation(programmed, drifted, circuit: CircuitConfig, cache: TileCache) -> float:
    """The tile's global drift compensation factor (1 without drift or compensation).

    ``α = Σ|W_prog·1| / Σ|W_t·1|`` from the characterizations (through the wires) of the
    programmed and the drifted tile, as aihwkit's ``GlobalDriftCompensation``.
    """
    if circuit.device.statistics.drift_compensation != "global" or drifted is programmed:
        return 1.0
    baseline = _reference_read(cache.transfer(circuit.tile(programmed), circuit).T)
    now = _reference_read(cache.transfer(circuit.tile(drifted), circuit).T)
    return baseline / now if now > 0 else 1.0


def realized_tile(target, circuit: CircuitConfig, layer: int, tile: tuple[int, int]) -> tuple[np.ndarray, Tile]:
    """The programmed conductances (siemens) and the tile at the time of inference (drifted
    conductances, ``circuit.wires`` and the readout's bit-line ends: :meth:`CircuitConfig.tile`)
    of one tile (:func:`realize_conductances`); without drift the programmed conductances are
    the tile's own array."""
    programmed, drifted = realize_conductances(target, circuit.device, layer, tile)
    realized = circuit.tile(drifted)
    return (realized.conductances if programmed is drifted else programmed), realized


def realize_tile(target, circuit: CircuitConfig, cache: TileCache, layer: int,
                 tile: tuple[int, int], realized: tuple[np.ndarray, Tile] | None = None) -> RealizedTile:
    """Realize, characterize and compensate one tile (the evaluator's one call per tile).

    Parameters
    ----------
    target : array_like
        The tile's target conductances (from the mapping), siemens.
    circuit : CircuitConfig
        Device (with its statistics), wires, readout and engine.
    cache : TileCache
        Characterizations by realized content.
    layer : int
        Layer index.
    tile : (int, int)
        Horizontal and vertical block of the tile in its layer.
    realized : (numpy.ndarray, Tile), optional
        What :func:`realized_tile` gives for this tile, when the caller has it already (e.g.
        to characterize a layer's tiles together first): the cells are realized once.
    """
    stats = circuit.device.statistics
    programmed, realized_cells = realized_tile(target, circuit, layer, tile) if realized is None else realized
    drifted = realized_cells.conductances
    result = cache.transfer(realized_cells, circuit)
    scale = drift_compensation(programmed, drifted, circuit, cache)
    noise = None
    if stats.read_noise > 0:
        if circuit.charge_mode:
            raise ConfigError("device.read_noise needs a DC readout, circuit.readout = 'current' or 'sense' "
                              f"(got {circuit.readout!r}); set read_noise = 0 for charge readouts")
        device = circuit.device
        normalization = scale / (circuit.v_read * (device.g_max - device.g_min))
        law = cache.derived(("read-noise", realized_cells.content_hash(), stats.read_noise),
                            lambda: ReadNoise(realized_cells, stats.read_noise).law(differential=True))
        noise = law.scaled((normalization * circuit.v_read) ** 2, np.float32)  # per normalized input
    return RealizedTile(np.asarray(target), programmed, drifted, result, scale, noise)
