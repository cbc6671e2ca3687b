"""Running a tile of nonlinear cells: its ngspice deck and operating points, the cells file, and
the function of ``circuitsim simulate`` (either engine).

Public API
----------
nonlinear_deck, tile_wires, cell_lines, ngspice_currents, load_cells, simulate_cells, SPICE_OPTIONS
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .cells import CELL_MODELS, CellModel, cell_model
from .crossbar import Tile, build_circuit, input_source_names, sense_source_names
from .netlist import write_netlist
from .nonlinear import NonlinearSolver
from .nonlinear_tile import NewtonOptions, NonlinearResult, NonlinearTile
from .readout import sense_resistor_circuit

SPICE_OPTIONS = (".options reltol=1e-10 abstol=1e-18 vntol=1e-14 gmin=1e-20 itl1=1000",)
"""ngspice options of the reference runs: tolerances far below the 1e-6 compared."""


# -- ngspice ----------------------------------------------------------------------------------------


def nonlinear_deck(tile: NonlinearTile, inputs=None) -> str:
    """The ngspice deck of a tile (inputs 0 V by default), with :data:`SPICE_OPTIONS` and ``.op``."""
    wires = tile_wires(tile)
    circuit = sense_resistor_circuit(wires, tile.r_sense, inputs) if tile.r_sense > 0 else build_circuit(wires, inputs)
    lines = cell_lines(tile)
    deck = write_netlist(circuit, options=SPICE_OPTIONS + (".op",))
    head, tail = deck.rsplit("\n.options", 1)
    return head + "\n" + "\n".join(lines) + "\n\n.options" + tail


def tile_wires(tile: NonlinearTile, **options) -> Tile:
    """The linear tile of ``tile``'s wires without cells (every conductance 0: no cell
    element), ``options`` (e.g. ``tia``) passed to :class:`~circuitsim.tile.crossbar.Tile`;
    :func:`cell_lines` writes the cells between its nodes."""
    return Tile(np.zeros(tile.shape), r_row=tile.r_row, r_col=tile.r_col, **options)


def cell_lines(tile: NonlinearTile, node=str, prefix: str = "", held=()) -> list[str]:
    """Deck lines of ``tile``'s cells between the word-line and bit-line nodes of
    :func:`~circuitsim.tile.crossbar.build_circuit` of :func:`tile_wires` (B-sources,
    resistors, MOSFETs and their cards: :meth:`~circuitsim.tile.cells.CellModel.spice_lines`).

    Parameters
    ----------
    tile : NonlinearTile
    node : callable, optional
        Maps a node name of the wires' circuit to the deck's (e.g. prefixed, inputs renamed).
    prefix : str
        Put in front of every cell's element and internal node names (unique across tiles).
    held : sequence of str
        Lines the deck holds already: the gate sources and ``.model`` cards among them are not
        written again (every tile of a network shares the model's scalar parameters).
    """
    rows, cols = tile.shape
    ii, jj = (g.ravel() for g in np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"))
    wl = [node(f"wl{i}_{j}" if tile.r_row > 0 else f"in{i}") for i, j in zip(ii, jj)]
    bl = [node(f"bl{i}_{j}" if tile.r_col > 0 else f"blend{j}") for i, j in zip(ii, jj)]
    names = [f"{prefix}{i}_{j}" for i, j in zip(ii, jj)]
    lines = [line for line in tile.cells.spice_lines(wl, bl, names)
             if not (line.startswith((".model", "Vgs")) and line in held)]
    return [f"* {tile.cells.kind} cells (circuitsim.tile.cells)", *lines]


def ngspice_currents(tile: NonlinearTile, inputs, backend: str = "shared") -> NonlinearResult:
    """Output currents of input vectors by ngspice: one operating point per vector (``alter`` of
    the input sources), amperes ``(vectors, cols)``."""
    from ..spice import get_backend

    v = tile.check_inputs(inputs)
    start = time.perf_counter()
    deck = nonlinear_deck(tile).replace("\n.op\n", "\n")
    sources = [s.lower() for s in input_source_names(tile.rows)]
    sensed = [f"i({s.lower()})" for s in sense_source_names(tile.cols)]
    driven = [f"i({s})" for s in sources]
    steps = [[f"alter {src} dc = {float(x)!r}" for src, x in zip(sources, row)] + ["op"] for row in v]
    results = get_backend(backend).run(deck, steps, save=sensed + driven)
    out = np.array([[r[name][0] for name in sensed] for r in results])
    delivered = -np.array([[r[name][0] for name in driven] for r in results])  # ngspice: current into the + node
    return NonlinearResult(out, np.zeros(len(v), np.int64), "ngspice", time.perf_counter() - start, delivered)


# -- files and the command's function -----------------------------------------------------------------


def load_cells(path) -> CellModel:
    """The cells of a ``CELLS.npz`` file: ``model`` (a string) and the model's named parameters as
    ``rows × cols`` arrays (or scalars)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"cells file {path} does not exist; give a .npz with 'model' and the model's parameters")
    try:
        with np.load(file, allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} as a numpy .npz file ({exc}); save it with numpy.savez") from None
    if "model" not in content:
        raise ConfigError(f"{path} has no 'model' entry; add model='sinh' (one of {', '.join(CELL_MODELS)})")
    model = content.pop("model")
    if model.ndim or model.dtype.kind not in "US":
        raise ConfigError(f"{path}: 'model' must be one string (one of {', '.join(CELL_MODELS)})")
    try:
        cells = cell_model(str(model), **content)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if len(cells.shape) != 2:
        raise ConfigError(f"{path}: the {cells.kind} parameters must include a rows x cols array, got shape "
                          f"{cells.shape}")
    return cells


def simulate_cells(cells: CellModel, inputs, r_row: float = 0.0, r_col: float = 0.0, engine: str = "native",
                   backend: str = "shared", options: NewtonOptions | None = None,
                   r_sense: float = 0.0) -> NonlinearResult:
    """Output currents of a tile of (nonlinear) cells for a batch of input vectors.

    Parameters
    ----------
    cells : CellModel
        ``rows × cols`` cells.
    inputs : array_like
        ``(vectors, rows)`` input volts.
    r_row, r_col : float
        Wire resistance per cell segment, ohm.
    engine : {"native", "ngspice"}
    backend : {"shared", "subprocess"}
        ngspice backend (with ``engine="ngspice"``).
    options : NewtonOptions, optional
        Native convergence settings.
    r_sense : float
        Ohm; > 0 ends every bit line in a sense resistor to ground instead of a virtual ground.

    Returns
    -------
    NonlinearResult
        ``output_currents`` ``(vectors, cols)`` amperes (into the virtual grounds, or through the
        sense resistors), iterations per vector.
    """
    if engine not in ("native", "ngspice"):
        raise ConfigError(f"unknown engine {engine!r}; choose native or ngspice")
    tile = NonlinearTile(cells, r_row=r_row, r_col=r_col, r_sense=r_sense)
    v = tile.check_inputs(inputs)
    if engine == "ngspice":
        return ngspice_currents(tile, v, backend)
    return NonlinearSolver(tile, options).solve(v)
