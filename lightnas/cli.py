"""Command line: `lightnas COMMAND ...`; `train_enas.py` is `lightnas search`.

Argument parsing and dispatch only. LightNAS's own errors (bad input) are reported as one line
with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

from lightnas import dashboard, evaluate, rank, retrain, runs
from lightnas.commands import space
from lightnas.config import ArgParser
from lightnas.errors import ConfigError, LightNASError, ReportedError


def sweeps_module() -> ModuleType:
    """lightnas.sweeps, whose Optuna, matplotlib and plotly are the optional `sweeps` extra:
    imported only by the commands that need it."""
    try:
        from lightnas import sweeps  # optional extra: imported where used
    except ImportError as err:
        raise ConfigError(
            f"sweeps need the `sweeps` extra ({err.name} is missing): "
            "pip install 'lightnas[sweeps]'"
        ) from None
    return sweeps


def sweep(argv: list[str]) -> int:
    """`lightnas sweep -c sweep.yml [--n-trials N] [--storage URL] [--workers N]`."""
    p = ArgParser(prog="lightnas sweep", description="Run or resume a sweep (an Optuna study).")
    p.add_argument("-c", "--config", required=True, help="sweep YAML file (see the README)")
    p.add_argument("--n-trials", type=int, help="trial budget (overrides the file's n_trials)")
    p.add_argument("--storage", help="SQLAlchemy URL of the study (default: SQLite in the folder)")
    p.add_argument("--workers", type=int, default=1, help="trials at once on this machine")
    args = p.parse_args(argv)
    return sweeps_module().sweep_command(args.config, args.n_trials, args.storage, args.workers)


def report(argv: list[str]) -> int:
    """`lightnas report SWEEP_FOLDER [--trial N] [--storage URL]`."""
    p = ArgParser(prog="lightnas report", description="Tables, Pareto front and files of a sweep.")
    p.add_argument("folder", help="the sweep folder, e.g. sweeps/sweep_quickstart")
    p.add_argument("--trial", type=int, help="the trial whose retrain command to print")
    p.add_argument("--storage", help="the study's storage URL (default: the sweep's own)")
    args = p.parse_args(argv)
    return sweeps_module().report_command(args.folder, args.trial, args.storage)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "search": runs.search,
    "retrain": retrain.main,
    "evaluate": evaluate.main,
    "rank": rank.main,
    "sweep": sweep,
    "report": report,
    "dashboard": dashboard.main,
    "space": space.main,
}


def run_command(command: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return command(argv)
    except LightNASError as err:
        if not isinstance(err, ReportedError):  # rank 0 of a distributed run reports it
            print(f"error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """`lightnas COMMAND ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: lightnas {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return run_command(COMMANDS[argv[0]], argv[1:])


def search_main(argv: list[str] | None = None) -> int:
    """`train_enas.py ...` = `lightnas search ...`."""
    return main(["search", *(sys.argv[1:] if argv is None else argv)])


def retrain_main(argv: list[str]) -> int:
    return main(["retrain", *argv])


def evaluate_main(argv: list[str]) -> int:
    return main(["evaluate", *argv])
