"""The runs page's data: every training folder and sweep under the root, summarised, filtered and
sorted."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lightnas.dashboard.folders import (
    config_of,
    parse_yaml,
    progress_of,
    result_of,
    rows_of,
    started_of,
    status_of,
)
from lightnas.dashboard.paths import relative_to_root
from lightnas.layout import SweepFolder, TrainingFolder
from lightnas.outputs.status import FAILED, FINISHED, INTERRUPTED, RUNNING

PRUNED = "pruned"  # a sweep's trial its pruner ended early (status.json, issue #9)
STATES = (RUNNING, FINISHED, INTERRUPTED, FAILED, PRUNED)
KINDS = ("training", "trial", "sweep")
MAX_DEPTH = 4  # folders below the root searched for training folders and sweeps


@dataclass
class RunSummary:
    """One line of the runs page."""

    path: str  # relative to the root: how URLs name it
    name: str
    kind: str  # training, trial (of a sweep) or sweep
    state: str
    epoch: int  # epochs done (a sweep: trials done)
    epochs: int | None  # a sweep: trials found
    eta_s: float | None
    # the run's result (lightnas.outputs.result: best_architecture.json); a sweep: its best
    # finished trial's
    val_acc: float | None
    ops: float | None
    model_bits: float | None
    params: float | None
    started: str | None
    model: str | None
    dataset: str | None
    sweep: str | None = None  # the path of a trial's sweep
    pid: int | None = None
    error: str | None = None
    test_acc: float | None = None
    result_epoch: int | None = None  # the epoch that proposed the result
    selected_by: str | None = None  # final selection, or latest epoch (a search so far)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Found:
    path: Path
    kind: str
    sweep: Path | None = None


def discover(root: Path, max_depth: int = MAX_DEPTH) -> Iterator[Found]:
    """Training folders and sweeps under `root` (symbolic links and hidden folders skipped)."""
    yield from _visit(Path(root), 0, max_depth)


def _visit(folder: Path, depth: int, max_depth: int) -> Iterator[Found]:
    if SweepFolder(folder).is_sweep():
        yield Found(folder, "sweep")
        yield from _trials(SweepFolder(folder))
        return
    if TrainingFolder(folder).is_training():
        yield Found(folder, "training")
        return
    if depth >= max_depth:
        return
    for sub in _subfolders(folder):
        yield from _visit(sub, depth + 1, max_depth)


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    dirs = [
        Path(e.path)
        for e in entries
        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    ]
    return sorted(dirs)


def trial_number(name: str) -> int | None:
    """The trial number of a sweep's trial folder: the digits its name ends with (`trial_0003`,
    `3`); None for another folder there (`trial_0003_retrain`, a retrain of a trial's result)."""
    digits = name[len(name.rstrip("0123456789")) :]
    return int(digits) if digits else None


def _trials(sweep: SweepFolder) -> Iterator[Found]:
    """The sweep's trials, and the other training folders in trials/ (retrains) as trainings."""
    for sub in _subfolders(sweep.trials):
        if TrainingFolder(sub).is_training():
            trial = trial_number(sub.name) is not None
            yield Found(sub, "trial" if trial else "training", sweep.root if trial else None)


# ---- summaries -----------------------------------------------------------------------------
def summarize_training(root: Path, found: Found) -> RunSummary:
    folder = TrainingFolder(found.path)
    rows, config = rows_of(folder), config_of(folder)
    epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    status = status_of(folder, len(rows), epochs)
    progress = progress_of(rows, status, config)
    result = result_of(folder)
    costs = {} if result is None else result.costs
    return RunSummary(
        path=relative_to_root(root, folder.root),
        name=folder.name,
        kind=found.kind,
        state=status["state"],
        epoch=progress.done,
        epochs=progress.epochs,
        eta_s=progress.eta_s() if status["state"] == RUNNING else None,
        val_acc=None if result is None else result.val_acc,
        ops=costs.get("ops"),
        model_bits=costs.get("model_bits"),
        params=costs.get("params"),
        started=started_of(folder, status),
        model=(config.get("model") or {}).get("name"),
        dataset=(config.get("data") or {}).get("dataset"),
        sweep=None if found.sweep is None else relative_to_root(root, found.sweep),
        pid=status.get("pid"),
        error=status.get("error"),
        test_acc=None if result is None else result.test_acc,
        result_epoch=None if result is None else result.epoch,
        selected_by=None if result is None else result.selected_by,
    )


def sweep_state(trials: Sequence[RunSummary]) -> str:
    """running while a trial runs; failed when one failed; finished when all finished (or were
    pruned); else interrupted (a sweep with no trials yet counts as interrupted)."""
    states = {t.state for t in trials}
    for state in (RUNNING, FAILED):
        if state in states:
            return state
    return FINISHED if states and states <= {FINISHED, PRUNED} else INTERRUPTED


def finished_results(trials: Sequence[RunSummary]) -> list[RunSummary]:
    """The trials whose result is final (their run finished): those a sweep's best, its fronts
    and Optuna's complete trials are made of; running and pruned trials have only a result so
    far."""
    return [t for t in trials if t.state == FINISHED and t.val_acc is not None]


def summarize_sweep(root: Path, found: Found, trials: Sequence[RunSummary]) -> RunSummary:
    sweep = SweepFolder(found.path)
    config = parse_yaml(sweep.config)
    best = max(finished_results(trials), key=lambda t: t.val_acc, default=None)
    started = [t.started for t in trials if t.started]
    n_trials = config.get("n_trials")
    return RunSummary(
        path=relative_to_root(root, sweep.root),
        name=sweep.name,
        kind="sweep",
        state=sweep_state(trials),
        epoch=sum(t.state == FINISHED for t in trials),
        epochs=n_trials if isinstance(n_trials, int) else len(trials),
        eta_s=None,
        val_acc=None if best is None else best.val_acc,
        ops=None if best is None else best.ops,
        model_bits=None if best is None else best.model_bits,
        params=None if best is None else best.params,
        started=min(started, default=None),
        model=None,
        dataset=None,
    )


def list_runs(root: Path) -> list[RunSummary]:
    """Every training folder, sweep trial and sweep under `root`."""
    found = list(discover(root))
    summaries = {f.path: summarize_training(root, f) for f in found if f.kind != "sweep"}
    out = []
    for f in found:
        if f.kind == "sweep":
            trials = [summaries[t.path] for t in found if t.sweep == f.path]
            out.append(summarize_sweep(root, f, trials))
        else:
            out.append(summaries[f.path])
    return out


def find_run(root: Path, path: Path) -> RunSummary | None:
    """The summary of one training folder (resolved path under `root`)."""
    if not TrainingFolder(path).is_training():
        return None
    parent = path.parent.parent
    in_trials = path.parent.name == "trials" and trial_number(path.name) is not None
    sweep = parent if in_trials and SweepFolder(parent).is_sweep() else None
    return summarize_training(root, Found(path, "trial" if sweep else "training", sweep))


# ---- filter and sort -----------------------------------------------------------------------
SORT_KEYS = (
    "name",
    "state",
    "epoch",
    "eta_s",
    "val_acc",
    "ops",
    "model_bits",
    "started",
    "kind",
)


def filter_runs(
    runs: Sequence[RunSummary], query: str = "", state: str = "", kind: str = ""
) -> list[RunSummary]:
    """Runs whose path, model or dataset contain `query` (any case), of `state` and `kind`."""
    q = query.strip().lower()

    def keep(r: RunSummary) -> bool:
        text = " ".join(str(v) for v in (r.path, r.model, r.dataset) if v).lower()
        return (not q or q in text) and state in ("", r.state) and kind in ("", r.kind)

    return [r for r in runs if keep(r)]


def sort_runs(
    runs: Sequence[RunSummary], key: str = "started", desc: bool = True
) -> list[RunSummary]:
    """Sorted by `key` (one of SORT_KEYS); runs without a value go last either way."""
    if key not in SORT_KEYS:
        key = "started"
    present = [r for r in runs if getattr(r, key) is not None]
    missing = [r for r in runs if getattr(r, key) is None]
    present.sort(key=lambda r: (getattr(r, key), r.path), reverse=desc)
    return present + sorted(missing, key=lambda r: r.path)
