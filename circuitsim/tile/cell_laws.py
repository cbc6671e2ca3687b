"""Current laws of the elements that cells are made of, and two elements in series.

Every element law maps ``(v_first, v_second)`` to ``(I, ∂I/∂v_first, ∂I/∂v_second)``, the current
flowing from the first terminal to the second (:mod:`circuitsim.tile.cells` builds cells of them).

Public API
----------
mos_level1, two_terminal, resistor, sinh_law, series
"""

from __future__ import annotations

import numpy as np

Branch = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(I, ∂I/∂V_first, ∂I/∂V_second)`` of an element."""


def two_terminal(law):
    """Element of a current law ``I(V), dI/dV`` of its voltage only."""
    def element(v1, v2):
        i, g = law(v1 - v2)
        return i, g, -g
    return element


def resistor(g):
    return two_terminal(lambda v: (g * v, np.broadcast_to(g, v.shape)))


def sinh_law(i0, v0):
    return two_terminal(lambda v: (i0 * np.sinh(v / v0), i0 / v0 * np.cosh(v / v0)))


def series(model, cell: np.ndarray, va, vb, m0=None, max_iterations: int = 200):
    """Flat cells ``cell`` of two elements in series: the internal node ``m`` with
    ``I_1(va, m) = I_2(m, vb)``, and ``(I, ∂I/∂va, ∂I/∂vb, m)``.

    ``F(m) = I_1 - I_2`` falls with ``m`` (each element's current rises with its own
    voltage) from ``F >= 0`` at ``min(va, vb)`` to ``F <= 0`` at ``max(va, vb)``: Newton's
    step, replaced by bisection when it leaves the bracket, converges to rounding; only the
    cells not yet converged are evaluated again.
    """
    lo, hi = np.minimum(va, vb), np.maximum(va, vb)
    m = (lo + hi) / 2 if m0 is None else np.clip(m0, lo, hi)
    tol = 4 * np.finfo(float).eps * (np.maximum(np.abs(va), np.abs(vb)) + 1e-300)
    idx = np.flatnonzero(hi > lo)
    for _ in range(max_iterations):
        if not idx.size:
            break
        first, second = model.elements(cell[idx])
        mi = m[idx]
        i1, _, d1m = first(va[idx], mi)
        i2, d2m, _ = second(mi, vb[idx])
        f = i1 - i2
        positive = f > 0
        lo[idx] = lo_i = np.where(positive, mi, lo[idx])
        hi[idx] = hi_i = np.where(positive, hi[idx], mi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = mi - f / (d1m - d2m)
        outside = ~((new >= lo_i) & (new <= hi_i))  # also NaN
        new = np.where(outside, (lo_i + hi_i) / 2, new)
        new = np.where(f == 0, mi, new)
        m[idx] = new
        noise = 4 * np.finfo(float).eps * np.maximum(np.abs(i1), np.abs(i2))
        idx = idx[(np.abs(new - mi) > tol[idx]) & (hi_i - lo_i > tol[idx]) & (np.abs(f) > noise)]
    first, second = model.elements(cell)
    i1, d1a, d1m = first(va, m)
    i2, d2m, d2b = second(m, vb)
    slope = d1m - d2m
    with np.errstate(divide="ignore", invalid="ignore"):
        dm_da = np.where(slope != 0, -d1a / slope, 0.0)
        dm_db = np.where(slope != 0, d2b / slope, 1.0)
    return i2, d2m * dm_da, d2m * dm_db + d2b, m


def mos_level1(vg, vd, vs, vto, beta, lam) -> Branch:
    """Drain current of ngspice's level-1 n-MOSFET (``GAMMA = 0``, no junction currents) and
    its derivatives by the drain and source voltages; ``beta = KP W / L`` (A/V²).

    As ``mos1load.c``: with ``V_ds < 0`` drain and source swap (inverse mode); cutoff for
    ``V_gs - VTO <= 0``; saturation for ``V_gs - VTO <= V_ds`` (``β (1 + λ V_ds) V_gst² / 2``),
    else the linear region (``β (1 + λ V_ds) V_ds (V_gst - V_ds / 2)``).
    """
    vd, vs = np.broadcast_arrays(vd, vs)
    mode = np.where(vd - vs >= 0, 1.0, -1.0)
    vds = (vd - vs) * mode                      # >= 0
    vgs = np.where(mode > 0, vg - vs, vg - vd)  # from the effective source
    vgst = vgs - vto
    betap = beta * (1 + lam * vds)
    sat = vgst <= vds
    cdrain = np.where(sat, betap * vgst * vgst * 0.5, betap * vds * (vgst - 0.5 * vds))
    gm = np.where(sat, betap * vgst, betap * vds)
    gds = np.where(sat, lam * beta * vgst * vgst * 0.5,
                   betap * (vgst - vds) + lam * beta * vds * (vgst - 0.5 * vds))
    off = vgst <= 0
    cdrain, gm, gds = (np.where(off, 0.0, x) for x in (cdrain, gm, gds))
    # normal: I = f(vg - vs, vd - vs); inverse: I = -f(vg - vd, vs - vd)
    i = mode * cdrain
    d_vd = np.where(mode > 0, gds, gm + gds)
    d_vs = np.where(mode > 0, -(gm + gds), -gds)
    return i, d_vd, d_vs
