"""Reading training folders for the dashboard: metrics rows, config, status, the run's result.

Every reader is cached by the file's modification time and size, so a page that polls many runs
re-reads only the files that changed. Nothing here writes to a training folder.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lightnas.engine.records import Best
from lightnas.layout import TrainingFolder
from lightnas.outputs.result import read_rows as parse_rows
from lightnas.outputs.result import result_from
from lightnas.outputs.status import FINISHED, INTERRUPTED, RUNNING, STALE_S, read_status
from lightnas.runtime.fileio import read_json as parse_json

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def cached(kind: str, path: Path, read: Callable[[Path], Any], default: Any = None) -> Any:
    """`read(path)`, re-run only when the file changed; `default` when it does not exist."""
    stamp = _stamp(path)
    if stamp is None:
        return default
    key = (kind, str(path))
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = read(path)
    with _lock:
        _cache[key] = (stamp, value)
    return value


def parse_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def rows_of(folder: TrainingFolder) -> list[dict]:
    return cached("rows", folder.metrics, parse_rows, [])


def config_of(folder: TrainingFolder) -> dict:
    return cached("yaml", folder.config, parse_yaml, {})


def best_of(folder: TrainingFolder) -> dict:
    return cached("json", folder.best_architecture, parse_json, {})


def result_of(folder: TrainingFolder) -> Best | None:
    """The run's result (lightnas.outputs.result) from the cached reads of its files."""
    final = cached("json", folder.final_selection, parse_json, {})
    return result_from(best_of(folder), rows_of(folder), final)


def _last_change(folder: TrainingFolder) -> float:
    times = [p.stat().st_mtime for p in (folder.metrics, folder.log) if p.exists()]
    return max(times, default=0.0)


def inferred_status(folder: TrainingFolder, done: int, epochs: int | None) -> dict:
    """The state of a folder without status.json (written by older versions): finished when
    every epoch is in metrics.jsonl, running while its files still change, else interrupted."""
    if epochs is not None and done >= epochs:
        return {"state": FINISHED, "inferred": True}
    if time.time() - _last_change(folder) < STALE_S:
        return {"state": RUNNING, "inferred": True}
    return {"state": INTERRUPTED, "inferred": True}


def status_of(folder: TrainingFolder, done: int, epochs: int | None) -> dict:
    """status.json through `read_status` with the folder's lock (a killed run reads as
    interrupted, a live one as running whatever its heartbeat says), else inferred."""
    if folder.status.exists():
        status = read_status(folder.status, folder.lock)
        if status.get("state"):
            return status
    return inferred_status(folder, done, epochs)


@dataclass(frozen=True)
class Progress:
    """Where a run stands: epochs done of epochs, the epoch in progress, the time per epoch."""

    done: int
    epochs: int | None
    step: int
    steps: int
    epoch_s: float | None

    def eta_s(self) -> float | None:
        """Seconds left at the mean epoch time so far (None before the first epoch ends)."""
        if self.epochs is None or self.epoch_s is None:
            return None
        fraction = self.step / self.steps if self.steps else 0.0
        return max(self.epochs - self.done - fraction, 0.0) * self.epoch_s


def progress_of(rows: list[dict], status: dict, config: dict) -> Progress:
    epochs = status.get("epochs", config.get("epochs"))
    times = [r["time_s"] for r in rows if isinstance(r.get("time_s"), int | float)]
    done = max(len(rows), int(status.get("epoch") or 0))
    in_epoch = status.get("epoch") == done and status.get("state") == RUNNING
    return Progress(
        done=done,
        epochs=epochs if isinstance(epochs, int) else None,
        step=int(status.get("step") or 0) if in_epoch else 0,
        steps=int(status.get("steps") or 0),
        epoch_s=sum(times) / len(times) if times else None,
    )


def started_of(folder: TrainingFolder, status: dict) -> str | None:
    if status.get("started"):
        return str(status["started"])
    if folder.config.exists():
        stamp = time.gmtime(folder.config.stat().st_mtime)
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", stamp)
    return None


def tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> list[str]:
    """The last `lines` lines of a text file (reading at most `max_bytes` from its end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - max_bytes, 0))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:]
