"""A sweep's page data (`lightnas sweep`, issue #9): its trials, the Pareto front across them and
the parameter importances, read from the sweep folder (lightnas.layout.SweepFolder): `sweep.yml`
(study name, storage URL, objectives), the Optuna storage (`study.db` unless sweep.yml names
another), the trials' training folders `trials/<trial>/` and the `report/` files.

Follows the conventions of the sweeps branch (#9): a trial's user attributes `folder` (its
training folder, relative to the sweep folder), `overrides` (its parameters as config keys) and
`skipped` (a trial beyond the budget, never run: left out). Kept apart from the rest of the
dashboard: only this module knows Optuna.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from lightnas.dashboard.folders import cached, parse_yaml
from lightnas.dashboard.listing import RunSummary, finished_results, trial_number
from lightnas.dashboard.paths import relative_to_root
from lightnas.dashboard.rundata import pareto_indices
from lightnas.layout import SweepFolder

optuna.logging.set_verbosity(logging.WARNING)
SKIPPED = "skipped"  # user attribute of a trial beyond the budget (lightnas.sweeps.study)


# ---- reading the storage ---------------------------------------------------------------------
def storage_url(sweep: SweepFolder, config: dict) -> str | None:
    """sweep.yml's `storage`, else the folder's SQLite file (None when it does not exist)."""
    if isinstance(config.get("storage"), str):
        return config["storage"]
    return f"sqlite:///{sweep.storage.resolve()}" if sweep.storage.is_file() else None


def load_studies(url: str, name: str) -> list[optuna.Study]:
    """The sweep's study (named in sweep.yml, else after the folder), or every study the
    storage holds when none has that name."""
    names = [s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)]
    picked = [name] if name in names else names
    return [optuna.load_study(study_name=n, storage=url) for n in picked]


def objective_names(study: optuna.Study, config: dict) -> list[str]:
    """Objective names: the study's metric names, sweep.yml's objectives, or numbers."""
    n = len(study.directions)
    objectives = config.get("objectives")
    for names in (study.metric_names, objectives if isinstance(objectives, dict) else None):
        if names and len(names) == n:
            return [str(k) for k in names]
    return ["value"] if n == 1 else [f"objective {i}" for i in range(n)]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _plain(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def run_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SKIPPED)]


def trial_row(trial: FrozenTrial, names: list[str]) -> dict:
    """One trial: number, state, objective values, parameters, duration, folder."""
    params = trial.user_attrs.get("overrides") or trial.params
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "values": dict(zip(names, [_number(v) for v in trial.values or []], strict=False)),
        "params": {str(k): _plain(v) for k, v in params.items()},
        "duration_s": None if trial.duration is None else trial.duration.total_seconds(),
        "folder": trial.user_attrs.get("folder"),
    }


def importances(study: optuna.Study, names: list[str]) -> dict[str, dict[str, float]]:
    """Parameter importances (fANOVA: the share of each objective's variance a parameter
    explains) per objective; objectives with too few complete trials are left out."""
    out = {}
    for i, name in enumerate(names):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                    target=lambda t, i=i: t.values[i],
                )
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        if scores:
            out[name] = {k: float(v) for k, v in scores.items()}
    return out


def objective_front(study: optuna.Study, names: list[str]) -> dict | None:
    """A two-objective study: every complete trial's values and Optuna's Pareto front."""
    if len(study.directions) != 2:
        return None
    complete = [t for t in run_trials(study) if t.state == TrialState.COMPLETE]
    front = {t.number for t in study.best_trials} if complete else set()
    return {
        "names": names,
        "directions": [d.name.lower() for d in study.directions],
        "trials": [{"number": t.number, "values": t.values} for t in complete],
        "front": sorted(front),
    }


def study_data(study: optuna.Study, config: dict) -> dict:
    names = objective_names(study, config)
    return {
        "name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "objectives": names,
        "trials": [trial_row(t, names) for t in run_trials(study)],
        "importances": importances(study, names),
        "objective_front": objective_front(study, names),
    }


def read_studies(sweep: SweepFolder, config: dict) -> list[dict]:
    """What the storage says about the sweep's study; [] before it exists."""
    url = storage_url(sweep, config)
    if url is None:
        return []
    studies = load_studies(url, str(config.get("name") or sweep.name))
    return [study_data(s, config) for s in studies]


# ---- joining the trials' folders -----------------------------------------------------------
def accuracy_front(trials: Sequence[RunSummary]) -> dict:
    """Every trial's result (lightnas.result): validation accuracy against OPs, and the Pareto
    front across the finished trials (Optuna's complete trials, whose objective values are
    these results: the same front as the objectives chart's when those are val_acc and ops)."""
    points = [t for t in trials if t.val_acc is not None and t.ops is not None]
    finished = finished_results(points)
    front = [finished[i] for i in pareto_indices([(t.ops, t.val_acc) for t in finished])]
    return {
        "points": [
            {"path": t.path, "ops": t.ops, "val_acc": t.val_acc, "state": t.state} for t in points
        ],
        "front": {
            "ops": [t.ops for t in front],
            "val_acc": [t.val_acc for t in front],
            "paths": [t.path for t in front],
        },
    }


def trial_numbers(trials: Sequence[RunSummary]) -> dict[int, RunSummary]:
    """Trial folders by trial number (lightnas.dashboard.listing.trial_number)."""
    numbered = ((trial_number(t.name), t) for t in trials)
    return {n: t for n, t in numbered if n is not None}


def with_runs(studies: list[dict], sweep_path: str, trials: Sequence[RunSummary]) -> list[dict]:
    """The studies with each trial's training folder (its path under the root) attached."""
    by_path = {t.path: t for t in trials}
    by_number = trial_numbers(trials)
    out = []
    for study in studies:
        rows = []
        for row in study["trials"]:
            named = by_path.get(f"{sweep_path}/{row['folder']}") if row["folder"] else None
            run = named or by_number.get(row["number"])
            rows.append({**row, "run": None if run is None else run.path})
        out.append({**study, "trials": rows})
    return out


def report_files(root: Path, sweep: SweepFolder) -> list[dict]:
    if not sweep.report.is_dir():
        return []
    files = sorted(p for p in sweep.report.iterdir() if p.is_file())
    return [
        {
            "name": p.name,
            "kind": "report",
            "path": relative_to_root(root, p),
            "size": p.stat().st_size,
        }
        for p in files
    ]


def sweep_data(
    root: Path, sweep: SweepFolder, summary: RunSummary, trials: Sequence[RunSummary]
) -> dict:
    """Everything a sweep's page shows, as JSON; `error` says why the storage was not read."""
    config = parse_yaml(sweep.config)
    error = None
    try:
        studies = cached("studies", sweep.storage, lambda _: read_studies(sweep, config), None)
        if studies is None:  # no SQLite file: another storage (or none yet), read every time
            studies = read_studies(sweep, config)
    except Exception as err:  # SQLAlchemy's and Optuna's errors: many classes
        studies, error = [], f"cannot read the study: {' '.join(str(err).split())[:300]}"
    return {
        "summary": summary.as_dict(),
        "config": config,
        "studies": with_runs(studies, summary.path, trials),
        "error": error,
        "trials": [t.as_dict() for t in trials],
        "accuracy_front": accuracy_front(trials),
        "report": report_files(root, sweep),
    }
