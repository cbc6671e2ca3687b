"""Native DC engine: modified nodal analysis with scipy.sparse.

Solves the same :class:`~circuitsim.tile.circuit.Circuit` that the netlist writer
gives ngspice (resistors, independent and voltage-controlled voltage sources;
capacitors are open at DC). Voltage sources from a node to ground fix that
node's voltage, so their node and branch unknowns are eliminated before the
factorization (for a resistive crossbar the remaining matrix is symmetric
positive definite); every other source keeps its MNA branch row.

The transfer matrix between input and output sources comes from one sparse LU
factorization and ``min(inputs, outputs)`` right-hand sides (the adjoint system
when there are fewer outputs than inputs).

Public API
----------
MNASystem, assemble, operating_point, transfer_matrix
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import cho_factor, cho_solve

from ..errors import ConvergenceError, SimulationError
from . import checks
from .circuit import Circuit
from .operating_point import OperatingPoint


@dataclass(frozen=True, eq=False)
class MNASystem:
    """The MNA system ``A x = b`` split into fixed and free unknowns.

    The unknowns are the non-ground node voltages followed by the branch
    currents of every voltage source (``V`` then ``E`` elements, deck order).
    ``fixed_nodes[k]`` is the node voltage unknown set by grounded source
    ``fixed_branches[k]``; ``free`` lists all other unknowns.
    """

    matrix: sp.csr_matrix
    """Full MNA matrix, shape ``(n, n)``."""
    rhs: np.ndarray
    """Right-hand side with the DC source values."""
    n_voltages: int
    """Number of node-voltage unknowns."""
    source_names: tuple[str, ...]
    """Voltage sources in unknown order (after the node voltages)."""
    fixed_nodes: np.ndarray
    """Unknown indices of node voltages fixed by grounded sources."""
    fixed_branches: np.ndarray
    """Unknown indices of those sources' branch currents."""
    free: np.ndarray
    """Unknown indices solved for."""

    def source_index(self, names) -> np.ndarray:
        """Unknown indices of the branch currents of named sources."""
        index = {n.lower(): k for k, n in enumerate(self.source_names)}
        try:
            return np.array([self.n_voltages + index[n.lower()] for n in names], dtype=np.int64)
        except KeyError as exc:
            raise SimulationError(f"no voltage source named {exc.args[0]!r} in the circuit") from None


def assemble(circuit: Circuit) -> MNASystem:
    """Assemble the DC MNA system of a linear circuit."""
    n_v = circuit.n_nodes - 1
    rows, cols, vals = [], [], []

    def stamp(r, c, v):
        keep = (r >= 0) & (c >= 0)
        rows.append(r[keep])
        cols.append(c[keep])
        vals.append(np.broadcast_to(v, r.shape)[keep])

    for group in circuit.group("R"):
        a, b = group.nodes[:, 0] - 1, group.nodes[:, 1] - 1
        g = 1.0 / group.values
        stamp(a, a, g)
        stamp(b, b, g)
        stamp(a, b, -g)
        stamp(b, a, -g)

    sources = circuit.group("V") + circuit.group("E")
    names = [name for group in sources for name in group.names]
    rhs = np.zeros(n_v + len(names))
    fixed_nodes, fixed_branches = [], []
    k = n_v
    for group in sources:
        m = len(group)
        branch = np.arange(k, k + m)
        p, n = group.nodes[:, 0] - 1, group.nodes[:, 1] - 1
        one = np.ones(m)
        # KCL: the branch current leaves p and enters n
        stamp(p, branch, one)
        stamp(n, branch, -one)
        # branch equation: v_p - v_n (- gain (v_cp - v_cn)) = value
        stamp(branch, p, one)
        stamp(branch, n, -one)
        if group.kind == "E":
            cp, cn = group.nodes[:, 2] - 1, group.nodes[:, 3] - 1
            stamp(branch, cp, -group.values)
            stamp(branch, cn, group.values)
        else:
            rhs[branch] = group.values
            grounded = (n < 0) & (p >= 0)
            fixed_nodes.append(p[grounded])
            fixed_branches.append(branch[grounded])
        k += m

    size = len(rhs)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )
    fixed_nodes = np.concatenate(fixed_nodes) if fixed_nodes else np.zeros(0, np.int64)
    fixed_branches = np.concatenate(fixed_branches) if fixed_branches else np.zeros(0, np.int64)
    # a node fixed twice keeps its first source; the second stays an MNA row
    fixed_nodes, first = np.unique(fixed_nodes, return_index=True)
    fixed_branches = fixed_branches[first]
    free = np.setdiff1d(np.arange(size), np.concatenate([fixed_nodes, fixed_branches]))
    return MNASystem(matrix, rhs, n_v, tuple(names), fixed_nodes, fixed_branches, free)


class _Reduced:
    """Factorization of the free block and the couplings to the fixed nodes."""

    def __init__(self, system: MNASystem):
        a = system.matrix
        free, fixed = system.free, system.fixed_nodes
        a_free_rows = a[free]
        self.a_ff = a_free_rows[:, free].tocsc()
        self.a_fk = a_free_rows[:, fixed].tocsc()
        # KCL rows at fixed nodes give the currents of their sources
        fixed_rows = a[fixed]
        self.a_kf = fixed_rows[:, free].tocsr()
        self.a_kk = fixed_rows[:, fixed].tocsr()
        self._lu = {}

    def solve(self, rhs: np.ndarray, adjoint: bool = False) -> np.ndarray:
        """Solve ``A_ff x = rhs`` (or ``A_ff^T x = rhs`` when ``adjoint``).

        SuperLU's transposed solve is many times faster than its plain solve
        with many right-hand sides, so ``A_ff x = rhs`` is solved as the
        transposed system of the factorization of ``A_ff^T``.
        """
        if adjoint not in self._lu:
            matrix = self.a_ff if adjoint else self.a_ff.T.tocsc()
            self._lu[adjoint] = self._factor(matrix, "MMD_AT_PLUS_A", pivot=0.1)
        return self._lu[adjoint].solve(np.asfortranarray(rhs), trans="T")

    def port_schur(self, ports: np.ndarray) -> np.ndarray | None:
        """Schur complement ``S`` of ``A_ff`` onto ``ports`` (dense), or None.

        ``inv(S)`` is the block ``inv(A_ff)[ports][:, ports]``, obtained without
        right-hand-side solves.

        For a symmetric ``A_ff`` (resistive circuits, where it is positive
        definite) the ports are ordered last after a fill-reducing ordering
        and the matrix is factorized without pivoting; the trailing block of
        ``L U`` is then the Schur complement onto the ports, whose inverse is
        the wanted block's inverse. Returns None for non-symmetric matrices, many ports,
        or when the factorization pivoted.
        """
        a = self.a_ff
        m, n = len(ports), a.shape[0]
        if m == 0 or m > 4000 or m >= n or abs(a - a.T).max() > 0:
            return None
        ordering = self._factor(a, "MMD_AT_PLUS_A", pivot=0.0)
        order = np.argsort(ordering.perm_c)
        is_port = np.zeros(n, bool)
        is_port[ports] = True
        order = np.concatenate([order[~is_port[order]], ports])
        lu = self._factor(a[order][:, order].tocsc(), "NATURAL", pivot=0.0)
        if not (np.array_equal(lu.perm_r, np.arange(n)) and np.array_equal(lu.perm_c, np.arange(n))):
            return None
        lower = lu.L[:, n - m:].tocsr()[n - m:]
        upper = lu.U[:, n - m:].tocsr()[n - m:]
        return (lower @ upper).toarray()

    @staticmethod
    def _factor(matrix, ordering: str, pivot: float):
        try:
            return spla.splu(matrix, permc_spec=ordering, diag_pivot_thresh=pivot,
                             options={"SymmetricMode": True})
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise ConvergenceError(
                f"native engine: singular circuit matrix ({exc}); "
                "check for floating nodes or loops of voltage sources"
            ) from None


def operating_point(circuit: Circuit) -> OperatingPoint:
    """DC operating point of a linear circuit.

    Returns
    -------
    OperatingPoint
        Node voltages and voltage-source branch currents.
    """
    system = assemble(circuit)
    red = _Reduced(system)
    x = np.zeros(len(system.rhs))
    v_fixed = system.rhs[system.fixed_branches]
    x[system.fixed_nodes] = v_fixed
    b_free = system.rhs[system.free] - red.a_fk @ v_fixed
    x[system.free] = red.solve(b_free)
    checks.check_residual(red.a_ff, x[system.free], b_free)
    x[system.fixed_branches] = -(red.a_kf @ x[system.free] + red.a_kk @ v_fixed)
    n_v = system.n_voltages
    return OperatingPoint(circuit.node_names[1:], x[:n_v], system.source_names, x[n_v:])


def transfer_matrix(circuit: Circuit, inputs, outputs) -> np.ndarray:
    """Matrix ``T`` with ``I_out = T @ V_in`` between sources of a linear circuit.

    Parameters
    ----------
    circuit : Circuit
        A linear circuit; the DC values of its sources are ignored.
    inputs : sequence of str
        Names of the independent voltage sources driving the circuit.
    outputs : sequence of str
        Names of the voltage sources whose branch currents are the outputs.

    Returns
    -------
    numpy.ndarray
        ``T`` of shape ``(len(outputs), len(inputs))`` in siemens.
    """
    system = assemble(circuit)
    red = _Reduced(system)
    n_free, n_fixed = len(system.free), len(system.fixed_nodes)
    # position of each unknown among the free unknowns / the fixed sources (-1: not there)
    free_pos = np.full(len(system.rhs), -1)
    free_pos[system.free] = np.arange(n_free)
    fixed_pos = np.full(len(system.rhs), -1)
    fixed_pos[system.fixed_branches] = np.arange(n_fixed)

    # inputs: a grounded source sets its node voltage (v_in_fixed); a floating one
    # puts a unit value in its own branch row; x_free = A_ff^-1 (rhs - A_fk v_in_fixed)
    u_in = system.source_index(inputs)
    k_in = np.arange(len(u_in))
    grounded = fixed_pos[u_in] >= 0
    v_in_fixed = _selection(fixed_pos[u_in][grounded], k_in[grounded], (n_fixed, len(u_in)))
    rhs_in = _selection(free_pos[u_in][~grounded], k_in[~grounded], (n_free, len(u_in)))
    rhs_in = (rhs_in - red.a_fk @ v_in_fixed).tocsc()

    # outputs: I = c_out x_free + e_out v_fixed; a grounded source's current is
    # minus the KCL sum at its node, a floating one's is its own branch unknown
    u_out = system.source_index(outputs)
    k_out = np.arange(len(u_out))
    grounded = fixed_pos[u_out] >= 0
    pick = _selection(k_out[grounded], fixed_pos[u_out][grounded], (len(u_out), n_fixed))
    c_out = _selection(k_out[~grounded], free_pos[u_out][~grounded], (len(u_out), n_free))
    c_out = (c_out - pick @ red.a_kf).tocsr()
    e_out = -(pick @ red.a_kk)

    ports = np.union1d(rhs_in.tocoo().row, c_out.tocoo().col)
    through = _through_ports(red, ports, c_out, rhs_in)
    if through is None and len(u_in) <= len(u_out):
        through = c_out @ red.solve(rhs_in.toarray())
    elif through is None:
        adjoint = red.solve(c_out.T.toarray(), adjoint=True)
        through = (rhs_in.T @ adjoint).T
    checks.check_transfer(red.a_ff, red.solve, rhs_in, c_out, through)
    return np.asarray(through + e_out @ v_in_fixed)


def _through_ports(red: _Reduced, ports, c_out, rhs_in):
    """``c_out A_ff^-1 rhs_in`` from the Schur complement onto the ports, or None when
    it does not apply: ``x_ports = S^-1 rhs_ports`` needs ``S`` positive definite, true
    when every source is grounded, not with a floating probe (e.g. above a sense resistor)."""
    schur = red.port_schur(ports)
    if schur is None:
        return None
    try:
        return c_out[:, ports] @ cho_solve(cho_factor(schur), rhs_in[ports, :].toarray())
    except np.linalg.LinAlgError:
        return None


def _selection(rows, cols, shape) -> sp.csr_matrix:
    """Sparse matrix with ones at ``(rows[k], cols[k])``."""
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
