"""The final choice of a search, as a protocol: the top-k distinct architectures proposed over
the search are re-scored with the final supernet weights on the validation split (the split the
rewards use), and the winner's accuracy is reported on the test split, which no choice saw.

Comparing every candidate with the same weights removes the bias towards late epochs (whose
weights are better trained); reporting on an untouched split removes the optimism of reporting
the maximum of noisy validation scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from lightnas.scoring.evaluator import Evaluator, buffers_kept
from lightnas.search.space import Architecture


@dataclass
class Proposal:
    """An architecture an epoch validated, with that epoch's reward."""

    epoch: int
    label: str
    architecture: dict[str, str]
    reward: float


@dataclass
class Candidate:
    """One row of the final selection."""

    architecture: dict[str, str]
    proposed_epoch: int
    label: str
    epoch_reward: float
    val_acc: float
    val_loss: float
    reward: float
    test_acc: float | None
    costs: dict[str, float]


@dataclass
class FinalSelection:
    candidates: list[Candidate]
    winner: int  # index into candidates

    @property
    def best(self) -> Candidate:
        return self.candidates[self.winner]

    def to_dict(self) -> dict:
        return {"winner": self.winner, "candidates": [asdict(c) for c in self.candidates]}

    @classmethod
    def from_dict(cls, data: dict) -> FinalSelection:
        return cls([Candidate(**c) for c in data["candidates"]], data["winner"])


def top_proposals(proposals: Sequence[Proposal], k: int) -> list[Proposal]:
    """The `k` distinct architectures with the highest epoch rewards (later epochs win ties)."""
    best: dict[tuple, Proposal] = {}
    for p in proposals:
        key = tuple(sorted(p.architecture.items()))
        if key not in best or p.reward >= best[key].reward:
            best[key] = p
    ranked = sorted(best.values(), key=lambda p: (p.reward, p.epoch), reverse=True)
    return ranked[:k]


def select_final(
    evaluator: Evaluator, proposals: Sequence[Proposal], k: int, epoch: int
) -> FinalSelection:
    """Re-score the top-k proposals with the current weights (BN re-estimated for each, as in
    validation, with the calibration batches of `epoch`) and pick the highest reward. The
    supernet's state is left as the last epoch left it."""
    with buffers_kept(evaluator.supernet):
        rows = [rescore(evaluator, p, epoch) for p in top_proposals(proposals, k)]
    winner = max(range(len(rows)), key=lambda i: rows[i].reward)
    return FinalSelection(rows, winner)


def rescore(evaluator: Evaluator, p: Proposal, epoch: int) -> Candidate:
    """One row of the final selection: `p` scored on validation and test with the current
    weights."""
    data, space = evaluator.data, evaluator.supernet.space
    arch = Architecture(space, p.architecture)
    loss, acc = evaluator.evaluate(arch, data.val, epoch)
    test = evaluator.evaluate(arch, data.test, epoch)[1] if data.test is not None else None
    return Candidate(
        architecture=p.architecture,
        proposed_epoch=p.epoch,
        label=p.label,
        epoch_reward=p.reward,
        val_acc=acc,
        val_loss=loss,
        reward=evaluator.reward(arch, acc),
        test_acc=test,
        costs=evaluator.costs.costs(arch),
    )
