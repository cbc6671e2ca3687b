"""Mapping a target conductance onto a cell model's state.

The model's *state* parameter (``g`` of ``linear``, ``1s1r``, ``1t1r``; ``i0`` of ``sinh``; ``g_p``
of ``mtj``) is set per cell so that the cell alone, biased at the read voltage (``V_a = v_read``,
``V_b = 0``), carries ``I = G_target · v_read``; the other parameters are the template's. A target
the chain cannot carry (the series resistance, selector or transistor alone drops more than
``v_read``) is refused with the cell's index.

Public API
----------
map_conductance
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError
from .cell_laws import mos_level1
from .cells import CellModel


def map_conductance(template: CellModel, g_target, v_read: float) -> CellModel:
    """Cells like ``template`` whose state carries ``I = g_target · v_read`` at ``v_read``.

    Parameters
    ----------
    template : CellModel
        The model and its fixed parameters (its state parameter is replaced).
    g_target : array_like
        Target conductances, siemens, ``rows × cols`` (or broadcastable), >= 0 (> 0 except
        for ``linear``).
    v_read : float
        Read voltage across the cell, volts, > 0.

    Returns
    -------
    CellModel
        ``template`` with its state set per cell (module notes: how).
    """
    v = float(v_read)
    if not (np.isfinite(v) and v > 0):
        raise ConfigError(f"read voltage must be > 0 V, got {v_read!r}")
    g = np.asarray(g_target, dtype=float)
    shape = np.broadcast_shapes(template.shape, g.shape)
    cells = template.broadcast(shape if len(shape) == 2 else (1, int(np.prod(shape))))
    g = np.broadcast_to(g, cells.shape)
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ConfigError("target conductances must be finite and >= 0 S")
    current = g * v
    kind = template.kind
    if kind == "linear":
        return dataclasses.replace(cells, g=g.copy())
    if np.any(g <= 0):
        raise ConfigError(f"{kind} cells cannot be mapped onto a zero conductance; give targets > 0 S")
    if kind == "sinh":
        v_d = v - current * cells.r_series
        _unreachable(kind, v_d <= 0, g, v, "the series resistance alone drops v_read: lower r_series or the target")
        return dataclasses.replace(cells, i0=current / np.sinh(v_d / cells.v0))
    if kind == "1s1r":
        v_s = cells.n * cells.v_t * np.arcsinh(current / (2 * cells.i_s))
        _unreachable(kind, v_s >= v, g, v, "the selector alone drops v_read: raise i_s or lower the target")
        return dataclasses.replace(cells, g=current / (v - v_s))
    if kind == "1t1r":
        # the source voltage m with I_ds(v_gate - m, v_read - m) = current (falls with m from m = 0)
        beta = cells.kp * cells.w / cells.l
        on = mos_level1(cells.v_gate, v, 0.0, cells.vto, beta, cells.lam)[0]
        _unreachable(kind, on <= current, g, v, "the transistor cannot carry it: raise v_gate or w/l")
        lo, hi = np.zeros(cells.shape), np.full(cells.shape, v)
        for _ in range(200):  # bisection to rounding: I_ds falls with m
            mid = (lo + hi) / 2
            high = mos_level1(cells.v_gate, v, mid, cells.vto, beta, cells.lam)[0] > current
            lo, hi = np.where(high, mid, lo), np.where(high, hi, mid)
        return dataclasses.replace(cells, g=current / ((lo + hi) / 2))
    if kind == "mtj":
        t = cells.tmr0 * cells.antiparallel / (1 + (v / cells.v_h) ** 2)
        return dataclasses.replace(cells, g_p=g * (1 + t))
    raise ConfigError(f"no conductance mapping for {kind} cells")


def _unreachable(kind: str, bad: np.ndarray, g: np.ndarray, v: float, fix: str) -> None:
    if np.any(bad):
        where = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ConfigError(f"{kind} cell {where}: target {g[where]:g} S at {v:g} V is not reachable; {fix}")
