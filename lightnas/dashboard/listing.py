"""The runs page's data: every training folder and sweep under the root, summarised, filtered and
sorted."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lightnas.dashboard.folders import (
    best_row,
    config_of,
    parse_yaml,
    progress_of,
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
    best_val_acc: float | None
    ops: float | None  # of the best architecture (highest reward)
    model_bits: float | None
    params: float | None
    started: str | None
    model: str | None
    dataset: str | None
    sweep: str | None = None  # the path of a trial's sweep
    pid: int | None = None
    error: str | None = None

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


def _trials(sweep: SweepFolder) -> Iterator[Found]:
    for sub in _subfolders(sweep.trials):
        if TrainingFolder(sub).is_training():
            yield Found(sub, "trial", sweep.root)


# ---- summaries -----------------------------------------------------------------------------
def summarize_training(root: Path, found: Found) -> RunSummary:
    folder = TrainingFolder(found.path)
    rows, config = rows_of(folder), config_of(folder)
    epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    status = status_of(folder, len(rows), epochs)
    progress = progress_of(rows, status, config)
    best = best_row(rows) or {}
    return RunSummary(
        path=relative_to_root(root, folder.root),
        name=folder.name,
        kind=found.kind,
        state=status["state"],
        epoch=progress.done,
        epochs=progress.epochs,
        eta_s=progress.eta_s() if status["state"] == RUNNING else None,
        best_val_acc=max((r["val_acc"] for r in rows if "val_acc" in r), default=None),
        ops=best.get("ops"),
        model_bits=best.get("model_bits"),
        params=best.get("params"),
        started=started_of(folder, status),
        model=(config.get("model") or {}).get("name"),
        dataset=(config.get("data") or {}).get("dataset"),
        sweep=None if found.sweep is None else relative_to_root(root, found.sweep),
        pid=status.get("pid"),
        error=status.get("error"),
    )


def sweep_state(trials: Sequence[RunSummary]) -> str:
    """running while a trial runs; failed when one failed; finished when all finished (or were
    pruned); else interrupted (a sweep with no trials yet counts as interrupted)."""
    states = {t.state for t in trials}
    for state in (RUNNING, FAILED):
        if state in states:
            return state
    return FINISHED if states and states <= {FINISHED, PRUNED} else INTERRUPTED


def summarize_sweep(root: Path, found: Found, trials: Sequence[RunSummary]) -> RunSummary:
    sweep = SweepFolder(found.path)
    config = parse_yaml(sweep.config)
    best = max(trials, key=lambda t: t.best_val_acc or -1.0, default=None)
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
        best_val_acc=None if best is None else best.best_val_acc,
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
    sweep = parent if SweepFolder(parent).is_sweep() and path.parent.name == "trials" else None
    return summarize_training(root, Found(path, "trial" if sweep else "training", sweep))


# ---- filter and sort -----------------------------------------------------------------------
SORT_KEYS = (
    "name",
    "state",
    "epoch",
    "eta_s",
    "best_val_acc",
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
