"""The training folder's layout: the one place that names its files and folders.

trainings/<name>/
  config.yml                      the resolved config (rerun with -c)
  log.txt                         everything the run printed
  metrics.jsonl                   one JSON object per epoch (EpochResult.to_row)
  best_architecture.json          the best architecture so far + the model description
  architecture.json               a retrain's architecture and where it came from
  evaluation.json                 `lightnas evaluate`'s report
  mlflow_run.json                 the MLflow run this folder logs to (tracking.mlflow)
  tensorboard/                    event files
  logs/architectures/epoch_N.*    each epoch's architecture (json, txt, dot, png/svg/pdf)
  exported_models/inference_only/epoch_N.{pt2,onnx}
  exported_models/trainables/epoch_N.{safetensors,json}
  exported_models/deploy/epoch_N.packed.safetensors    binary weights packed 8 to a byte
  latency_table.csv               the per-op latency table of a `search.cost: latency_table` run
  enas_checkpoint/{last,previous}.pt
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lightnas.errors import CheckpointError

EPOCH_NAME = re.compile(r"epoch_(\d+)")


FINAL_NAME = "final"  # file stem of the final selection's winner in exported_models/


def epoch_name(epoch: int) -> str:
    """File stem of an epoch's artefacts (1-based epochs)."""
    return f"epoch_{epoch}"


def trial_name(number: int) -> str:
    """Folder name of a sweep's trial (Optuna's 0-based trial number): trial_0003."""
    return f"trial_{number:04d}"


def epoch_of(stem: str) -> int | None:
    match = EPOCH_NAME.fullmatch(stem)
    return int(match[1]) if match else None


@dataclass(frozen=True)
class Folder:
    """A folder of LightNAS's (a run's or a sweep's) and what they share."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def log(self) -> Path:
        return self.root / "log.txt"


@dataclass(frozen=True)
class TrainingFolder(Folder):
    """Every path of one training folder (creating nothing)."""

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def best_architecture(self) -> Path:
        return self.root / "best_architecture.json"

    @property
    def final_selection(self) -> Path:
        return self.root / "final_selection.json"

    @property
    def architecture(self) -> Path:
        return self.root / "architecture.json"

    @property
    def ranking(self) -> Path:
        return self.root / "ranking.json"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def mlflow_run(self) -> Path:
        return self.root / "mlflow_run.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def architectures(self) -> Path:
        return self.root / "logs" / "architectures"

    @property
    def exports(self) -> Path:
        return self.root / "exported_models"

    @property
    def latency_table(self) -> Path:
        return self.root / "latency_table.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "enas_checkpoint"

    @property
    def lock(self) -> Path:
        """Held by the run writing the folder: a second run (a resume) is refused meanwhile."""
        return self.root / ".lock"

    def is_training(self) -> bool:
        return self.config.is_file()

    def checked(self, option: str = "") -> TrainingFolder:
        """This folder, when it is a training folder (has its config.yml); else a
        CheckpointError naming it (after `option`, the command-line option that named it)."""
        if not self.is_training():
            named = f"{option} {self.root}".strip()
            raise CheckpointError(f"{named} is not a training folder (no config.yml in it)")
        return self


def inference_dir(exports: Path) -> Path:
    """Where the inference graphs (pt2, ONNX) of an `exported_models` folder go."""
    return exports / "inference_only"


def trainables_dir(exports: Path) -> Path:
    """Where the trainable children (safetensors + JSON) of an `exported_models` folder go."""
    return exports / "trainables"


def deploy_dir(exports: Path) -> Path:
    """Where the packed 1-bit deployment files of an `exported_models` folder go."""
    return exports / "deploy"


REPORT_FILES = (
    "table.txt",
    "trials.csv",
    "trials.json",
    "importances.json",
    "pareto.png",
    "pareto.html",
    "history.png",
    "history.html",
)


@dataclass(frozen=True)
class SweepFolder(Folder):
    """Every path of one sweep folder (`lightnas sweep`): many runs of one study.

    sweeps/<name>/
      sweep.yml          the resolved sweep config (rerun the same command to resume)
      study.db           the Optuna storage (SQLite) unless --storage names another
      log.txt            what the sweep printed
      trials/<trial>/    one training folder per trial (TrainingFolder)
      report/            `lightnas report`: table.txt, trials.csv, trials.json, pareto.png/.html
                         (two objectives) or history.png/.html (one), importances.json
    """

    @property
    def config(self) -> Path:
        return self.root / "sweep.yml"

    @property
    def storage(self) -> Path:
        return self.root / "study.db"

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def trial(self, name: str) -> TrainingFolder:
        return TrainingFolder(self.trials / name)

    def report_file(self, name: str) -> Path:
        """A file of the report: table.txt, trials.csv, trials.json, importances.json,
        pareto.png, pareto.html, history.png, history.html."""
        if name not in REPORT_FILES:
            raise ValueError(f"{name!r} is not a report file; valid: {', '.join(REPORT_FILES)}")
        return self.report / name

    def is_sweep(self) -> bool:
        return self.config.is_file()
