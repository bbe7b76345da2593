"""The result of a run, as its training folder records it: the one reader behind everything that
shows it (the `done:` line, the dashboard's runs, run, compare and sweep pages, and through the
sweeps' objectives `lightnas report`).

A run rewrites best_architecture.json at every epoch end with the latest epoch's architecture (a
running search's result so far) and once more after the final selection with its winner, re-scored
with the final weights (lightnas.engine.Best, under "stats"). A folder before its first epoch end
has no result; a best_architecture.json of an older version, which has no costs, gets them from
final_selection.json or from its epoch's line in metrics.jsonl; a folder without the file at all,
from metrics.jsonl's last epoch (the engine's pick at that point).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lightnas.engine.records import FINAL_SELECTION, Best
from lightnas.layout import TrainingFolder
from lightnas.runtime.fileio import read_json
from lightnas.scoring.cost_metrics import COSTS

FIELDS = {f.name for f in dataclasses.fields(Best)}


def read_result(folder: TrainingFolder) -> Best | None:
    """The run's result from its files; None before any epoch ended."""
    best, final = read_json(folder.best_architecture), read_json(folder.final_selection)
    return result_from(best, read_rows(folder.metrics), final)


def result_from(
    best: Mapping, rows: Sequence[Mapping], final: Mapping | None = None
) -> Best | None:
    """The result from the parsed best_architecture.json, metrics.jsonl rows and
    final_selection.json (the dashboard passes its cached reads)."""
    result = from_stats(best.get("stats"))
    if result is None:
        return latest_epoch(rows)
    if not result.costs:
        result = with_costs(result, rows, final or {})
    return result


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def from_stats(stats: object) -> Best | None:
    """best_architecture.json's "stats"; None when missing or malformed."""
    if not isinstance(stats, Mapping) or not isinstance(stats.get("epoch"), int):
        return None
    if not is_number(stats.get("val_acc")) or not isinstance(stats.get("architecture"), Mapping):
        return None
    known = {k: v for k, v in stats.items() if k in FIELDS}
    known.setdefault("reward", None)
    return Best(**known)


def row_costs(row: Mapping, label: str | None = None) -> dict[str, float]:
    """The additive costs of a metrics row's architecture (of `label`'s, when the row has
    them per validated label)."""
    source = (row.get("validated_costs") or {}).get(label) if label else None
    source = source if isinstance(source, Mapping) else row
    return {k: source[k] for k in COSTS.names() if COSTS[k].additive and is_number(source.get(k))}


def latest_epoch(rows: Sequence[Mapping]) -> Best | None:
    """metrics.jsonl's last epoch as the pick (what the engine holds until the final selection)."""
    usable = [r for r in rows if isinstance(r.get("epoch"), int) and is_number(r.get("val_acc"))]
    if not usable:
        return None
    row = usable[-1]
    return Best(
        row["epoch"],
        dict(row.get("architecture") or {}),
        row["val_acc"],
        row.get("reward"),
        label=row.get("chosen"),
        val_loss=row.get("val_loss"),
        cost=row.get("cost"),
        costs=row_costs(row),
    )


def with_costs(result: Best, rows: Sequence[Mapping], final: Mapping) -> Best:
    """An older file's result with the costs of its architecture: the final selection's
    candidate, else its epoch's validated architecture of that architecture."""
    for candidate in final.get("candidates") or []:
        if isinstance(candidate, Mapping) and candidate.get("architecture") == result.architecture:
            return dataclasses.replace(result, costs=dict(candidate.get("costs") or {}))
    for row in rows:
        if row.get("epoch") != result.epoch:
            continue
        for label, costs in (row.get("validated_costs") or {}).items():
            if isinstance(costs, Mapping) and costs.get("architecture") == result.architecture:
                return dataclasses.replace(result, costs=row_costs(row, label))
        if row.get("architecture") == result.architecture:
            return dataclasses.replace(result, costs=row_costs(row))
    return result


def describe_result(result: Best) -> str:
    """One line: which architecture, how it was selected, its accuracies and OPs."""
    scores = [f"val acc {result.val_acc:.4f}"]
    if result.test_acc is not None:
        scores.append(f"test acc {result.test_acc:.4f}")
    if "ops" in result.costs:
        scores.append(f"OPs {result.costs['ops']:.4g}")
    return f"architecture of epoch {result.epoch} ({result.selected_by}: {', '.join(scores)})"


def is_final(result: Best) -> bool:
    """Whether the result is the final selection's (not a search's latest epoch so far)."""
    return result.selected_by == FINAL_SELECTION


# ---- reading the files ---------------------------------------------------------------------------
def read_rows(path: Path) -> list[dict]:
    """metrics.jsonl's rows; a line being written (not yet complete JSON) is left out."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and "epoch" in row:
                    rows.append(row)
    except (OSError, UnicodeDecodeError):
        return []
    return rows
