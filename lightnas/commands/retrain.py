"""`lightnas retrain trainings/<search>`: train a found architecture on its own, in a new folder
(`--resume` continues one); the run itself is lightnas.run.retrain."""

from __future__ import annotations

from lightnas.run.retrain import retrain


def main(argv: list[str]) -> int:
    """`lightnas retrain ...`; bad input raises a LightNASError (one line, exit 2 in the CLI)."""
    return retrain(argv)
