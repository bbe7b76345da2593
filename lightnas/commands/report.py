"""`lightnas report SWEEP_FOLDER`: the tables, Pareto front and files of a sweep
(lightnas.sweeps.results)."""

from __future__ import annotations

from lightnas.config import ArgParser
from lightnas.sweeps import report_command


def main(argv: list[str]) -> int:
    """`lightnas report SWEEP_FOLDER [--trial N] [--storage URL]`."""
    p = ArgParser(prog="lightnas report", description="Tables, Pareto front and files of a sweep.")
    p.add_argument("folder", help="the sweep folder, e.g. sweeps/sweep_quickstart")
    p.add_argument("--trial", type=int, help="the trial whose retrain command to print")
    p.add_argument("--storage", help="the study's storage URL (default: the sweep's own)")
    args = p.parse_args(argv)
    return report_command(args.folder, args.trial, args.storage)
