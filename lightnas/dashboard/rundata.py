"""A run's page data: curves, the choice-probability heat map, the accuracy-vs-OPs scatter with
its Pareto front, the epochs' architectures, the log's last lines and the downloads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightnas.dashboard.folders import best_of, result_of, rows_of, tail
from lightnas.dashboard.listing import RunSummary
from lightnas.dashboard.paths import inside, relative_to_root
from lightnas.layout import TrainingFolder, epoch_of, inference_dir, trainables_dir
from lightnas.outputs.result import is_final

# (chart id, title, y axis, series: (row key, legend name)); val_acc_<label> keys are added
CHARTS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("accuracy", "Accuracy", "accuracy", (("train_acc", "train"), ("val_acc", "validation"))),
    (
        "reward",
        "Reward",
        "reward",
        (
            ("reward", "validation reward"),
            ("controller_reward", "controller reward"),
            ("controller_baseline", "baseline"),
        ),
    ),
    ("entropy", "Controller entropy", "entropy", (("controller_entropy", "entropy"),)),
    ("cost", "Cost of the epoch's architecture", "OPs", (("ops", "OPs"),)),
)
LOG_LINES = 40
EXPORT_SUFFIXES = {".pt2": "pt2", ".onnx": "ONNX", ".safetensors": "safetensors", ".json": "JSON"}
RUN_FILES = ("config", "best_architecture", "architecture", "evaluation", "metrics", "log")


def _series(rows: Sequence[dict], key: str) -> tuple[list[int], list[float | None]]:
    present = [r for r in rows if key in r]
    return [r["epoch"] for r in present], [r[key] for r in present]


def _labels(rows: Sequence[dict]) -> list[str]:
    """The validated labels (greedy, sampled, ...) in order of appearance."""
    labels: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith("val_acc_"):
                labels[key.removeprefix("val_acc_")] = None
    return list(labels)


def charts(rows: Sequence[dict]) -> list[dict]:
    """The curves, one Plotly-ready chart each: {id, title, yaxis, traces: [{name, x, y}]}."""
    out = []
    for chart_id, title, yaxis, series in CHARTS:
        keys = list(series)
        if chart_id == "accuracy":
            keys += [(f"val_acc_{label}", f"validation ({label})") for label in _labels(rows)]
        traces = []
        for key, name in keys:
            x, y = _series(rows, key)
            if any(v is not None for v in y):
                traces.append({"name": name, "x": x, "y": y})
        out.append({"id": chart_id, "title": title, "yaxis": yaxis, "traces": traces})
    return out


def heatmap(rows: Sequence[dict]) -> dict:
    """Choice probabilities over epochs: one line per (decision point, choice), one column per
    epoch; empty when the strategy has none (random, fixed)."""
    with_probs = [r for r in rows if r.get("probabilities")]
    lines: dict[tuple[str, str], None] = {}
    for row in with_probs:
        for point, probs in row["probabilities"].items():
            for choice in probs:
                lines[point, choice] = None
    z = [
        [r["probabilities"].get(point, {}).get(choice) for r in with_probs]
        for point, choice in lines
    ]
    return {
        "epochs": [r["epoch"] for r in with_probs],
        "labels": [f"{point}: {choice}" for point, choice in lines],
        "z": z,
    }


@dataclass(frozen=True)
class Point:
    """One validated architecture: its epoch, label, accuracy and costs."""

    epoch: int
    label: str
    val_acc: float
    ops: float
    model_bits: float | None
    architecture: dict

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def evaluated(rows: Sequence[dict]) -> list[Point]:
    """Every architecture validated in the run (rows of older runs: the chosen one only)."""
    points = []
    for row in rows:
        costs = row.get("validated_costs") or {row.get("chosen", ""): row}
        for label, c in costs.items():
            acc = row.get(f"val_acc_{label}", row.get("val_acc"))
            if acc is None or c.get("ops") is None:
                continue
            arch = c.get("architecture") or {}
            points.append(Point(row["epoch"], label, acc, c["ops"], c.get("model_bits"), arch))
    return points


def pareto_indices(points: Sequence[tuple[float, float]]) -> list[int]:
    """The indices of the (cost, accuracy) points no other point dominates (no costlier and no
    less accurate, better in one: Optuna's definition, so equal points are all on the front), by
    rising cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf  # the highest accuracy of the points before, identical ones excluded
    for position, i in enumerate(order):
        previous = points[order[position - 1]] if position else None
        if previous is not None and previous != points[i]:
            best = max(best, previous[1])
        if points[i][1] > best:
            front.append(i)
    return front


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) pairs on the Pareto front, by rising cost."""
    return [points[i] for i in pareto_indices(points)]


def scatter(rows: Sequence[dict], best: dict) -> dict:
    """Validation accuracy vs OPs of every validated architecture, the Pareto front and the base
    network (its OPs; and its points where it was itself validated)."""
    points = evaluated(rows)
    base = best.get("base") or {}
    base_arch = base.get("architecture")
    front = pareto_front([(p.ops, p.val_acc) for p in points])
    return {
        "points": [p.as_dict() for p in points],
        "front": {"ops": [c for c, _ in front], "val_acc": [a for _, a in front]},
        "base": {
            "ops": base.get("ops"),
            "model_bits": base.get("model_bits"),
            "points": [p.as_dict() for p in points if base_arch and p.architecture == base_arch],
        },
    }


def result_data(folder: TrainingFolder) -> dict | None:
    """The run's result (lightnas.outputs.result) and whether it is final; None before any epoch."""
    result = result_of(folder)
    return None if result is None else {**result.as_dict(), "final": is_final(result)}


def architecture_epochs(folder: TrainingFolder) -> list[int]:
    """Epochs with a saved architecture (logs/architectures/epoch_N.*), ascending."""
    if not folder.architectures.is_dir():
        return []
    epochs = {epoch_of(p.stem) for p in folder.architectures.iterdir()}
    return sorted(e for e in epochs if e is not None)


def downloads(root: Path, folder: TrainingFolder) -> list[dict]:
    """The run's files worth downloading: exports (newest epoch first), then config and logs;
    a symbolic link out of the root is left out (/download refuses it)."""
    out = []
    for where in (inference_dir(folder.exports), trainables_dir(folder.exports)):
        files = [p for p in where.glob("*") if p.suffix in EXPORT_SUFFIXES and _servable(root, p)]
        files.sort(key=lambda p: (-(epoch_of(p.stem) or 0), p.name))
        out += [_download(root, p, EXPORT_SUFFIXES[p.suffix]) for p in files]
    for attr in RUN_FILES:
        path = getattr(folder, attr)
        if _servable(root, path):
            out.append(_download(root, path, path.suffix.lstrip(".") or "file"))
    return out


def _servable(root: Path, path: Path) -> bool:
    return path.is_file() and inside(root, path)


def _download(root: Path, path: Path, kind: str) -> dict:
    return {
        "name": path.name,
        "kind": kind,
        "path": relative_to_root(root, path),
        "size": path.stat().st_size,
    }


def run_data(root: Path, folder: TrainingFolder, summary: RunSummary) -> dict:
    """Everything a run's page draws, as JSON."""
    rows = rows_of(folder)
    return {
        "summary": summary.as_dict(),
        "result": result_data(folder),
        "charts": charts(rows),
        "heatmap": heatmap(rows),
        "scatter": scatter(rows, best_of(folder)),
        "architecture_epochs": architecture_epochs(folder),
        "log": tail(folder.log, LOG_LINES) if inside(root, folder.log) else [],
        "downloads": downloads(root, folder),
    }
