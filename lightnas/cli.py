"""Command line: `lightnas COMMAND ...`; `train_enas.py` is `lightnas search`.

Dispatch only: each command parses its own arguments (lightnas.commands). LightNAS's own errors
(bad input) are reported as one line with exit code 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from lightnas.commands import (
    dashboard,
    deploy,
    evaluate,
    latency_table,
    rank,
    report,
    retrain,
    search,
    space,
    sweep,
)
from lightnas.errors import LightNASError, ReportedError

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "search": search.main,
    "retrain": retrain.main,
    "evaluate": evaluate.main,
    "rank": rank.main,
    "sweep": sweep.main,
    "report": report.main,
    "dashboard": dashboard.main,
    "deploy": deploy.main,
    "latency-table": latency_table.main,
    "space": space.main,
}


# one line per command for `lightnas --help` (each command's own --help has its options)
SUMMARIES = {
    "search": "run or resume a search (the same as train_enas.py)",
    "retrain": "train a search's result (or another architecture) on its own",
    "evaluate": "accuracy, costs and latency of a trained child, beside the base network",
    "rank": "how well a search's shared weights rank architectures trained alone",
    "sweep": "run or resume many searches or retrains as one Optuna study",
    "report": "tables, Pareto front, plots and the retrain command of a sweep",
    "dashboard": "the browser dashboard over training folders and sweeps",
    "deploy": "a trained child as a Larq Compute Engine .tflite: 1-bit convs run as binary ops",
    "latency-table": "the per-op latency table of a search space, measured on this machine",
    "space": "check a search-space file, print its decision points and size, draw its graph",
}
HELP = ("-h", "--help")


def usage() -> str:
    """`lightnas --help`: the usage line and every command with one line."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {SUMMARIES[name]}" for name in COMMANDS]
    return "\n".join(
        [
            "usage: lightnas COMMAND [options]   (lightnas COMMAND --help: its options)",
            "",
            "commands:",
            *lines,
        ]
    )


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
    if argv and argv[0] in HELP:
        print(usage())
        return 0
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
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
