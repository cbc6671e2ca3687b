"""A charge-mode transient replayed natively on ngspice's time points.

:func:`~circuitsim.tile.charge.characterize_charge` needs one evaluation per input, and every
unit input walks the same time grid as the full-scale one (same PWL corners). So only the
full-scale evaluation runs in ngspice; :func:`replay` re-integrates every input on the time
points ngspice accepted, with the same companion models, sharing one LU factorization per
step; the caller keeps it when the replayed full-scale outputs match ngspice's within
:data:`REPLAY_TOL`.

Public API
----------
replay, REPLAY_TOL
"""

from __future__ import annotations

import numpy as np

from .circuit import Circuit
from .crossbar import Tile, input_source_names


#: largest relative difference between the replayed and ngspice's full-scale outputs for which
#: :func:`characterize_charge` keeps the replay (else it runs one ngspice transient per input)
REPLAY_TOL = 1e-5


def replay(circuit: Circuit, tile: Tile, corners: np.ndarray, integrator: bool, times: np.ndarray,
           x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input vectors ``x`` (``(n, rows)``) on ngspice's time grid ``times``, natively.

    ``corners`` (``(k, 2)``: time, volts) is the full-scale input's PWL waveform, which every
    input follows scaled by its value; ``integrator`` reads ``-V(int<j>)``, else ``V(smp<j>)``.

    The same circuit and integration as ngspice's transient: modified nodal analysis of
    ``circuit`` (:func:`~.charge.charge_circuit` of the tile with its inputs), every
    capacitor by its companion model (backward Euler on the first step after each input
    corner, where ngspice cuts the order, trapezoidal elsewhere), all time points ngspice
    accepted. Every vector shares one LU
    factorization per step, so ``n`` evaluations cost about one.

    Returns
    -------
    v_out : numpy.ndarray
        ``Q / c_int`` at the last time point, ``(n, cols)``, volts.
    energy : numpy.ndarray
        ``-∫ V_in,k · I_in,j dt`` of the inputs of each vector, ``(n, rows, rows)``, joules.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from .native import assemble

    system = assemble(circuit)
    size, node = system.matrix.shape[0], {n: k - 1 for k, n in enumerate(circuit.node_names)}
    stamps = []
    for group in circuit.group("C"):
        a, b = group.nodes[:, 0] - 1, group.nodes[:, 1] - 1
        stamps += [(a, a, group.values), (b, b, group.values), (a, b, -group.values), (b, a, -group.values)]
    keep = [(r >= 0) & (c >= 0) for r, c, _ in stamps]
    cap = sp.csc_matrix((np.concatenate([v[k] for (_, _, v), k in zip(stamps, keep)]),
                         (np.concatenate([r[k] for (r, _, _), k in zip(stamps, keep)]),
                          np.concatenate([c[k] for (_, c, _), k in zip(stamps, keep)]))), shape=(size, size))
    g = system.matrix.tocsc()
    branch = system.source_index(input_source_names(tile.rows))
    shape = corners[:, 1] / (corners[:, 1].max() or 1.0)
    t = np.concatenate([[0.0], times[times > 0]])
    u = np.interp(t, corners[:, 0], shape)
    x = np.atleast_2d(x).T
    state, current = np.zeros((size, x.shape[1])), np.zeros((size, x.shape[1]))
    energy = np.zeros((tile.rows, tile.rows, x.shape[1]))
    i_prev = np.zeros((tile.rows, x.shape[1]))
    for k in range(1, len(t)):
        h = t[k] - t[k - 1]
        euler = bool(np.any(np.abs(corners[:, 0] - t[k - 1]) <= 1e-6 * h))
        a = 1.0 if euler else 2.0
        rhs = (a / h) * (cap @ state) + (0.0 if euler else current)
        rhs[branch] += x * u[k]
        new = spla.splu((g + (a / h) * cap).tocsc(), permc_spec="MMD_AT_PLUS_A").solve(np.asfortranarray(rhs))
        current = (a / h) * (cap @ (new - state)) - (0.0 if euler else current)
        state, i_now = new, new[branch]
        # -∫ v_k i_j dt, both linear over the step (v_k = x_k u)
        energy -= (h / 6) * (x[:, None, :] * (u[k - 1] * (2 * i_prev + i_now) + u[k] * (i_prev + 2 * i_now))[None])
        i_prev = i_now
    out = np.array([node[f"{'int' if integrator else 'smp'}{j}"] for j in range(tile.cols)])
    v_out = state[out].T * (-1 if integrator else 1)
    return v_out, np.moveaxis(energy, -1, 0)
