"""Optional MLflow tracking of a run (`tracking.mlflow: URI`): the resolved config as params,
every epoch's numeric metrics (step = epoch), and at the end the config, metrics, best
architecture and exported models as artefacts. A resumed run logs into the same MLflow run (its
id is kept in the training folder's mlflow_run.json), first the epochs MLflow missed.

MLflow is an optional extra (`pip install lightnas[mlflow]`): it is imported only when a run
enables it, inside `MLflowLogger.on_start`. A tracking server that fails during the run costs
a warning, never the run; one that cannot be reached at the start stops it with a one-line error.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lightnas.engine.loop import Callback, Engine
from lightnas.engine.records import EpochResult
from lightnas.errors import LightNASError
from lightnas.layout import TrainingFolder
from lightnas.runtime.fileio import write_json_atomic

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value


class TrackingError(LightNASError):
    """The MLflow tracking URI cannot be used (one line, exit 2)."""


def flatten(values: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of a nested config dict; dicts under `search_space`, `kwargs` stay."""
    for key, value in values.items():
        if isinstance(value, Mapping) and value and key not in ("search_space", "kwargs"):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def epoch_metrics(result: EpochResult) -> dict[str, float]:
    """The numeric, finite entries of an epoch's metrics row."""
    row = result.to_row()
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def uses_file_store(uri: str) -> bool:
    """A `file:` URI or a plain folder: MLflow's file store."""
    return uri.startswith("file:") or ("://" not in uri and not uri.startswith("databricks"))


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artefacts: beside a SQLite database (mlartifacts/),
    not MLflow's default ./mlruns in the working folder; None = MLflow's choice."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
    return (database.parent / "mlartifacts").as_uri()


class MLflowLogger(Callback):
    """Logs a run to MLflow; see the module's docstring."""

    def __init__(self, uri: str, experiment: str, folder: TrainingFolder) -> None:
        self.uri = uri
        self.experiment = experiment
        self.folder = folder
        self.client = None
        self.run_id: str | None = None
        self.warned = False

    def on_start(self, engine: Engine) -> None:
        if uses_file_store(self.uri):
            # asked for explicitly: MLflow 3 keeps its file store only behind this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            from mlflow.tracking import MlflowClient  # optional extra: only when enabled

            self.client = MlflowClient(tracking_uri=self.uri)
            self.run_id = self._run_id(engine)
            logged = {m.step for m in self.client.get_metric_history(self.run_id, "epoch")}
        except ImportError:
            raise TrackingError(
                "tracking.mlflow is set but MLflow is not installed: pip install 'lightnas[mlflow]'"
            ) from None
        except Exception as err:  # MLflow's own errors: many classes, many lines
            reason = " ".join(str(err).split())[:300]
            raise TrackingError(f"tracking.mlflow={self.uri!r} cannot be used: {reason}") from None
        for result in engine.history:  # a resumed run: the epochs MLflow has not seen yet
            if result.epoch not in logged:
                self.on_epoch_end(engine, result)

    def _run_id(self, engine: Engine) -> str:
        saved = self.folder.mlflow_run
        if saved.is_file():
            data = json.loads(saved.read_text())
            if data.get("uri") == self.uri:
                self.client.update_run(data["run_id"], status="RUNNING")
                return data["run_id"]
        run = self.client.create_run(
            self._experiment_id(),
            run_name=self.folder.name,
            tags={"lightnas.folder": str(self.folder.root.resolve())},
        )
        self._log_params(run.info.run_id, engine.cfg.to_dict())
        write_json_atomic(saved, {"uri": self.uri, "run_id": run.info.run_id})
        return run.info.run_id

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location(self.uri))

    def _log_params(self, run_id: str, config: dict) -> None:
        from mlflow.entities import Param  # optional extra: only when enabled

        params = [Param(k, json.dumps(v)[:MAX_PARAM_CHARS]) for k, v in flatten(config)]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=params[i : i + 100])

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        from mlflow.entities import Metric  # optional extra: only when enabled

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, result.epoch) for k, v in epoch_metrics(result).items()]
        self._safely(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def on_end(self, engine: Engine) -> None:
        f = self.folder
        for path in (f.config, f.metrics, f.best_architecture, f.architecture):
            if path.is_file():
                self._safely(lambda p=path: self.client.log_artifact(self.run_id, str(p)))
        if f.exports.is_dir():
            self._safely(
                lambda: self.client.log_artifacts(self.run_id, str(f.exports), f.exports.name)
            )
        self._safely(lambda: self.client.set_terminated(self.run_id, "FINISHED"))

    def _safely(self, call) -> None:
        try:
            call()
        except Exception as err:  # a tracking hiccup must not stop a search
            if not self.warned:
                reason = " ".join(str(err).split())[:200]
                print(
                    f"warning: MLflow logging failed ({reason}); the run goes on", file=sys.stderr
                )
                self.warned = True
