"""A sweep's page data (`lightnas sweep`, issue #9): its trials, the Pareto front across them and
the parameter importances, read from the sweep folder (lightnas.layout.SweepFolder): `sweep.yml`
(study name, storage URL, objectives), the Optuna storage (`study.db` unless sweep.yml names
another SQLite file inside the root; opened read-only, never created), the trials' training
folders `trials/<trial>/` and the `report/` files.

Follows the conventions of the sweeps branch (#9): a trial's user attributes `folder` (its
training folder, relative to the sweep folder), `overrides` (its parameters as config keys) and
`skipped` (a trial beyond the budget, never run: left out). Kept apart from the rest of the
dashboard: only this module knows Optuna.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from urllib.parse import quote

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lightnas.dashboard.folders import cached, parse_yaml
from lightnas.dashboard.listing import RunSummary, finished_results, trial_number
from lightnas.dashboard.paths import inside, relative_to_root
from lightnas.dashboard.rundata import pareto_indices
from lightnas.errors import LightNASError
from lightnas.layout import SweepFolder

optuna.logging.set_verbosity(logging.WARNING)
SKIPPED = "skipped"  # user attribute of a trial beyond the budget (lightnas.sweeps.study)


# ---- reading the storage ---------------------------------------------------------------------
class StorageNotRead(LightNASError):
    """sweep.yml names a storage the dashboard does not open."""


def storage_file(root: Path, sweep: SweepFolder, config: dict) -> Path:
    """The study's SQLite file: the sweep folder's study.db, or the SQLite file sweep.yml's
    `storage` names (a relative one from the dashboard's working directory, as SQLAlchemy reads
    it). The dashboard opens nothing else: no other database (a server it would connect to) and
    no file outside its root (which a sweep.yml could name to have it created or read)."""
    url = config.get("storage")
    path = sweep.storage if url is None else sqlite_path(url)
    if path is None or not inside(root, path):
        raise StorageNotRead(
            "the sweep's storage is not a SQLite file inside the dashboard's root: it is not "
            "opened here (read the sweep with `lightnas report` or optuna-dashboard)"
        )
    return path


def sqlite_path(url: object) -> Path | None:
    """The file of a `sqlite:///...` URL; None for any other storage."""
    try:
        parsed = make_url(url) if isinstance(url, str) else None
    except ArgumentError:
        return None
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database) if parsed.database not in (None, "", ":memory:") else None


def read_only(path: Path) -> RDBStorage:
    """An existing SQLite file opened read-only: reading the study creates or changes nothing."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connect = partial(sqlite3.connect, uri, uri=True, check_same_thread=False)
    return RDBStorage("sqlite://", engine_kwargs={"creator": connect})


def load_studies(storage: RDBStorage, name: str) -> list[optuna.Study]:
    """The sweep's study (named in sweep.yml, else after the folder), or every study the
    storage holds when none has that name."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    names = [s.study_name for s in summaries]
    picked = [name] if name in names else names
    return [optuna.load_study(study_name=n, storage=storage) for n in picked]


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


def read_studies(path: Path, name: str, config: dict) -> list[dict]:
    """What the SQLite file at `path` says about the sweep's study."""
    return [study_data(s, config) for s in load_studies(read_only(path), name)]


# ---- joining the trials' folders -----------------------------------------------------------
def accuracy_front(trials: Sequence[RunSummary]) -> dict:
    """Every trial's result (lightnas.outputs.result): validation accuracy against OPs, and the
    Pareto front across the finished trials (Optuna's complete trials, whose objective values are
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
    files = sorted(p for p in sweep.report.iterdir() if p.is_file() and inside(root, p))
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
    name = str(config.get("name") or sweep.name)
    error = None
    try:
        path = storage_file(root, sweep, config)
        # [] before the study's file exists (the storage is never created here)
        studies = cached("studies", path, lambda p: read_studies(p, name, config), [])
    except StorageNotRead as err:
        studies, error = [], str(err)
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
