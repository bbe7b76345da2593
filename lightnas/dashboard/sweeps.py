"""A sweep's page data (`lightnas sweep`, issue #9): its trials, the Pareto front across them and
the parameter importances, read from the sweep folder (lightnas.layout.SweepFolder): the Optuna
storage `study.db`, the trials' training folders `trials/<trial>/` and the `report/` files.

Kept apart from the rest of the dashboard: only this module knows Optuna.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import optuna

from lightnas.dashboard.folders import cached, parse_yaml
from lightnas.dashboard.listing import RunSummary
from lightnas.dashboard.paths import relative_to_root
from lightnas.dashboard.rundata import pareto_front
from lightnas.layout import SweepFolder

optuna.logging.set_verbosity(logging.WARNING)


def load_studies(storage: Path) -> list[optuna.Study]:
    """The studies in a sweep's SQLite storage (none when the file does not exist)."""
    if not storage.is_file():
        return []
    url = f"sqlite:///{storage.resolve()}"
    summaries = optuna.get_all_study_summaries(url, include_best_trial=False)
    return [optuna.load_study(study_name=s.study_name, storage=url) for s in summaries]


def objective_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    if names and len(names) == len(study.directions):
        return list(names)
    return [f"objective {i}" for i in range(len(study.directions))]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def trial_rows(study: optuna.Study) -> list[dict]:
    """One row per trial: number, state, objective values, params, duration."""
    names = objective_names(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        values = t.values or []
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "values": dict(zip(names, [_number(v) for v in values], strict=False)),
                "params": {k: _plain(v) for k, v in t.params.items()},
                "duration_s": None if t.duration is None else t.duration.total_seconds(),
            }
        )
    return rows


def _plain(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def importances(study: optuna.Study) -> dict[str, dict[str, float]]:
    """Parameter importances (fANOVA: the share of each objective's variance a parameter
    explains) per objective; {} while too few trials are complete."""
    out = {}
    for i, name in enumerate(objective_names(study)):
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        try:
            scores = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=lambda t, i=i: t.values[i]
            )
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        out[name] = {k: float(v) for k, v in scores.items()}
    return out


def objective_front(study: optuna.Study) -> dict | None:
    """A two-objective study: every complete trial's values and Optuna's Pareto front."""
    if len(study.directions) != 2:
        return None
    complete = [t for t in study.get_trials(deepcopy=False) if t.values and len(t.values) == 2]
    best = {t.number for t in study.best_trials} if complete else set()
    return {
        "names": objective_names(study),
        "directions": [d.name.lower() for d in study.directions],
        "trials": [{"number": t.number, "values": t.values} for t in complete],
        "front": sorted(best),
    }


def accuracy_front(trials: Sequence[RunSummary]) -> dict:
    """Every trial's best validation accuracy against its best architecture's OPs, and the
    Pareto front across trials."""
    points = [t for t in trials if t.best_val_acc is not None and t.ops is not None]
    front = pareto_front((t.ops, t.best_val_acc) for t in points)
    return {
        "points": [{"path": t.path, "ops": t.ops, "val_acc": t.best_val_acc} for t in points],
        "front": {"ops": [c for c, _ in front], "val_acc": [a for _, a in front]},
    }


def trial_numbers(trials: Sequence[RunSummary]) -> dict[int, RunSummary]:
    """Trial folders by trial number: the digits their name ends with (`3`, `trial_0003`)."""
    out = {}
    for t in trials:
        digits = t.name[len(t.name.rstrip("0123456789")) :]
        if digits:
            out[int(digits)] = t
    return out


def read_studies(storage: Path) -> list[dict]:
    """What the storage says about each study: objectives, trials, importances, front."""
    out = []
    for study in load_studies(storage):
        out.append(
            {
                "name": study.study_name,
                "directions": [d.name.lower() for d in study.directions],
                "objectives": objective_names(study),
                "trials": trial_rows(study),
                "importances": importances(study),
                "objective_front": objective_front(study),
            }
        )
    return out


def report_files(root: Path, sweep: SweepFolder) -> list[dict]:
    if not sweep.report.is_dir():
        return []
    files = sorted(p for p in sweep.report.iterdir() if p.is_file())
    return [{"name": p.name, "path": relative_to_root(root, p)} for p in files]


def sweep_data(root: Path, sweep: SweepFolder, summary: RunSummary, trials: list) -> dict:
    """Everything a sweep's page shows, as JSON."""
    studies = cached("studies", sweep.storage, read_studies, [])
    by_number = trial_numbers(trials)
    for study in studies:
        for row in study["trials"]:
            run = by_number.get(row["number"])
            row["run"] = None if run is None else run.path
    return {
        "summary": summary.as_dict(),
        "config": parse_yaml(sweep.config),
        "studies": studies,
        "trials": [t.as_dict() for t in trials],
        "accuracy_front": accuracy_front(trials),
        "report": report_files(root, sweep),
    }
