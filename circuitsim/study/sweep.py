"""Run a sweep: every point of a spec through mapping, tile extraction and evaluation.

Results go to ``DIR``: ``points/<key>.json`` (one file per finished point, written
atomically), ``results.csv`` and ``results.parquet`` (all finished points, rewritten
atomically after each one; with ``[sweep] seeds = N`` one file per point and seed, a
``seeds.csv`` of every run and a ``results.csv`` with the mean, std and 95 % interval
over the seeds: :mod:`circuitsim.study.monte_carlo`), ``spec.toml`` and ``provenance.json`` (``"complete":
true`` once every point is done; ``"computed"``: points computed by the last run).
Re-running the same spec into the same folder computes only the missing points, so
a sweep stopped by Ctrl-C or ``kill -9`` loses no finished point; a folder holding
a different spec is refused unless ``force`` is given.

Points run in this process, in local worker processes or on a Dask cluster
(:mod:`circuitsim.study.workers`); networks are trained here before any point is sent
out, and this process alone writes the results folder.

Public API
----------
run_sweep, read_results
"""

from __future__ import annotations

import json
import shutil
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd

from ..errors import CircuitsimError, ConfigError
from .points import PointContext, column_name
from .monte_carlo import summarize_seeds
from .provenance import provenance
from .spec import Point, SweepSpec
from .storage import TEMP_PREFIX, default_cache_dir, write_atomic
from .workers import Runner


def _prepare(out: Path, spec: SweepSpec, force: bool) -> None:
    previous = out / "spec.toml"
    if previous.is_file() and previous.read_text() != spec.text:
        if not force:
            raise ConfigError(f"{out} holds results of a different spec; choose another --out or pass --force")
        shutil.rmtree(out / "points", ignore_errors=True)
        for name in ("results.csv", "results.parquet", "provenance.json"):
            (out / name).unlink(missing_ok=True)
    elif out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    (out / "points").mkdir(parents=True, exist_ok=True)
    for leftover in [*out.glob(TEMP_PREFIX + "*"), *(out / "points").glob(TEMP_PREFIX + "*")]:
        leftover.unlink(missing_ok=True)  # from a sweep killed while writing
    write_atomic(out / "spec.toml", spec.text)


def _progress(total: int, done: int):
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=done, unit="point", file=sys.stderr)
    return None


def run_sweep(spec: SweepSpec, out: str | Path, cache_dir: str | Path | None = None,
              force: bool = False, log=print, workers: int = 1,
              scheduler: str | None = None) -> pd.DataFrame:
    """Run every point of ``spec`` not yet in ``out``; return all results.

    Parameters
    ----------
    spec : SweepSpec
        A validated spec.
    out : str or Path
        Results folder.
    cache_dir : str or Path, optional
        Cache of trained networks and tile transfer matrices (:func:`default_cache_dir`).
        With ``scheduler``, a path every Dask worker can reach.
    force : bool
        Replace results of a different spec in ``out``.
    log : callable
        Receives one line per finished point when no progress bar is shown.
    workers : int
        Local worker processes computing points (1: points run in this process).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``) whose workers compute the points.
    """
    _require_parquet()
    out = Path(out)
    context = PointContext(Path(cache_dir or default_cache_dir()).resolve())
    points = spec.points()
    for point in points:  # a missing dataset stops the sweep before anything is written
        context.dataset(point.config)
    with Runner(context.cache_dir, workers, scheduler) as runner:  # so does a bad --workers/--scheduler
        _prepare(out, spec, force)
        return _run(spec, points, out, context, runner, log)


def _task(point_or_row) -> tuple:
    """A run's identity: its point, and its seed in a Monte Carlo sweep."""
    if isinstance(point_or_row, Point):
        return point_or_row.index, point_or_row.values.get("seed")
    return point_or_row["point"], point_or_row.get("seed")


def _run(spec: SweepSpec, points: list[Point], out: Path, context: PointContext, runner, log) -> pd.DataFrame:
    rows, todo = {}, []
    for point in points:
        file = out / "points" / f"{point.key}.json"
        if file.is_file():
            rows[_task(point)] = json.loads(file.read_text())
        else:
            todo.append(point)
    for point in todo:  # train here, once: workers only load the networks from the cache
        try:
            context.network(point.config)
        except CircuitsimError:
            pass  # the point records the error
    by_task = {_task(point): point for point in todo}
    meta = {"spec_title": spec.title, "points": len(points),
            **({"seeds": spec.seeds, "runs": len(points), "points": len(points) // spec.seeds} if spec.seeds else {}),
            "swept": [column_name(name) for name in spec.grid] + ["h_partitions", "v_partitions"],
            "workers": runner.workers, "scheduler": runner.scheduler, **provenance()}
    computed = 0
    _write_provenance(out, meta, _finished(rows, meta), computed)  # what is being run, before any new point
    bar = _progress(len(points), len(rows))
    try:
        with closing(runner.map(todo, context)) as results:
            for row in results:
                write_atomic(out / "points" / f"{by_task[_task(row)].key}.json", json.dumps(row))
                rows[_task(row)] = row
                computed += 1
                _write_results(out, rows, meta, computed)
                if bar is not None:
                    bar.update()
                    bar.set_postfix_str(f"{row['h_partitions']}/{row['v_partitions']} "
                                        f"acc={row.get('accuracy', float('nan')):.3f}")
                else:
                    log(f"[{len(rows)}/{len(points)}] h={row['h_partitions']} v={row['v_partitions']} "
                        + (f"seed={row['seed']} " if "seed" in row else "")
                        + f"status={row['status']} accuracy={row.get('accuracy', float('nan')):.4f}"
                        + (f" error={row['error']}" if row["status"] != "ok" else ""))
    finally:
        if bar is not None:
            bar.close()
    return _write_results(out, rows, meta, computed)


def _require_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("writing results.parquet needs pyarrow; install it with pip install pyarrow") from None


def _write_results(out: Path, rows: dict, meta: dict, computed: int) -> pd.DataFrame:
    frame = pd.DataFrame([rows[k] for k in sorted(rows, key=lambda k: (k[0], -1 if k[1] is None else k[1]))])
    if meta.get("seeds"):  # Monte Carlo: every run in seeds.csv, one row per point in results
        write_atomic(out / "seeds.csv", frame.to_csv(index=False))
        frame = summarize_seeds(frame)
    write_atomic(out / "results.csv", frame.to_csv(index=False))
    write_atomic(out / "results.parquet", _parquet_bytes(frame))
    _write_provenance(out, meta, _finished(rows, meta), computed)
    return frame


def _finished(rows: dict, meta: dict) -> int:
    """Points whose every run (every seed) is done."""
    if not meta.get("seeds"):
        return len(rows)
    counts = pd.Series([point for point, _ in rows]).value_counts()
    return int((counts >= meta["seeds"]).sum())


def _write_provenance(out: Path, meta: dict, finished: int, computed: int) -> None:
    write_atomic(out / "provenance.json",
                 json.dumps({**meta, "finished_points": finished, "computed": computed,
                             "complete": finished == meta["points"]}, indent=2))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as Parquet; columns pyarrow cannot type (mixed values) are written as text."""
    try:
        return frame.to_parquet(index=False)
    except (TypeError, ValueError):  # pyarrow's ArrowTypeError / ArrowInvalid
        mixed = {c: frame[c].map(lambda v: v if isinstance(v, str) or v is None else json.dumps(v))
                 for c in frame.columns if frame[c].dtype == object}
        return frame.assign(**mixed).to_parquet(index=False)


def read_results(out: str | Path) -> tuple[pd.DataFrame, dict]:
    """The results table of a sweep folder and its provenance (empty when absent).

    Reads ``results.parquet``, else ``results.csv``, or the point files when they hold
    more points (a sweep killed between writing a point and the tables); raises
    :class:`ConfigError` when ``out`` holds no finished point.
    """
    out = Path(out)
    meta_file = out / "provenance.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    frame = None
    if (out / "results.parquet").is_file():
        frame = pd.read_parquet(out / "results.parquet")
    elif (out / "results.csv").is_file():
        frame = pd.read_csv(out / "results.csv", dtype={"h_partitions": str, "v_partitions": str})
    files = sorted((out / "points").glob("*.json")) if (out / "points").is_dir() else []
    if len(files) > (0 if frame is None else len(frame) * (meta.get("seeds") or 1)):
        rows = sorted((json.loads(file.read_text()) for file in files), key=lambda row: row["point"])
        frame = pd.DataFrame(rows)
        if "seed" in frame.columns:  # a Monte Carlo sweep: one row per point and seed
            frame = summarize_seeds(frame)
    if frame is None:
        raise ConfigError(f"{out} holds no sweep results (no results.parquet, results.csv or points/); "
                          "run circuitsim sweep SPEC --out DIR first")
    if meta.get("points"):
        meta = {**meta, "finished_points": len(frame), "complete": len(frame) == meta["points"]}
    return frame, meta
