"""Run a sweep: every point of a spec through mapping, tile extraction and evaluation.

Results go to ``DIR``: ``points/<key>.json`` (one file per finished point, written
atomically), ``results.csv`` (all finished points, rewritten atomically after each
one), ``spec.toml`` and ``provenance.json`` (``"complete": true`` once every point
is done). Re-running the same spec into the same folder computes only the missing
points; a folder holding a different spec is refused unless ``force`` is given.

Public API
----------
run_sweep, default_cache_dir
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from .datasets import load_dataset
from .errors import CircuitsimError, ConfigError
from .evaluator import TileCache, map_network
from .mlp import load_or_train
from .provenance import provenance
from .spec import Point, SweepSpec, build_circuit_config, build_network_config


CALIBRATION_IMAGES = 512
"""Training images that set each tile's ADC range."""


def default_cache_dir() -> Path:
    """``$CIRCUITSIM_CACHE``, else ``$XDG_CACHE_HOME/circuitsim``, else ``~/.cache/circuitsim``."""
    if os.environ.get("CIRCUITSIM_CACHE"):
        return Path(os.environ["CIRCUITSIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "circuitsim"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
    write_atomic(out / "spec.toml", spec.text)


class _Context:
    """Datasets, networks and tiles shared by the points of one sweep."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.tiles = TileCache(cache_dir / "tiles")
        self._datasets, self._networks = {}, {}

    def dataset(self, config: dict):
        key = json.dumps(config["dataset"], sort_keys=True)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(**config["dataset"])
        return self._datasets[key]

    def network(self, config: dict):
        data = self.dataset(config)
        key = json.dumps([config["dataset"], config["network"]], sort_keys=True)
        if key not in self._networks:
            net = load_or_train(data, build_network_config(config), self.cache_dir / "networks")
            self._networks[key] = (net, net.accuracy(data.x_test, data.y_test))
        return self._networks[key]


def _column(name: str) -> str:
    return name.split(".")[-1]


def run_point(point: Point, context: _Context) -> dict:
    """Evaluate one point; failures are recorded in ``status``/``error``, not raised."""
    row = {"point": point.index, **{_column(k): v for k, v in point.values.items()}}
    circuit = build_circuit_config(point.config)
    adc = circuit.adc
    row.update(dataset=point.config["dataset"].get("name", "mnist"), device=circuit.device.name,
               r_row=circuit.wires.r_row, r_col=circuit.wires.r_col, engine=circuit.engine,
               readout=circuit.readout, t_int=circuit.t_int if circuit.readout != "current" else 0.0,
               adc_kind=adc.kind if adc else "none", adc_bits=adc.bits if adc else 0)
    try:
        net, digital = context.network(point.config)
        data = context.dataset(point.config)
        mapped = map_network(net, point.partitions, circuit, context.tiles,
                             x_calibration=data.x_train[:CALIBRATION_IMAGES])
        start = time.perf_counter()
        accuracy = mapped.accuracy(data.x_test, data.y_test)
        seconds = time.perf_counter() - start
        analog = mapped.network.accuracy(data.x_test, data.y_test) if adc else accuracy
        row.update(accuracy=accuracy, analog_accuracy=analog, digital_accuracy=digital,
                   n_tiles=mapped.n_tiles, n_images=len(data.y_test),
                   conversions_per_inference=mapped.conversions_per_inference,
                   **mapped.energy_per_inference(data.x_test),
                   characterization_seconds=mapped.seconds, evaluation_seconds=seconds,
                   status="ok", error="")
    except CircuitsimError as exc:
        row.update(status="error", error=str(exc).splitlines()[0])
    return row


def _progress(total: int, done: int):
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=done, unit="point", file=sys.stderr)
    return None


def run_sweep(spec: SweepSpec, out: str | Path, cache_dir: str | Path | None = None,
              force: bool = False, log=print) -> pd.DataFrame:
    """Run every point of ``spec`` not yet in ``out``; return all results.

    Parameters
    ----------
    spec : SweepSpec
        A validated spec.
    out : str or Path
        Results folder.
    cache_dir : str or Path, optional
        Cache of trained networks and tile transfer matrices (:func:`default_cache_dir`).
    force : bool
        Replace results of a different spec in ``out``.
    log : callable
        Receives one line per finished point when no progress bar is shown.
    """
    out = Path(out)
    context = _Context(Path(cache_dir) if cache_dir else default_cache_dir())
    points = spec.points()
    for point in points:  # a missing dataset stops the sweep before anything is written
        context.dataset(point.config)
    _prepare(out, spec, force)
    rows, todo = {}, []
    for point in points:
        file = out / "points" / f"{point.key}.json"
        if file.is_file():
            rows[point.index] = json.loads(file.read_text())
        else:
            todo.append(point)
    meta = {"spec_title": spec.title, "points": len(points), **provenance()}
    bar = _progress(len(points), len(rows))
    try:
        for point in todo:
            row = run_point(point, context)
            write_atomic(out / "points" / f"{point.key}.json", json.dumps(row))
            rows[point.index] = row
            _write_results(out, rows, meta, complete=len(rows) == len(points))
            if bar is not None:
                bar.update()
                bar.set_postfix_str(f"{row['h_partitions']}/{row['v_partitions']} acc={row.get('accuracy', float('nan')):.3f}")
            else:
                log(f"[{len(rows)}/{len(points)}] h={row['h_partitions']} v={row['v_partitions']} "
                    f"status={row['status']} accuracy={row.get('accuracy', float('nan')):.4f}"
                    + (f" error={row['error']}" if row["status"] != "ok" else ""))
    finally:
        if bar is not None:
            bar.close()
    return _write_results(out, rows, meta, complete=len(rows) == len(points))


def _write_results(out: Path, rows: dict, meta: dict, complete: bool) -> pd.DataFrame:
    frame = pd.DataFrame([rows[k] for k in sorted(rows)])
    write_atomic(out / "results.csv", frame.to_csv(index=False))
    write_atomic(out / "provenance.json",
                 json.dumps({**meta, "finished_points": len(rows), "complete": complete}, indent=2))
    return frame
