"""The design search on the command line: ``circuitsim search`` and ``circuitsim results --best``.

Public API
----------
add_search_parsers, search_command, check_best_options, best_answer
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError


def add_search_parsers(sub, results, sweep_options, presets: str) -> None:
    """Add ``--best``/``--accuracy-drop`` to the ``results`` parser and the ``search`` command to ``sub``
    (``sweep_options(parser, required)`` adds the options a search shares with a sweep)."""
    results.add_argument("--best", choices=["energy", "latency", "area"], default=None,
                         help="also print the point of least energy (latency, area) whose accuracy is within "
                              "--accuracy-drop of its digital accuracy (exit status 1 when none is)")
    results.add_argument("--accuracy-drop", type=float, default=None, metavar="POINTS",
                         help="percentage points below the digital (float) accuracy allowed with --best "
                              "(default 1)")
    se = sub.add_parser("search", help="search a spec's grid for the Pareto front of accuracy and energy, "
                                       "latency, area (DIR/pareto.csv, DIR/pareto.png)", epilog=presets)
    se.add_argument("spec", metavar="SPEC", help="sweep specification (TOML); its grid axes are the design space")
    se.add_argument("--objectives", default="accuracy,energy", metavar="LIST",
                    help="accuracy and one or more of energy, latency, area, comma-separated")
    se.add_argument("--trials", type=int, default=None, metavar="N",
                    help="designs to evaluate: the whole grid when N covers it, else NSGA-II (Optuna) "
                         "picks N (default: the grid up to 100 points, else 100)")
    se.add_argument("--accuracy-drop", type=float, default=None, metavar="POINTS",
                    help="also print the least energy (latency, area) within POINTS percentage points of the "
                         "digital accuracy")
    se.add_argument("--seed", type=int, default=0, help="seed of the NSGA-II sampler (default 0)")
    sweep_options(se, required=True)


def search_command(args, print_summary) -> int:
    """``circuitsim search``: the search, its front printed (``print_summary(frame, swept)``),
    ``pareto.csv`` and the figure."""
    from .plots.search import plot_search
    from .study.search import parse_objectives, run_search
    from .study.spec import load_spec
    from .study.sweep import read_results

    objectives = parse_objectives(args.objectives)  # bad options before the spec is read
    spec = load_spec(args.spec, smoke=args.smoke)  # the grid may be large: the budget is --trials
    result = run_search(spec, args.out, objectives, trials=args.trials, accuracy_drop=args.accuracy_drop,
                        cache_dir=args.cache, force=args.force, workers=args.workers, scheduler=args.scheduler,
                        retry_failed=args.retry_failed, seed=args.seed, yes=args.yes,
                        log=lambda line: print(line, flush=True))
    print_summary(result.front, read_results(args.out)[1].get("swept", ()))
    for file in [*result.files, *plot_search(args.out)]:
        print(file)
    return 0 if (result.results["status"] == "ok").all() else 1


def check_best_options(args) -> None:
    """``results``' ``--best``/``--accuracy-drop``, checked before the folder is read."""
    if args.accuracy_drop is not None and args.best is None:
        raise ConfigError("--accuracy-drop needs --best energy|latency|area (the cost to minimise)")
    if args.best is not None:
        from .study.search import check_accuracy_drop

        check_accuracy_drop(_drop(args))


def _drop(args) -> float:
    return 1.0 if args.accuracy_drop is None else args.accuracy_drop


def best_answer(args, frame, swept: Sequence[str]) -> int:
    """Print the answer of ``results --best``; 0 when a point qualifies, else 1."""
    from .study.search import best_within, describe

    print(describe(frame, args.best, _drop(args), swept))
    return 0 if best_within(frame, args.best, _drop(args)) is not None else 1
