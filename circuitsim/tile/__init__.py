"""Circuits of one crossbar tile, and what they compute.

A tile is plain data (:class:`Tile`: conductances, wire parasitics, drivers and
readout). It becomes a :class:`~circuitsim.tile.circuit.Circuit`, which either the
ngspice deck writer or the native sparse engine solves; extraction turns the
solution into the tile's transfer matrix ``T`` (``I_out = T @ V_in``).

Modules
-------
circuit
    Plain-data circuits (elements by kind, node names) and their builder.
crossbar
    The canonical tile of docs/design.md and its options (``Tile``, ``TIA``).
netlist
    The ngspice deck writer.
native
    The native sparse MNA engine of any linear circuit (operating points, transfer matrices).
assembly, ordering, factor, native_tile
    The native engine on the tile grid: the reduced system assembled from the grid,
    nested dissection along it, CHOLMOD or SuperLU, ``TileSolver`` (whole ``T``, many vectors).
cells, cell_laws, cell_mapping
    Cell models as data (linear, sinh RRAM, 1S1R, 1T1R, MTJ), their element laws, and the
    mapping of a target conductance onto a cell's state.
nonlinear_tile, nonlinear, cell_space, nonlinear_run
    Tiles of nonlinear cells: the tile, options and result; the native Newton solve (in cell
    space, then on the tile grid); their ngspice deck, the cells file and ``circuitsim
    simulate``'s function.
batch
    Many tiles of one shape characterized together (one block-diagonal factorization).
operating_point
    Node voltages and branch currents of one solution.
extract
    ``simulate`` (one input vector) and ``characterize`` (the whole ``T``), by
    either engine; ``characterize_many`` (native, tiles in bulk).
readout
    Readout circuits of current mode: swing-limited TIA, passive sense resistor.
charge
    Charge-mode readout (integrator or sampling capacitor) by ngspice transients.
tile_cache
    Tile transfer matrices cached by content (in memory and verified on disk).
read_noise, noise_law
    Read noise through the wires (first-order sensitivities); the law a layer's read
    noise is drawn from.

Public API
----------
Tile, TIA, Circuit, OperatingPoint, TileResult, Characterization, ENGINES,
simulate, characterize, characterize_many, write_netlist, SwingLimitedTIA, characterize_sense_resistor,
ChargeReadout, characterize_charge, TileSolver, TileCache, ReadNoise, NoiseLaw
"""

from .charge import ChargeReadout, characterize_charge
from .circuit import Circuit
from .crossbar import TIA, Tile
from .extract import ENGINES, Characterization, TileResult, characterize, characterize_many, simulate
from .native_tile import TileSolver
from .netlist import write_netlist
from .operating_point import OperatingPoint
from .noise_law import NoiseLaw
from .read_noise import ReadNoise
from .readout import SwingLimitedTIA, characterize_sense_resistor
from .tile_cache import TileCache

__all__ = [
    "Tile", "TIA", "Circuit", "OperatingPoint", "TileResult", "Characterization", "ENGINES",
    "simulate", "characterize", "characterize_many", "write_netlist", "SwingLimitedTIA", "characterize_sense_resistor",
    "ChargeReadout", "characterize_charge", "TileSolver", "TileCache", "ReadNoise", "NoiseLaw",
]
