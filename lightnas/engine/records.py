"""What the engine records: the epoch in progress (what a checkpoint inside an epoch holds), an
epoch's validation and result (its line in metrics.jsonl) and the search's pick so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lightnas.engine.selection import Candidate
from lightnas.scoring.evaluator import Running

CONTROLLER_KEYS = ("reward", "baseline", "entropy", "loss")


@dataclass
class EpochProgress:
    """How far the epoch in progress has come: what a checkpoint inside an epoch holds."""

    epoch: int  # 0-based
    step: int = 0  # training batches done
    train: Running = field(default_factory=Running)
    controller: list[dict] = field(default_factory=list)  # statistics of its controller phases
    elapsed: float = 0.0  # seconds spent on it before the last resume

    def state_dict(self) -> dict:
        t = self.train
        return {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": torch.as_tensor(t.loss).detach().cpu(),
            "train_correct": torch.as_tensor(t.correct).detach().cpu(),
            "train_count": t.count,
            "controller": self.controller,
            "elapsed": self.elapsed,
        }

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> EpochProgress:
        train = Running(
            state["train_loss"].to(device), state["train_correct"].to(device), state["train_count"]
        )
        return cls(state["epoch"], state["step"], train, state["controller"], state["elapsed"])


def mean_stats(stats: Sequence[dict]) -> dict:
    """Key-wise mean of statistics dicts, e.g. of controller steps ({} for none)."""
    stats = [s for s in stats if s]
    if not stats:
        return {}
    return {k: sum(s[k] for s in stats) / len(stats) for k in stats[0]}


@dataclass
class Validation:
    """What an epoch's validation found: the scores of every validated architecture and the
    one it chose (the highest reward)."""

    validated: dict[str, dict[str, float]]  # label -> {"acc", "loss"} of each validated arch
    chosen: str  # the label of the chosen architecture
    reward: float
    cost: float  # the configured cost (search.cost) of the chosen architecture
    costs: dict[str, float]  # its every additive cost metric, by key
    architecture: dict[str, str]
    validated_costs: dict[str, dict]  # label -> {"architecture": ..., and every additive cost}


@dataclass
class EpochResult:
    """What one epoch produced; `to_row()` is its line in metrics.jsonl."""

    epoch: int  # 1-based, as in the file names epoch_N
    train_loss: float
    train_acc: float
    lr: float
    controller: dict[str, float | None]  # mean reward, baseline, entropy, loss of its steps
    validated: dict[str, dict[str, float]]  # label -> {"acc", "loss"} of each validated arch
    chosen: str  # the label of the epoch's architecture
    reward: float
    cost: float  # the configured cost (search.cost)
    costs: dict[str, float]  # every additive cost metric, by key
    architecture: dict[str, str]
    time_s: float = 0.0
    probabilities: dict[str, dict[str, float]] = field(default_factory=dict)
    """The strategy's choice probabilities after the epoch, point -> choice -> p ({} if none)."""
    validated_costs: dict[str, dict] = field(default_factory=dict)
    """label -> {"architecture": ..., and every additive cost} of each validated architecture."""

    @property
    def val_acc(self) -> float:
        return self.validated[self.chosen]["acc"]

    @property
    def val_loss(self) -> float:
        return self.validated[self.chosen]["loss"]

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "lr": self.lr,
        }
        row.update({f"controller_{k}": self.controller.get(k) for k in CONTROLLER_KEYS})
        for label, scores in self.validated.items():
            row[f"val_acc_{label}"] = scores["acc"]
            row[f"val_loss_{label}"] = scores["loss"]
        row.update(val_acc=self.val_acc, val_loss=self.val_loss, reward=self.reward)
        row.update(chosen=self.chosen, cost=self.cost, **self.costs)
        row.update(architecture=self.architecture, time_s=self.time_s)
        if self.probabilities:
            row["probabilities"] = self.probabilities
        if self.validated_costs:
            row["validated_costs"] = self.validated_costs
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EpochResult:
        labels = [k.removeprefix("val_acc_") for k in row if k.startswith("val_acc_")]
        fields = {f for f in cls.__dataclass_fields__} | {"val_acc", "val_loss"}
        plain = {k for k in row if not k.startswith(("controller_", "val_acc_", "val_loss_"))}
        return cls(
            epoch=row["epoch"],
            train_loss=row["train_loss"],
            train_acc=row["train_acc"],
            lr=row["lr"],
            controller={k: row.get(f"controller_{k}") for k in CONTROLLER_KEYS},
            validated={
                label: {"acc": row[f"val_acc_{label}"], "loss": row[f"val_loss_{label}"]}
                for label in labels
            },
            chosen=row["chosen"],
            reward=row["reward"],
            cost=row["cost"],
            costs={k: row[k] for k in plain - fields},
            architecture=row["architecture"],
            time_s=row.get("time_s", 0.0),
            probabilities=row.get("probabilities", {}),
            validated_costs=row.get("validated_costs", {}),
        )


LATEST_EPOCH, FINAL_SELECTION = "latest epoch", "final selection"  # how a Best was selected


@dataclass
class Best:
    """The search's pick, the result of the run: the latest epoch's architecture until the final
    selection, then its winner (with its accuracy on the test split). Written whole to
    best_architecture.json ("stats"), which lightnas.outputs.result reads back for every display."""

    epoch: int  # the epoch that proposed it
    architecture: dict[str, str]
    val_acc: float
    reward: float
    selected_by: str = LATEST_EPOCH
    test_acc: float | None = None
    label: str | None = None  # the validated label (greedy, sampled, ...) it was proposed as
    val_loss: float | None = None
    cost: float | None = None  # the configured cost (search.cost)
    costs: dict[str, float] = field(default_factory=dict)  # every additive cost metric, by key

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_final(cls, winner: Candidate, cost: float) -> Best:
        """The final selection's winner (`cost`: its configured cost)."""
        return cls(
            winner.proposed_epoch,
            winner.architecture,
            winner.val_acc,
            winner.reward,
            FINAL_SELECTION,
            winner.test_acc,
            label=winner.label,
            val_loss=winner.val_loss,
            cost=cost,
            costs=dict(winner.costs),
        )

    @classmethod
    def of_epoch(cls, result: EpochResult) -> Best:
        """An epoch's architecture as the pick so far."""
        return cls(
            result.epoch,
            result.architecture,
            result.val_acc,
            result.reward,
            label=result.chosen,
            val_loss=result.val_loss,
            cost=result.cost,
            costs=dict(result.costs),
        )
