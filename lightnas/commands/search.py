"""`lightnas search` / `train_enas.py`: a search from a YAML config and overrides, or the
resumption of one (`--resume trainings/<name>`); the run itself is lightnas.run.search."""

from __future__ import annotations

from lightnas.run.search import search


def main(argv: list[str]) -> int:
    """`lightnas search ...`; bad input raises a LightNASError (one line, exit 2 in the CLI)."""
    return search(argv)
