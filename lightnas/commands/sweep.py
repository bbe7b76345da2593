"""`lightnas sweep -c sweep.yml`: run or resume a sweep, an Optuna study of runs
(lightnas.sweeps)."""

from __future__ import annotations

from lightnas.config import ArgParser
from lightnas.sweeps import sweep_command


def main(argv: list[str]) -> int:
    """`lightnas sweep -c sweep.yml [--n-trials N] [--storage URL] [--workers N]`."""
    p = ArgParser(prog="lightnas sweep", description="Run or resume a sweep (an Optuna study).")
    p.add_argument("-c", "--config", required=True, help="sweep YAML file (see the README)")
    p.add_argument("--n-trials", type=int, help="trial budget (overrides the file's n_trials)")
    p.add_argument("--storage", help="SQLAlchemy URL of the study (default: SQLite in the folder)")
    p.add_argument("--workers", type=int, default=1, help="trials at once on this machine")
    args = p.parse_args(argv)
    return sweep_command(args.config, args.n_trials, args.storage, args.workers)
