"""Two or more runs side by side: their curves overlaid and their results' architectures."""

from __future__ import annotations

from collections.abc import Sequence

from lightnas.dashboard.folders import rows_of
from lightnas.dashboard.listing import RunSummary
from lightnas.dashboard.rundata import result_data
from lightnas.layout import TrainingFolder

# (chart id, title, row key)
COMPARED = (
    ("val_acc", "Validation accuracy", "val_acc"),
    ("reward", "Reward", "reward"),
    ("entropy", "Controller entropy", "controller_entropy"),
    ("ops", "OPs of the epoch's architecture", "ops"),
)


def overlaid(runs: Sequence[tuple[RunSummary, list[dict]]]) -> list[dict]:
    """One chart per compared metric with one trace per run."""
    charts = []
    for chart_id, title, key in COMPARED:
        traces = []
        for summary, rows in runs:
            present = [r for r in rows if r.get(key) is not None]
            x, y = [r["epoch"] for r in present], [r[key] for r in present]
            traces.append({"name": summary.path, "x": x, "y": y})
        charts.append({"id": f"compare-{chart_id}", "title": title, "yaxis": key, "traces": traces})
    return charts


def choices_table(architectures: Sequence[dict]) -> list[dict]:
    """Decision points (in order of first appearance) with each run's choice, and whether the
    runs differ there."""
    points: dict[str, None] = {}
    for arch in architectures:
        points.update(dict.fromkeys(arch))
    table = []
    for point in points:
        choices = [arch.get(point) for arch in architectures]
        table.append({"point": point, "choices": choices, "differs": len(set(choices)) > 1})
    return table


def compare_data(folders: Sequence[tuple[RunSummary, TrainingFolder]]) -> dict:
    """The compare page's data for runs given as (summary, folder): curves, each run's result
    (lightnas.outputs.result) and the decision points where their results differ."""
    rows = [(s, rows_of(f)) for s, f in folders]
    results = [result_data(f) for _, f in folders]
    archs = [(r or {}).get("architecture") or {} for r in results]
    return {
        "runs": [
            {"summary": s.as_dict(), "result": r}
            for (s, _), r in zip(folders, results, strict=True)
        ],
        "charts": overlaid(rows),
        "choices": choices_table(archs),
    }
