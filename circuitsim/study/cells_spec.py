"""The ``[cells]`` section of a spec: the cell model of the canonical tiles.

``[cells]`` describes the cells as a cells file does (:func:`~circuitsim.tile.nonlinear_run.load_cells`):
``model`` (one of :data:`~circuitsim.tile.cells.CELL_MODELS`) and the model's named parameters,
here scalars shared by every cell, e.g. ::

    [cells]
    model = "sinh"        # I = i0 sinh(V_d / v0) behind r_series
    v0 = 0.25             # volts
    r_series = 1000.0     # ohm

    [sweep]
    "cells.v0" = [0.1, 0.25, 1.0]

The model's *state* (``i0`` of ``sinh``, ``g`` of ``1s1r``/``1t1r``, ``g_p`` of ``mtj``) is
not given: every cell's state is set from its weight's conductance at the read voltage
(:func:`~circuitsim.tile.cell_mapping.map_conductance`). Every field is a grid axis
(``"cells.model" = ["linear", "sinh"]`` compares with linear cells). A parameter that is not
physical (``v0 <= 0``, a NaN), a parameter of another model, a state given, or a device
conductance the cells cannot reach at ``v_read`` is refused in one line before anything runs
(:class:`~circuitsim.network.circuit_config.CircuitConfig` checks the reach and the readout).
A spec without ``[cells]`` has linear cells and the points (and keys) of before.

Public API
----------
CELL_KEYS, CELL_TYPES, build_cells
"""

from __future__ import annotations

from ..errors import ConfigError
from ..tile.cells import CELL_MODELS, CellModel, cell_model

CELL_KEYS = {"model"} | {name for cls in CELL_MODELS.values() for name in cls.parameter_names()}
"""Keys of ``[cells]``: the model and every model's parameters."""
CELL_TYPES = {"model": "CellKind", **{name: "float" for name in CELL_KEYS - {"model"}}}
"""Declared type of every ``[cells]`` key (``CellKind``: a model name)."""
_PLACEHOLDER = 1.0
"""The template's state before mapping (replaced cell by cell)."""


def build_cells(config: dict) -> CellModel | None:
    """The cell template of a point's configuration (its ``[cells]``), or None without one."""
    section = config.get("cells")
    if section is None:
        return None
    parameters = dict(section)
    kind = str(parameters.pop("model", "linear"))
    cls = CELL_MODELS.get(kind)
    if cls is None:
        raise ConfigError(f"cells.model must be one of {', '.join(CELL_MODELS)}, got {kind!r}")
    if cls.STATE in parameters:
        raise ConfigError(f"cells.{cls.STATE} is the {kind} cell's state, set from each weight's conductance at the "
                          f"read voltage; remove it from [cells]")
    try:
        return cell_model(kind, **{cls.STATE: _PLACEHOLDER}, **parameters)
    except ConfigError as exc:
        raise ConfigError(f"[cells] {exc}") from None
