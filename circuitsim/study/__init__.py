"""Studies: sweep specifications, sweeps and their workers, whole-circuit validation.

A study is a TOML spec (dataset, network, device, wires, circuit, ADC and the grids
to sweep); every point runs through :mod:`circuitsim.network` and its results land,
point by point and resumably, in a results folder with their provenance.

Modules
-------
spec
    Parsing and checking sweep specs; ``SweepSpec`` and its ``Point`` s.
compensation_spec
    The ``[compensation]`` section and ``[sweep] compensation`` entries.
points
    One point: the shared context of a sweep and ``run_point``.
workers
    Where points run: this process, local worker processes, a Dask cluster.
sweep
    ``run_sweep`` (the results folder), ``sweep_session`` (points chosen as a run goes) and
    ``read_results``.
search
    ``run_search``: a design search over a spec's grid (every point or NSGA-II), its Pareto front
    and the least cost within an accuracy drop.
storage
    Atomic writes and the cache folder.
provenance
    Versions, commit and solver that produced a result.
whole_circuit
    Whole-layer and whole-network ngspice decks with analog neurons.
spiking_circuit
    A whole spiking network's transient (tiles and analog LIF neurons) in one ngspice deck.
validation
    The whole circuit in ngspice against the evaluator, point by point.

Public API
----------
SweepSpec, Point, load_spec, parse_spec, run_sweep, read_results, run_search, Runner,
default_cache_dir, provenance, FullCircuitConfig, simulate_network, run_validation
"""

from .provenance import provenance
from .spec import Point, SweepSpec, load_spec, parse_spec
from .storage import default_cache_dir
from .search import run_search
from .sweep import read_results, run_sweep
from .validation import run_validation
from .whole_circuit import FullCircuitConfig, simulate_network
from .workers import Runner

__all__ = [
    "SweepSpec", "Point", "load_spec", "parse_spec", "run_sweep", "read_results", "run_search", "Runner",
    "default_cache_dir", "provenance", "FullCircuitConfig", "simulate_network", "run_validation",
]
