"""The Gaussian law of a layer's read noise per image, and how the evaluator draws from it.

An output's first-order read noise for inputs ``v`` is Gaussian with

    var_j(v) = Σ_i v_i² diagonal_ij + Σ_blocks Σ_r s_rj (v[rows] · u_rj)²

(:mod:`.read_noise`: the diagonal of every output's quadratic form, and per block of rows,
one per tile row of a layer, its largest cross-row eigenpairs ``u √|λ|``, ``s = sign λ``).
Every output is drawn from that law directly, one normal per output and image. Drawn as
written, the cross-row terms cost a product of the block's inputs per output and block,
more than the noise-free layer; :meth:`NoiseLaw.compressed` makes two exact-structure
simplifications wherever they change no output's σ by more than ``TOLERANCE``:

* the outputs of a block **share a few directions** ``Q`` (``len(rows) × m``): the cells'
  cross-row voltages come from the same lines, so the eigenvectors of all outputs of a tile
  row are nearly parallel. ``(v·u)²`` becomes ``a·F_j·a`` with ``a = v[rows] @ Q`` and a
  form ``F_j`` of ``m × m`` per output, and all blocks' forms take one matrix product of
  the ``m (m + 1) / 2`` products of ``a`` per block;
* the **diagonal has a low rank** ``A B`` (a device of two conductance levels in
  differential pairs gives every cell the same ``G₊² + G₋²``: rank one without wires).

Both are checked when the law is made, and what they leave out is added to ``residual``
(the bound that :meth:`.ReadNoise.std_bound` uses).

Public API
----------
NoiseLaw, normal_with_variance, standard_normal32, TOLERANCE
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

TOLERANCE = 0.02
"""Largest relative change of an output's σ from one simplification of :meth:`NoiseLaw.compressed`."""

_PROBES = 64
"""Random inputs on which shared directions are checked (besides all rows at 1)."""

_VALUES_PER_PASS = 1 << 18
"""Output values (images × outputs) drawn together (``bench/bench_variation.py`` timed
2¹⁶ … 2¹⁸ alike within its run-to-run spread; 2¹⁴ and 2²⁰ were slower)."""


def normal_with_variance(rng: np.random.Generator, var: np.ndarray) -> np.ndarray:
    """Replace the variances ``var`` (float32, contiguous) by one centred normal draw each.

    Box–Muller on 24-bit uniforms taken from the generator's raw 64-bit words (two per
    word): every pair of draws is ``√(var r²) (cos θ, sin θ)``, ``r² = −2 ln u₁`` with
    ``u₁ = (k₁ + 1) 2⁻²⁴`` in ``(0, 1]``, ``θ = 2π k₂ 2⁻²⁴``. The law is that of
    ``rng.standard_normal`` up to the 24-bit resolution (``|z| ≤ 5.8``) at a third of its
    cost in single precision: the evaluator draws one per layer output and image, and that
    draw is most of the cost of read noise (``bench/bench_variation.py``).
    """
    flat = var.reshape(-1)
    n = flat.size
    half = (n + 1) // 2
    bits = rng.bit_generator.random_raw(half).view(np.uint32)
    bits >>= 8
    u = bits.view(np.int32).astype(np.float32)  # k in [0, 2^24)
    radius, angle = u[:half], u[half:]
    radius += np.float32(1.0)
    radius *= np.float32(2.0 ** -24)  # exact: u1 in (0, 1]
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    angle *= np.float32(2 * np.pi * 2.0 ** -24)
    first, second = flat[:half], flat[half:]
    first *= radius
    second *= radius[: n - half]
    np.sqrt(flat, out=flat)
    sine = np.sin(angle[: n - half])
    np.cos(angle, out=angle)
    first *= angle
    second *= sine
    return var


def standard_normal32(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal draws in single precision (:func:`normal_with_variance` of ones)."""
    return normal_with_variance(rng, np.ones(shape, np.float32))


@dataclass(frozen=True, eq=False)
class NoiseLaw:
    """Gaussian law of the read noise of some outputs, per image (see the module docstring).

    ``var_j(v) = Σ_i v_i² diagonal_ij`` (or ``(v² @ A @ B)_j`` with ``factors = (A, B)``)
    plus, per block of rows, ``a·F_j·a`` with ``a = v[rows] @ Q`` (``shared``) or
    ``Σ_r s_rj (v[rows] · U_r[:, j])²`` (``own``: every output its own directions).
    """

    diagonal: np.ndarray
    """``rows × outs``."""
    own: tuple[tuple[slice, np.ndarray, np.ndarray], ...] = ()
    """Per block of rows: ``(rows, directions R × len(rows) × outs, signs R × outs)``."""
    residual: np.ndarray | None = None
    """``outs``: bound on the variance left out per volt² of input (None: nothing)."""
    shared: tuple[tuple[slice, np.ndarray, np.ndarray], ...] = ()
    """Per block of rows: ``(rows, directions len(rows) × m, forms m × m × outs)``."""
    factors: tuple[np.ndarray, np.ndarray] | None = None
    """``(A rows × k, B k × outs)``, ``A B`` close to ``diagonal``, or None."""

    def __post_init__(self):
        if self.residual is None:
            object.__setattr__(self, "residual", np.zeros(self.diagonal.shape[1]))

    @classmethod
    def compressed(cls, diagonal: np.ndarray, own, residual) -> "NoiseLaw":
        """The law of ``diagonal`` and the ``own`` blocks, its outputs sharing directions per
        block and its diagonal of low rank where that changes no σ by more than ``TOLERANCE``."""
        residual, shared, kept = np.array(residual, dtype=float), [], []
        for rows, u, sign in own:
            found = _shared_directions(u.astype(float), sign.astype(float), diagonal[rows].astype(float))
            if found is None:
                kept.append((rows, u, sign))
            else:
                basis, forms, left = found
                shared.append((rows, basis.astype(diagonal.dtype), forms.astype(diagonal.dtype)))
                residual += left
        factors = _low_rank(diagonal.astype(float))
        if factors is not None:
            a, b = factors
            residual += np.abs(a @ b - diagonal).max(axis=0)  # |Σ_i v_i² E_ij| ≤ |v|² max_i |E_ij|
            factors = (a.astype(diagonal.dtype), b.astype(diagonal.dtype))
        return cls(diagonal, tuple(kept), residual, tuple(shared), factors)

    @staticmethod
    def side_by_side(blocks, shape) -> "NoiseLaw":
        """One :meth:`compressed` law for single-tile laws (of ``own`` blocks) placed at
        ``(rows, outs)`` slices of a ``shape`` layer.

        The laws of tiles that share rows may keep different numbers of directions (a layer
        circuit's piece keeps as many as its own outputs need, :meth:`.ReadNoise.law`): their
        block holds the most of them, the others' missing directions at zero (sign 0), which
        adds nothing to any variance.
        """
        dtype = blocks[0][2].diagonal.dtype
        diagonal, residual = np.zeros(shape, dtype), np.zeros(shape[1])
        ranks: dict[tuple[int, int], int] = {}
        for rows, _, law in blocks:
            for _, u, _ in law.own:
                key = (rows.start, rows.stop)
                ranks[key] = max(ranks.get(key, 0), len(u))
        by_rows = {key: (np.zeros((rank, key[1] - key[0], shape[1]), dtype), np.zeros((rank, shape[1]), dtype))
                   for key, rank in ranks.items()}
        for rows, outs, law in blocks:
            diagonal[rows, outs] = law.diagonal
            residual[outs] += law.residual
            for _, u, sign in law.own:
                directions, signs = by_rows[(rows.start, rows.stop)]
                directions[: len(u), :, outs], signs[: len(u), outs] = u, sign
        return NoiseLaw.compressed(diagonal, [(slice(*key), u, s) for key, (u, s) in by_rows.items()], residual)

    def scaled(self, factor: float, dtype=np.float64) -> "NoiseLaw":
        """The law of the outputs times ``sqrt(factor)`` (variances times ``factor``)."""
        own = tuple((rows, (u * np.sqrt(factor)).astype(dtype), s.astype(dtype)) for rows, u, s in self.own)
        shared = tuple((rows, q.astype(dtype), (f * factor).astype(dtype)) for rows, q, f in self.shared)
        factors = None if self.factors is None else (self.factors[0].astype(dtype), (self.factors[1] * factor).astype(dtype))
        return NoiseLaw((self.diagonal * factor).astype(dtype), own, self.residual * factor, shared, factors)

    def variance(self, v, bias: bool = False) -> np.ndarray:
        """Variance of every output (``N × outs``) for inputs ``v`` (``N × rows``; with
        ``bias``, ``v`` lacks the last row's input, which is 1), in the law's dtype."""
        v = np.atleast_2d(v)
        out = np.empty((len(v), self.diagonal.shape[1]), self.diagonal.dtype)
        for part in self.passes(len(v)):
            out[part] = self._variance(v[part], bias)
        return out

    def draw(self, v, rng: np.random.Generator, bias: bool = False) -> np.ndarray:
        """One draw per image of the outputs' noise (``N × outs``)."""
        v = np.atleast_2d(v)
        return self.add_noise(np.zeros((len(v), self.diagonal.shape[1]), self.diagonal.dtype), v, rng, bias)

    def add_noise(self, sums: np.ndarray, v, rng: np.random.Generator, bias: bool = False) -> np.ndarray:
        """Add one draw per image of the outputs' noise to ``sums`` (``N × outs``, in place)
        for inputs ``v``, and return ``sums``."""
        v = np.atleast_2d(v)
        for part in self.passes(len(v)):
            sums[part] += normal_with_variance(rng, self._variance(v[part], bias))
        return sums

    def passes(self, images: int):
        """Slices of ``images`` images, ``_VALUES_PER_PASS`` output values each: few enough
        Python calls, small enough intermediate arrays (a caller that computes more per image,
        such as the layer's own sums, can follow them and read its inputs once)."""
        step = max(64, _VALUES_PER_PASS // self.diagonal.shape[1])
        for start in range(0, images, step):
            yield slice(start, start + step)

    @cached_property
    def _products(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The shared blocks at once: ``a = v @ directions`` (``rows × Σm``) and the variance
        ``Σ_p a[first_p] a[second_p] weights_pj`` over the pairs of every block's directions,
        the diagonal's factor ``B`` stacked on top of ``weights`` (with ``factors``)."""
        directions = np.zeros((len(self.diagonal), sum(q.shape[1] for _, q, _ in self.shared)), self.diagonal.dtype)
        first, second, weights, at = [], [], [], 0
        for rows, q, forms in self.shared:
            directions[rows, at:at + q.shape[1]] = q
            for k in range(q.shape[1]):
                for m in range(k, q.shape[1]):
                    first.append(at + k), second.append(at + m)
                    weights.append(forms[k, m] * (1 if k == m else 2))
            at += q.shape[1]
        weights = np.array(weights, self.diagonal.dtype).reshape(-1, self.diagonal.shape[1])
        if self.factors is not None:
            weights = np.vstack([self.factors[1], weights])
        return directions, np.array(first, int), np.array(second, int), weights

    def _variance(self, v: np.ndarray, bias: bool) -> np.ndarray:
        n = v.shape[1]
        v = v.astype(self.diagonal.dtype)
        if self.shared:
            directions, first, second, _ = self._products
            along = v @ directions[:n]
            if bias:
                along += directions[n]
        squares = np.square(v, out=None if self.own else v)
        features = []
        if self.factors is None:
            var = squares @ self.diagonal[:n]
            if bias:
                var += self.diagonal[n]
        else:
            features.append(squares @ self.factors[0][:n])
            if bias:
                features[0] += self.factors[0][n]
        if self.shared:
            features.append(along[:, first] * along[:, second])
        if features:
            spread = (np.hstack(features) if len(features) > 1 else features[0]) @ self._products[3]
            var = spread if self.factors is not None else var + spread
        for rows, directions, signs in self.own:
            block = v[:, rows.start:min(rows.stop, n)]
            for u, sign in zip(directions, signs):
                along = block @ u[: block.shape[1]]
                if rows.stop > n:  # the bias row
                    along += u[-1]
                along *= along
                if np.all(sign <= 0):  # the usual case: the shared lines lower the cells' voltages
                    var -= along
                else:
                    var += along * sign
        return np.maximum(var, 0.0, out=var)


def _shared_directions(u: np.ndarray, sign: np.ndarray, diagonal: np.ndarray):
    """The fewest directions that the directions ``u`` (``R × len × outs``, signs ``R × outs``)
    of a block's outputs share, as ``(basis len × m, forms m × m × outs, left outs)``, or None.

    They are shared when that changes no output's σ from the block (``diagonal``: its
    ``len × outs`` part of the diagonal) by more than ``TOLERANCE`` on probe inputs (every
    row at 1, and ``_PROBES`` uniform in [0, 1]). ``left_j = Σ_r |u_rj − QQᵀu_rj|
    |u_rj + QQᵀu_rj|`` bounds the change for any input, per volt² (``|(v·u)² − (v·QQᵀu)²|``
    is at most that times ``|v|²``). Only ``m`` with no more pairs ``m (m + 1) / 2`` than
    rows are tried: more would cost more than own directions.
    """
    length = u.shape[1]
    probes = np.vstack([np.ones(length), np.random.default_rng(0).uniform(0.0, 1.0, (_PROBES, length))])

    def block_std(directions):
        var = np.square(probes) @ diagonal + sum(s * np.square(probes @ d) for d, s in zip(directions, sign))
        return np.sqrt(np.maximum(var, 0.0))

    exact = block_std(u)
    svd = np.linalg.svd(np.concatenate(list(u), axis=1), full_matrices=False)[0]
    for m in range(1, length + 1):
        if m * (m + 1) // 2 > length:
            return None
        basis = svd[:, :m]
        loads = basis.T @ u  # R × m × outs
        kept = basis @ loads
        if np.all(np.abs(block_std(kept) - exact) <= TOLERANCE * exact):
            left = (np.linalg.norm(u - kept, axis=1) * np.linalg.norm(u + kept, axis=1)).sum(axis=0)
            return basis, np.einsum("rj,rkj,rlj->klj", sign, loads, loads), left
    return None


def _low_rank(diagonal: np.ndarray):
    """``(A, B)`` of the lowest rank with ``|A B − D| ≤ 2 TOLERANCE D`` in every entry
    (then no σ of any input changes by more than ``TOLERANCE``), or None when every such
    rank would cost at least half the full product."""
    rows, outs = diagonal.shape
    u, s, vt = np.linalg.svd(diagonal, full_matrices=False)
    for k in range(1, len(s) + 1):
        if 2 * k * (rows + outs) > rows * outs:
            return None
        a, b = u[:, :k] * s[:k], vt[:k]
        if np.all(np.abs(a @ b - diagonal) <= 2 * TOLERANCE * diagonal):
            return a, b
    return None
