"""The resistance-sum topology's MTJs, strings and input checks on the network path (issue 29).

:func:`~circuitsim.network.topologies.resistance_sum_layer` builds a layer's tiles from these:
the nominal string cell of a :class:`~circuitsim.network.circuit_config.CircuitConfig`, the
MTJ resistances of a tile's ±1 weights with the MTJs' device-to-device spread (RA lognormal,
TMR normal, seeded per tile), a tile's strings solved as circuits (``circuitsim validate
--scope layer``), and the one-line checks that a network feeds the strings 0/1 inputs. The
string circuit and its readout are :mod:`circuitsim.tile.resistance_sum`.

Public API
----------
string_cell, mtj_resistances, string_sums, check_binary_inputs, check_binary_images
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..tile.resistance_sum import StringCell, StringReadout, check_binary, mtj_states, string_currents
from .circuit_config import CircuitConfig
from .realization import tile_rng


def string_cell(circuit: CircuitConfig) -> StringCell:
    """The nominal cell of a resistance-sum layer (MTJs from ``circuit.device``)."""
    return StringCell(circuit.device.r_low, circuit.device.r_high, circuit.fet_r_on, circuit.fet_r_off,
                      circuit.wires.r_col)


def mtj_resistances(w: np.ndarray, circuit: CircuitConfig, index: int,
                    tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """MTJ resistances ``(r_a, r_b)`` (ohm, each shaped like ``w``) of tile ``tile`` of crossbar layer
    ``index`` holding the ±1 weights ``w``, drawn with the MTJ statistics of ``circuit``."""
    device = circuit.device
    r_a, r_b = mtj_states(w, string_cell(circuit))
    if not (circuit.mtj_ra_spread or circuit.mtj_tmr_spread):
        return r_a, r_b
    rng = tile_rng(device.statistics.seed, index, tile, "programming")
    ra = np.exp(circuit.mtj_ra_spread * rng.standard_normal((2,) + w.shape))
    tmr = (device.r_high / device.r_low - 1.0) * np.maximum(1.0 + circuit.mtj_tmr_spread
                                                            * rng.standard_normal((2,) + w.shape), 0.0)
    r_p = device.r_low * ra
    states = np.stack([r_a, r_b]) > 0.5 * (device.r_low + device.r_high)  # antiparallel?
    drawn = np.where(states, r_p * (1.0 + tmr), r_p)
    return drawn[0], drawn[1]


def string_sums(mtjs: np.ndarray, h: np.ndarray, weights: np.ndarray, circuit: CircuitConfig,
                engine: str = "ngspice") -> np.ndarray:
    """A resistance-sum tile's normalized sums for its rows ``h`` (0/1, ``images × cells``) solved as
    circuits: its strings (MTJ conductances ``mtjs``, ``cells × 2 n_out``, MTJ A and B of each
    string side by side, siemens; a tile's ``Block.conductances``) by ``engine``, read by the
    readout, then ``S = (MAC + sum w) / 2`` with the tile's stored weights ``weights``
    (``cells × n_out``)."""
    cell = string_cell(circuit)
    r_a, r_b = 1.0 / mtjs[:, 0::2], 1.0 / mtjs[:, 1::2]
    currents = string_currents(r_a, r_b, 2.0 * h - 1.0, cell, circuit.v_read, engine, circuit.backend,
                               circuit.string_max)
    mac = StringReadout(cell, circuit.v_read, circuit.string_max).mac(currents, r_a.shape[0])
    return np.asarray(0.5 * (mac + weights.sum(0)))


def check_binary_inputs(network: Any, circuit: CircuitConfig) -> None:
    """One line unless every crossbar layer after the first reads a step activation (0/1 inputs),
    as the resistance-sum topology needs; the first layer's images are checked when read."""
    if circuit.topology != "resistance-sum":
        return
    for k in network.crossbar_layers:
        source = network.sources[k][0] - 1  # -1: the images (checked when read)
        while source >= 0 and type(network.layers[source]).__name__ in ("Flatten", "Reshape"):
            source = network.sources[source][0] - 1
        layer = network.layers[source] if source >= 0 else None
        if layer is not None and getattr(layer, "kind", None) != "step":
            raise ConfigError(f"layer {k} reads {type(layer).__name__} {getattr(layer, 'kind', '')!s} outputs; the "
                              "resistance-sum cell takes inputs of 0 or 1 only: put a step activation before every "
                              "crossbar layer but the first (Activation(\"step\"))")


def check_binary_images(x: np.ndarray, circuit: CircuitConfig) -> None:
    """One line unless every input value is 0 or 1 (resistance-sum topology)."""
    if circuit.topology == "resistance-sum":
        check_binary("image value", x, allowed=(0.0, 1.0), fix="binarize the images (e.g. x > 0.5)")
