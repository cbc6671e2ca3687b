"""Run a sweep: every point of a spec through mapping, tile extraction and evaluation.

Results go to ``DIR``: ``points/<key>.json`` (one file per finished point, written
atomically; a configuration failure also keeps its ngspice deck as ``points/<key>.cir``),
``results.csv`` and ``results.parquet`` (all finished points, rewritten atomically now
and then — the time spent on them stays a fixed fraction of the run — and at the end;
with ``[sweep] seeds = N`` one point file per point and seed, a ``seeds.csv`` of every
run and a ``results.csv`` with the mean, std and 95 % interval over the seeds:
:mod:`circuitsim.study.monte_carlo`), ``spec.toml`` and ``provenance.json``
(``"complete": true`` once every point is done; ``"computed"``: runs computed by the last run).

One run at a time writes a folder (:class:`~circuitsim.study.lock.FolderLock`).
Re-running the same spec into the same folder computes only the missing points, so
a sweep stopped by Ctrl-C or ``kill -9`` loses no finished point; a damaged point file
is reported and computed again; ``retry_failed`` computes failed points again. A folder
holding a different spec is refused unless ``force`` is given, which removes only the
files a sweep wrote. A failure of the environment (:class:`EnvironmentFailure`: no
simulator, a folder not writable, disk full, memory) stops the run and is never stored.

Points run in this process, in local worker processes or on a Dask cluster
(:mod:`circuitsim.study.workers`); networks are trained here before any point is sent
out, and this process alone writes the results folder.

Public API
----------
run_sweep, sweep_session, read_results
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, EnvironmentFailure
from .lock import FolderLock
from .points import PointContext, column_name
from .monte_carlo import summarize_seeds
from .provenance import provenance
from .network_spec import check_dataset
from .spec import MAX_POINTS, Point, SweepSpec
from .storage import TEMP_PREFIX, default_cache_dir, read_point_file, remove_own_files, write_atomic
from .workers import Runner

_log = logging.getLogger("circuitsim")


def _check_out(out) -> Path:
    if str(out).strip() == "":
        raise ConfigError("--out is empty; give the results folder, e.g. --out results/run1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another --out")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{parent} is a file, so {out} cannot be a folder; choose another --out")
    return out


def _points_folder(out: Path) -> Path:
    """``out/points``, refused when it is a symbolic link or not a folder: point files go only into
    the results folder's own ``points/`` (and ``--force`` deletes only there)."""
    points = out / "points"
    if points.is_symlink() or (points.exists() and not points.is_dir()):
        raise ConfigError(f"{points} is {'a symbolic link' if points.is_symlink() else 'not a folder'}: point files "
                          "are written only into the results folder's own points/ folder; move it away "
                          "or choose another --out")
    return points


def _prepare(out: Path, spec: SweepSpec, force: bool) -> None:
    _points_folder(out)
    previous = out / "spec.toml"
    if previous.is_file() and previous.read_bytes() != spec.text.encode():  # bytes: a damaged file is another spec
        if not force:
            raise ConfigError(f"{out} holds results of a different spec; choose another --out or pass --force")
        kept = remove_own_files(out)
        if kept:
            _log.warning(f"warning: --force kept {len(kept)} file(s) circuitsim did not write in {out / 'points'}")
    for leftover in [*out.glob(TEMP_PREFIX + "*"), *(out / "points").glob(TEMP_PREFIX + "*")]:
        leftover.unlink(missing_ok=True)  # from a sweep killed while writing
    if not (out / "points").is_dir():
        (out / "points").mkdir(parents=True)
    if not previous.is_file() or previous.read_bytes() != spec.text.encode():
        write_atomic(previous, spec.text)


def _progress(total: int, done: int):
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=done, unit="point", file=sys.stderr)
    return None


def run_sweep(spec: SweepSpec, out: str | Path, cache_dir: str | Path | None = None,
              force: bool = False, log=print, workers: int = 1,
              scheduler: str | None = None, retry_failed: bool = False, yes: bool = False) -> pd.DataFrame:
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
        Replace results of a different spec in ``out`` (only files a sweep wrote are removed).
    log : callable
        Receives one line per finished point when no progress bar is shown.
    workers : int
        Local worker processes computing points (1: points run in this process).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``) whose workers compute the points.
    retry_failed : bool
        Compute again the points stored with ``status = "error"``.
    yes : bool
        Run a grid of more than :data:`MAX_POINTS` points.

    Raises
    ------
    ConfigError
        Bad input (before the results folder is touched).
    EnvironmentFailure
        Another run holds ``out``, or the machine failed (the finished points are kept).
    """
    runs = spec.n_points * (spec.seeds or 1)
    if runs > MAX_POINTS and not yes:
        raise ConfigError(f"the spec has {runs} {'runs (points × seeds)' if spec.seeds else 'points'} "
                          f"(more than {MAX_POINTS}); pass --yes (yes=True) to run them all, or sweep fewer values")
    with sweep_session(spec, out, cache_dir, force, log, workers, scheduler, retry_failed) as run:
        return run(None)


@contextmanager
def sweep_session(spec: SweepSpec, out: str | Path, cache_dir: str | Path | None = None, force: bool = False,
                  log=print, workers: int = 1, scheduler: str | None = None,
                  retry_failed: bool = False) -> Iterator[Callable[[Collection[int] | None], pd.DataFrame]]:
    """Hold ``out`` for a run of ``spec``'s points chosen as it goes (:func:`run_sweep` runs them all).

    Checks the input, takes the folder's lock, prepares it and yields ``run(indices)``: it
    computes the points of those indices (all with None) not yet in ``out``, exactly as a sweep
    does (cache, point files, tables, workers), and returns every finished point of the folder.
    A design search (:mod:`circuitsim.study.search`) calls it once per batch of designs.
    Parameters as :func:`run_sweep`'s.
    """
    _require_parquet()
    out = _check_out(out)
    context = PointContext(Path(cache_dir or default_cache_dir()).resolve())
    points = spec.points()
    for point in points:  # a missing dataset or a layer mismatch stops the sweep before anything is written
        check_dataset(point.config, context.dataset(point.config))
    with Runner(context.cache_dir, workers, scheduler) as runner:  # so does a bad --workers/--scheduler
        with FolderLock(out):
            _prepare(out, spec, force)
            computed = [0]  # runs computed by this session (provenance's "computed")

            def run(indices: Collection[int] | None) -> pd.DataFrame:
                frame, computed[0] = _run(spec, points, out, context, runner, log, retry_failed,
                                          None if indices is None else set(indices), computed[0])
                return frame

            yield run


def _task(point_or_row, monte_carlo: bool):
    """A run's identity: its point's index, with its device seed in a Monte Carlo sweep."""
    if isinstance(point_or_row, Point):
        index, seed = point_or_row.index, point_or_row.values.get("seed")
    else:
        index, seed = point_or_row["point"], point_or_row.get("seed")
    return (index, seed) if monte_carlo else index


def _run(spec: SweepSpec, points: list[Point], out: Path, context: PointContext, runner, log,
         retry_failed: bool, only: set[int] | None = None, computed: int = 0) -> tuple[pd.DataFrame, int]:
    """Compute the points of ``only`` (all with None) not yet in ``out``; every finished point of the
    folder, and the runs computed so far (``computed`` before)."""
    rows, todo, mc = {}, [], bool(spec.seeds)
    for point in points:
        file = out / "points" / f"{point.key}.json"
        row = None
        if file.is_file():
            row = read_point_file(file, point.index, {column_name(k): v for k, v in point.values.items()})
        if row is not None and not (retry_failed and row["status"] != "ok"):
            rows[_task(point, mc)] = row
        elif only is None or point.index in only:
            todo.append(point)
        elif row is not None:  # a failed point the caller did not choose: kept as it is
            rows[_task(point, mc)] = row
    for point in todo:  # train here, once: workers only load the networks from the cache
        context.train(point.config)
    by_task = {_task(point, mc): point for point in todo}
    meta = {"spec_title": spec.title, "points": len(points),
            **({"seeds": spec.seeds, "runs": len(points), "points": len(points) // spec.seeds} if spec.seeds else {}),
            "swept": list(dict.fromkeys([column_name(name) for name in spec.grid]
                                        + [column_name(f"compensation.{k}") for e in spec.compensations for k in e]))
            + ["h_partitions", "v_partitions"],
            "workers": runner.workers, "scheduler": runner.scheduler, **provenance()}
    models = {p.config["network"]["onnx"]: p.model_sha256 for p in points if p.model_sha256}
    if models:  # the content of every model file the points read (a model replaced at its path is new points)
        meta["model_sha256"] = models
    tables = _Tables(out, meta)
    tables.computed = computed
    if not todo and tables.current(rows):
        return tables.frame(rows), computed  # nothing to do, nothing rewritten (a read-only folder is fine)
    tables.write_provenance(rows)  # what is being run, before any new point
    bar = _progress(len(points), len(rows)) if only is None else None
    try:
        with closing(runner.map(todo, context)) as results:
            for row in results:
                point = by_task[_task(row, mc)]
                deck = row.pop("deck", "")
                points_folder = _points_folder(out)  # not made a link to elsewhere while the sweep ran
                if deck:
                    write_atomic(points_folder / f"{point.key}.cir", deck)
                    row["deck_file"] = f"points/{point.key}.cir"
                write_atomic(points_folder / f"{point.key}.json", json.dumps(row))
                rows[_task(row, mc)] = row
                tables.computed += 1
                tables.maybe_write(rows)
                if bar is not None:
                    bar.update()
                    bar.set_postfix_str(f"{row['h_partitions']}/{row['v_partitions']} "
                                        f"acc={row.get('accuracy', float('nan')):.3f}")
                else:
                    log(f"[{len(rows)}/{len(points)}] h={row['h_partitions']} v={row['v_partitions']} "
                        + (f"seed={row['seed']} " if "seed" in row else "")
                        + f"status={row['status']} accuracy={row.get('accuracy', float('nan')):.4f}"
                        + (f" error={row['error']}" if row["status"] != "ok" else ""))
    except BaseException:
        if tables.computed:
            try:  # keep the tables in step with the point files when the folder still takes writes
                tables.write(rows)
            except EnvironmentFailure:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
    return tables.write(rows), tables.computed


class _Tables:
    """results.csv, results.parquet and provenance.json of a run.

    The tables are rewritten after a point only when the time since the last rewrite is at
    least ``SPACING`` times what that rewrite took, so they cost a bounded fraction of the
    run (linear in the points) however many points there are.
    """

    SPACING = 10.0

    def __init__(self, out: Path, meta: dict):
        self.out, self.meta, self.computed = out, meta, 0
        self._last, self._cost = time.perf_counter(), 0.0

    def current(self, rows: dict) -> bool:
        """Whether the folder's tables and provenance already record ``rows``, complete."""
        finished = _finished(rows, self.meta)
        try:
            old = _read_json(self.out / "provenance.json")
        except (OSError, ValueError, RecursionError):
            return False
        return (isinstance(old, dict) and old.get("complete") is True and old.get("finished_points") == finished
                and finished == self.meta["points"] and _read_table(self.out / "results.csv") is not None
                and _read_table(self.out / "results.parquet") is not None)

    def frame(self, rows: dict) -> pd.DataFrame:
        """One row per point (Monte Carlo: the summary over its seeds)."""
        frame = self.runs(rows)
        return summarize_seeds(frame) if self.meta.get("seeds") else frame

    def runs(self, rows: dict) -> pd.DataFrame:
        """One row per run (per point, and per seed in a Monte Carlo sweep)."""
        return pd.DataFrame([rows[k] for k in sorted(rows)])

    def maybe_write(self, rows: dict) -> None:
        now = time.perf_counter()
        if now - self._last >= self.SPACING * self._cost:
            self.write(rows)
        else:
            self.write_provenance(rows)

    def write(self, rows: dict) -> pd.DataFrame:
        start = time.perf_counter()
        frame = self.runs(rows)
        if self.meta.get("seeds"):  # Monte Carlo: every run in seeds.csv, one row per point in results
            write_atomic(self.out / "seeds.csv", frame.to_csv(index=False))
            frame = summarize_seeds(frame)
        write_atomic(self.out / "results.csv", frame.to_csv(index=False))
        write_atomic(self.out / "results.parquet", _parquet_bytes(frame))
        self.write_provenance(rows)
        self._last = time.perf_counter()
        self._cost = self._last - start
        return frame

    def write_provenance(self, rows: dict) -> None:
        finished = _finished(rows, self.meta)
        write_atomic(self.out / "provenance.json",
                     json.dumps({**self.meta, "finished_points": finished, "computed": self.computed,
                                 "complete": finished == self.meta["points"]}, indent=2))


def _require_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("writing results.parquet needs pyarrow; install it with pip install pyarrow") from None


def _finished(rows: dict, meta: dict) -> int:
    """Points whose every run (every seed) is done."""
    if not meta.get("seeds"):
        return len(rows)
    counts = pd.Series([point for point, _ in rows], dtype=int).value_counts()
    return int((counts >= meta["seeds"]).sum())


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
    meta = _read_json(out / "provenance.json")
    meta = meta if isinstance(meta, dict) else {}
    frame = None
    for name in ("results.parquet", "results.csv"):
        frame = _read_table(out / name, warn=True)
        if frame is not None:
            break
    files = sorted((out / "points").glob("*.json")) if (out / "points").is_dir() else []
    if len(files) > (0 if frame is None else len(frame) * (meta.get("seeds") or 1)):
        rows = [row for row in map(_read_json, files) if isinstance(row, dict) and isinstance(row.get("point"), int)]
        if len(rows) > (0 if frame is None else len(frame) * (meta.get("seeds") or 1)):  # damaged files left out
            frame = pd.DataFrame(sorted(rows, key=lambda row: (row["point"], row.get("seed", -1))))
            if "seed" in frame.columns:  # a Monte Carlo sweep: one row per point and seed
                frame = summarize_seeds(frame)
    if frame is None:
        raise ConfigError(f"{out} holds no sweep results (no results.parquet, results.csv or points/); "
                          "run circuitsim sweep SPEC --out DIR first")
    if meta.get("points"):
        meta = {**meta, "finished_points": len(frame), "complete": len(frame) == meta["points"]}
    return frame, meta


def _read_table(file: Path, warn: bool = False) -> pd.DataFrame | None:
    """The table ``file`` (``.parquet`` or ``.csv``), or None when it is missing or damaged
    (one warning line with ``warn``; the same sweep command writes it again)."""
    if not file.is_file():
        return None
    try:
        if file.suffix == ".parquet":
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(file, dtype={"h_partitions": str, "v_partitions": str})
        if "point" not in frame.columns and "status" not in frame.columns:
            raise ValueError("no point or status column")
    except (OSError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, RecursionError,
            MemoryError) as exc:  # pyarrow's and pandas' parse errors are ValueError/OSError subclasses
        if warn:
            _log.warning(f"warning: {file} is damaged ({type(exc).__name__}); reading the point files instead "
                         "(the same circuitsim sweep command writes it again)")
        return None
    return frame


def _read_json(file: Path):
    if not file.is_file():  # missing, or a FIFO or device that would block or never end
        return None
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
