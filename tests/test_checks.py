"""The native engine's solution checks (circuitsim.tile.checks): residual and spread."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from circuitsim.errors import ConvergenceError
from circuitsim.tile.checks import RESIDUAL_TOLERANCE, check_residual


def _laplacian(n: int = 30, seed: int = 0) -> sp.csc_matrix:
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, 1e-4, n - 1)
    main = np.r_[g, 0] + np.r_[0, g] + 1e-5  # a line of conductances, each node grounded
    return sp.diags([-g, main, -g], [-1, 0, 1]).tocsc()


@pytest.mark.parametrize("form", ["csc", "csr", "coo", "dense"])
def test_an_exact_solve_passes_and_a_perturbed_one_fails(form):
    a = _laplacian()
    b = np.random.default_rng(1).standard_normal((a.shape[0], 2))
    x = np.linalg.solve(a.toarray(), b)
    matrix = a.toarray() if form == "dense" else a.asformat(form)
    assert check_residual(matrix, x, b) <= RESIDUAL_TOLERANCE
    wrong = x.copy()
    wrong[3, 1] *= 1 + 1e-6
    with pytest.raises(ConvergenceError, match="the solve is inaccurate"):
        check_residual(matrix, wrong, b)


def test_the_residual_scale_is_the_largest_row_sum_of_magnitudes():
    a = sp.csc_matrix(np.array([[4.0, -1.0, 0.0], [-1.0, 3.0, -2.0], [0.0, -2.0, 9.0]]))
    x = np.array([[1.0], [0.0], [0.0]])  # |A|'s largest row sum is 11: a residual of 11e-9 is the edge
    assert check_residual(a, x, a @ x + 1.09e-8) == pytest.approx(1.09e-8 / (11 + 4))
    with pytest.raises(ConvergenceError):
        check_residual(a, x, a @ x + 2e-8)


def test_values_spread_beyond_double_precision_are_refused():
    a = sp.diags([1e-8, 1.0, 1e7]).tocsc()
    x = np.ones((3, 1))
    with pytest.raises(ConvergenceError, match="circuit values span"):
        check_residual(a, x, a @ x)
