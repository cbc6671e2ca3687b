"""Tiles characterized together (one factorization per group), the ports' block read in place
from CHOLMOD's factor, and which BLAS CHOLMOD uses."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import scipy.sparse as sp

from circuitsim.network.circuit_config import CircuitConfig
from circuitsim.tile.tile_cache import TileCache
from circuitsim.tile import batch, factor
from circuitsim.tile.assembly import assemble_tile
from circuitsim.tile.crossbar import TIA, Tile
from circuitsim.tile.extract import characterize, characterize_many
from circuitsim.tile.native_tile import TileSolver

REFERENCE_BLAS = "/usr/lib/x86_64-linux-gnu/blas"
"""Debian's netlib reference BLAS (LAPACK next to it in ``../lapack``)."""

needs_cholmod = pytest.mark.skipif("cholmod" not in factor.available_backends(), reason="needs scikit-sparse")


def _tiles(rng, count, shape, r_row=2.5, r_col=3.0, r_driver=0.0, tia=False, open_cells=True):
    out = []
    for _ in range(count):
        g = rng.uniform(1e-6, 1e-4, shape)
        if open_cells:
            g[1, :] = 0.0
            g[0, 2] = 0.0
        out.append(Tile(g, r_row=r_row * rng.uniform(0.5, 2.0) if r_row else 0.0, r_col=r_col, r_driver=r_driver,
                        tia=TIA(gain=rng.uniform(1e3, 1e5), r_feedback=1e4) if tia else None))
    return out


def _rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


@needs_cholmod
def test_tiles_together_match_tiles_one_by_one(rng):
    tiles = []
    for r_row, r_col, r_driver, tia in itertools.product([0.0, 2.5], [0.0, 3.0], [0.0, 20.0], [False, True]):
        for shape in ((6, 5), (9, 4)):
            tiles += _tiles(rng, 3, shape, r_row, r_col, r_driver, tia)
    tiles += _tiles(rng, 2, (6, 5), open_cells=False)  # another pattern of the same shape
    order = rng.permutation(len(tiles))
    together = batch.transfer_many([tiles[k] for k in order])
    for k, (T, Y) in zip(order, together):
        T_ref, Y_ref = TileSolver(tiles[k], backend="cholmod").transfer()
        assert T.shape == T_ref.shape and Y.shape == Y_ref.shape
        assert _rel(T, T_ref) <= 1e-10
        g_max = max(np.abs(Y_ref).max(), 1.0 / 2.5)  # Y's rounding scales with the wires
        assert np.abs(Y - Y_ref).max() <= 1e-10 * g_max


@needs_cholmod
def test_symbolic_analysis_is_reused_for_new_values(rng, monkeypatch):
    calls = []
    monkeypatch.setattr(batch, "analyze", lambda m, supernodal: calls.append(m.shape) or factor.analyze(m, supernodal))
    monkeypatch.setattr(batch, "_analyses", type(batch._analyses)())
    for _ in range(2):  # the same pattern and group size, other values (another realization)
        tiles = _tiles(rng, 4, (12, 10), tia=True)
        for (T, _), tile in zip(batch.transfer_many(tiles), tiles):
            assert _rel(T, TileSolver(tile).transfer()[0]) <= 1e-10
    assert len(calls) == 1


@needs_cholmod
def test_a_group_in_chunks_shares_one_analysis_per_chunk_size(rng, monkeypatch):
    calls = []
    monkeypatch.setattr(batch, "analyze", lambda m, supernodal: calls.append(m.shape) or factor.analyze(m, supernodal))
    monkeypatch.setattr(batch, "_analyses", type(batch._analyses)())
    tiles = _tiles(rng, 5, (12, 10), tia=True)
    n = batch._template(tiles[0]).pattern.n_free
    monkeypatch.setattr(batch, "BATCH_NODES", 2 * n)  # chunks of 2, 2 and 1 tiles
    for (T, Y), tile in zip(batch.transfer_many(tiles), tiles):
        T_ref, Y_ref = TileSolver(tile).transfer()
        assert _rel(T, T_ref) <= 1e-10 and _rel(Y, Y_ref) <= 1e-10
    assert sorted(calls) == [(n, n), (2 * n, 2 * n)]


@needs_cholmod
@pytest.mark.parametrize("supernodal", [True, False])
def test_ports_block_read_in_place(rng, supernodal):
    systems = [assemble_tile(t) for t in _tiles(rng, 3, (20, 16), tia=True)]
    n, m = systems[0].n_free, len(systems[0].ports)
    big = sp.block_diag([s.a_ff for s in systems]).tocsc()
    f = factor.SPDFactor(big, None, "cholmod", analysis=factor.analyze(big, supernodal))
    lower, d = f.trailing_factors(n * np.arange(1, 3), m)
    assert np.array_equal(lower, np.tril(lower)) and (np.all(d == 1.0) if supernodal else np.all(
        np.diagonal(lower, axis1=1, axis2=2) == 1.0))  # L L^T, or L D L^T with a unit diagonal
    schurs = (lower * d[:, None, :]) @ np.swapaxes(lower, 1, 2)
    for s, schur in zip(systems, schurs):
        a = s.a_ff.toarray()
        ref = a[n - m:, n - m:] - a[n - m:, :n - m] @ np.linalg.solve(a[:n - m, :n - m], a[:n - m, n - m:])
        assert np.abs(schur - ref).max() <= 1e-10 * np.abs(ref).max()
    single = factor.SPDFactor(systems[0].a_ff, None, "cholmod")
    assert np.abs(single.trailing_schur(m) - schurs[0]).max() <= 1e-10 * np.abs(schurs[0]).max()
    # a right-hand side on the ports only: its forward substitution is D22^-1 L22^-1 b there
    b = np.zeros((3, n))
    b[:, n - m:] = rng.normal(size=(3, m))
    z = np.stack([np.linalg.solve(lower[k], b[k, n - m:]) for k in range(3)]) / d
    x = f.solve_from_ports(z, n * np.arange(1, 4), m)
    assert np.abs(big @ x - b.ravel()).max() <= 1e-12 * np.abs(b).max() * np.abs(big).sum(axis=1).max()
    assert np.abs(x - f.solve(b.ravel())).max() <= 1e-10 * np.abs(x).max()


def test_superlu_goes_tile_by_tile(rng):
    tiles = _tiles(rng, 3, (6, 5), tia=True)
    for (T, _), tile in zip(batch.transfer_many(tiles, backend="superlu"), tiles):
        assert _rel(T, TileSolver(tile, backend="superlu").transfer()[0]) <= 1e-12


@needs_cholmod
@pytest.mark.ngspice
def test_tiles_together_match_ngspice(rng):
    tiles = _tiles(rng, 3, (5, 4), r_driver=20.0, tia=True)
    for result, tile in zip(characterize_many(tiles), tiles):
        ref = characterize(tile, engine="ngspice")
        assert result.metadata["engine"] == "native" and result.metadata["content_hash"] == tile.content_hash()
        assert _rel(result.T, ref.T) <= 1e-9


@needs_cholmod
def test_prefetch_fills_the_cache_once(rng, tmp_path):
    tiles = _tiles(rng, 4, (8, 6))
    cache = TileCache(tmp_path)
    circuit = CircuitConfig()
    cache.prefetch(tiles + tiles[:1], circuit)
    assert cache.misses == 0 and not list(tmp_path.iterdir())  # nothing counted or written yet
    for tile in tiles:
        assert _rel(cache.transfer(tile, circuit).T, characterize(tile).T) <= 1e-10
    assert cache.misses == 4 and cache.hits == 0 and len(list(tmp_path.iterdir())) == 4
    cache.prefetch(tiles, circuit)  # all cached: nothing to do
    assert cache.transfer(tiles[0], circuit) is cache.transfer(tiles[0], circuit)


@needs_cholmod
def test_cholmod_blas_is_a_loaded_library():
    path = factor.cholmod_blas()
    assert path is not None and os.path.isfile(path)
    assert factor.blas_kind(path) in ("OpenBLAS", "reference", "MKL", "BLIS", "ATLAS", "unknown")
    assert factor.blas_kind("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3") == "OpenBLAS"
    assert factor.blas_kind("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0") == "reference"
    assert factor.blas_kind(None) == "unknown"


@needs_cholmod
def test_unknown_layout_copies_the_factor(rng, monkeypatch):
    tiles = _tiles(rng, 3, (20, 16), tia=True)
    in_place = batch.transfer_many(tiles)
    monkeypatch.setattr(factor, "_KNOWN", False)  # another scikit-sparse: never read blind
    monkeypatch.setattr(batch, "_analyses", type(batch._analyses)())
    for (T, _), (T_copy, _), tile in zip(in_place, batch.transfer_many(tiles), tiles):
        assert _rel(T_copy, T) <= 1e-10
        assert _rel(TileSolver(tile).transfer()[0], T) <= 1e-10


@needs_cholmod
def test_threads_share_the_cached_analysis_safely(rng):
    from concurrent.futures import ThreadPoolExecutor

    groups = [_tiles(rng, 4, (10, 8)) for _ in range(6)]  # one pattern, other values
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(batch.transfer_many, groups))
    for tiles, got in zip(groups, results):
        for tile, (T, _) in zip(tiles, got):
            assert _rel(T, TileSolver(tile).transfer()[0]) <= 1e-10


_BLAS_CHILD = """
import json
import numpy as np
from circuitsim.tile.crossbar import TIA, Tile
from circuitsim.tile.extract import simulate
from circuitsim.tile.factor import blas_kind, cholmod_blas
from circuitsim.tile.native_tile import TileSolver

rng = np.random.default_rng(7)
tile = Tile(rng.uniform(1e-6, 1e-4, (96, 64)), r_row=2.5, r_col=2.5, tia=TIA())
v = rng.uniform(0.0, 0.8, 96)
T, Y = TileSolver(tile, backend="cholmod").transfer()
spice, native = simulate(tile, v, engine="ngspice"), simulate(tile, v)
a = rng.standard_normal((300, 300))
print(json.dumps({"blas": blas_kind(cholmod_blas()), "T": T.tolist(), "Y": Y.tolist(),
                  "ngspice": spice.output_voltages.tolist(), "native": native.output_voltages.tolist(),
                  "solve": np.linalg.solve(a @ a.T + np.eye(300), np.ones(300)).tolist()}))
"""


@needs_cholmod
@pytest.mark.skipif(not (os.path.isfile(REFERENCE_BLAS + "/libblas.so.3") and "OpenBLAS" in str(factor.blas_kind(
    factor.cholmod_blas()))), reason="needs OpenBLAS selected and Debian's reference BLAS installed")
def test_reference_and_openblas_give_the_same_results():
    """The set-up selects OpenBLAS under CHOLMOD: the whole T, numpy and ngspice give what they
    gave on netlib's reference BLAS (to 1e-12), and doctor names the reference BLAS and warns."""
    import json
    import subprocess
    import sys

    runs = {}
    for kind, extra in (("OpenBLAS", None), ("reference", f"{REFERENCE_BLAS}:{REFERENCE_BLAS}/../lapack")):
        env = dict(os.environ)
        if extra:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [extra, env.get("LD_LIBRARY_PATH")]))
        done = subprocess.run([sys.executable, "-c", _BLAS_CHILD], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        runs[kind] = {k: np.asarray(v) if k != "blas" else v
                      for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
        assert runs[kind]["blas"] == kind
        if extra:
            doctor = subprocess.run([sys.executable, "-m", "circuitsim.cli", "doctor"], capture_output=True,
                                    text=True, env=env)
            assert doctor.returncode == 0, doctor.stderr
            assert "(reference)" in doctor.stdout and "netlib's reference BLAS" in doctor.stdout
    fast, ref = runs["OpenBLAS"], runs["reference"]
    for key in ("T", "Y", "native", "solve"):
        assert _rel(fast[key], ref[key]) <= 1e-12, key
    assert np.array_equal(fast["ngspice"], ref["ngspice"])  # ngspice does not use the BLAS
    for run in (fast, ref):  # and the engine agrees with it on either
        assert _rel(run["native"], run["ngspice"]) <= 1e-9
