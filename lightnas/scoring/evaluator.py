"""Scoring architectures on a supernet's shared weights: rewards (accuracy and cost), validation,
and BatchNorm re-estimation for one architecture. Used by the engine, the final selection and the
ranking study."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.models import Supernet, child
from lightnas.runtime.distributed import LOCAL, Dist
from lightnas.runtime.placement import Placement
from lightnas.scoring.cost_metrics import COSTS
from lightnas.scoring.costs import CostTable
from lightnas.scoring.prefixes import Outputs, PrefixCache, re_estimating
from lightnas.search.space import Architecture
from lightnas.search.strategies.base import Score


def soft_constrained_reward(accuracy: float, cost: float, target: float, weight: float) -> float:
    """accuracy * (cost / target) ** weight (weight <= 0; 0 = accuracy only), MnasNet-style."""
    if weight == 0:
        return accuracy
    return accuracy * (cost / target) ** weight


@dataclass
class Running:
    """Sums kept on the device, read (one synchronisation) only when asked."""

    loss: Tensor | float = 0.0
    correct: Tensor | float = 0.0
    count: int = 0
    values: dict = field(default_factory=dict)

    def add(self, loss: Tensor, correct: Tensor, n: int) -> None:
        self.loss = self.loss + loss.detach() * n
        self.correct = self.correct + correct
        self.count += n

    def means(self) -> tuple[float, float]:
        n = max(self.count, 1)
        return float(self.loss) / n, float(self.correct) / n


# ---- scoring architectures on the shared weights ----------------------------------------------
RewardBN = Literal["recalibrate", "batch"]
"""BatchNorm of a reward (`search.reward_bn`; see Evaluator.accuracy)."""


@dataclass(frozen=True)
class ScoringOptions:
    """What the search's reward and validation depend on (the `search` section's keys)."""

    reward_batches: int | None = None  # validation batches per reward; None = the whole split
    bn_recalibration_batches: int = 10
    reward_calibration_batches: int | None = 1  # None = bn_recalibration_batches
    reward_bn: RewardBN = "recalibrate"
    cost: str = "ops"
    cost_weight: float = 0.0
    target_cost: float | None = None
    cost_budget: float | None = None  # hard budget: rewards of costlier architectures penalised
    reward_cache_mb: int = 512  # stage outputs kept by prefix (lightnas.scoring.prefixes)


class Evaluator:
    """Rewards and validation of architectures on a supernet's shared weights.

    A score depends on the weights, the architecture, the epoch (its BN re-estimation batches)
    and the data scored, nothing else: each is computed once per set of weights. The scores
    known are kept until a parameter changes (an optimizer step, a loaded checkpoint), so an
    architecture the controller samples again, or validates after sampling it, costs nothing.
    Scoring leaves the supernet's BatchNorm buffers as it found them, so what a checkpoint holds
    never depends on which scores were already known.

    A reward is measured on a *draw*: the next `reward_batches` validation batches. Every
    candidate compared in one step (a controller step, the candidates of a validation) is scored
    on the same draw, with the same BatchNorm protocol as the full validation: running statistics
    re-estimated for that architecture on the epoch's first `bn_recalibration_batches` training
    batches, then eval mode. Validation data never reaches BatchNorm's statistics.

    In a distributed run (`dist`) a draw is the next `reward_batches` x world size batches, each
    rank scoring its share; rewards, BN statistics and validation figures are reduced over the
    ranks to what one process computes on all those batches.
    """

    def __init__(
        self,
        supernet: Supernet,
        data,
        placement: Placement,
        options: ScoringOptions,
        costs: CostTable | None = None,
        dist: Dist = LOCAL,
    ) -> None:
        self.supernet = supernet
        self.data = data
        self.placement = placement
        self.options = options
        self.dist = dist
        self.costs = costs or CostTable(supernet, data.input_shape)
        # rank 0's: a measured reference (latency) differs from rank to rank
        self.target_cost = options.target_cost or dist.from_main(
            lambda: self.costs.reference(options.cost)
        )
        self._known: dict[Hashable, object] = {}
        self._known_weights: tuple[int, ...] = ()
        self.prefixes = PrefixCache(supernet, options.reward_cache_mb * 2**20)
        self.restart_reward_batches()

    # -- scores known for the current weights --
    def known_scores(self, with_buffers: bool = False) -> dict[Hashable, object]:
        """The scores computed since the supernet's parameters (and, `with_buffers`, its
        buffers: BN used as it stands) last changed; emptied when they do. Every in-place
        change of a tensor (optimizer step, load_state_dict) bumps its version counter."""
        tensors = [*self.supernet.parameters(), *(self.supernet.buffers() if with_buffers else ())]
        weights = tuple(t._version for t in tensors)
        if weights != self._known_weights:
            self._known, self._known_weights = {}, weights
            self.prefixes.clear()
        return self._known

    # -- the reward --
    def restart_reward_batches(self, used: int = 0) -> None:
        """Rewards read validation batches in order, from the first one again each epoch (or
        after the first `used`), repeating the split as often as needed."""
        self._val_batches = self.dist.cycle(self.data.val, used)
        self.reward_batches_used = used  # over all ranks: a checkpoint fits any world size

    def draw(self) -> list[tuple[Tensor, Tensor]]:
        """This rank's validation batches of the next reward (all candidates of a step share
        it): `reward_batches` of them per rank, or its share of the whole split."""
        n = self.options.reward_batches
        if n is None:
            self.reward_batches_used += len(self.data.val)
            return list(self.dist.split(self.data.val))
        self.reward_batches_used += n * self.dist.world_size
        return [next(self._val_batches) for _ in range(n)]

    def draw_key(self) -> Hashable:
        """What identifies the next draw's data: the whole split is the same every time, a
        draw of `reward_batches` is new data (its start in the repeated split)."""
        if self.options.reward_batches is None:
            return "whole split"
        return ("batches", self.reward_batches_used, self.options.reward_batches)

    def state_dict(self) -> dict:
        return {"reward_batches_used": self.reward_batches_used}

    def load_state_dict(self, state: dict) -> None:
        """Continue the epoch's reward batches where a checkpoint left them."""
        self.restart_reward_batches(state["reward_batches_used"])

    @torch.no_grad()
    def accuracies(
        self,
        archs: Sequence[Architecture],
        batches: Sequence,
        epoch: int,
        draw: Hashable | None = None,
    ) -> list[float]:
        """Accuracy of each of `archs` on `batches` with the shared weights.

        `reward_bn: recalibrate`: BN statistics re-estimated for each architecture on training
        data, then eval mode (the protocol of the full validation). `batch` (ENAS's original):
        train mode, BN on each reward batch's own statistics; kept to measure against.
        The candidates run back to back with their hits counted on the device: one host sync
        (and one all-reduce) for all of them. An architecture given twice is scored once; with
        `draw` (what identifies `batches`: `draw_key()`), so is one scored on that draw before
        with the same weights.
        """
        o, calibration = self.options, self.reward_calibration()
        known: dict[Hashable, object] = {}
        if draw is not None and o.reward_bn == "recalibrate":
            known = self.known_scores(with_buffers=not calibration)
        keys = [("reward", draw, epoch, calibration, *arch.items()) for arch in archs]
        todo = {k: arch for k, arch in zip(keys, archs, strict=True) if k not in known}
        with buffers_kept(self.supernet):
            hits = [self._hits(arch, batches, epoch, draw=draw) for arch in todo.values()]
        count = sum(len(y) for _, y in batches)
        correct = torch.stack(hits).tolist() if hits else []
        totals = self.dist.sum_floats([*correct, count])
        known.update(zip(todo, (c / max(totals[-1], 1) for c in totals[:-1]), strict=True))
        if archs:  # as after scoring them all in turn
            self.supernet.set_architecture(archs[-1])
        return [known[k] for k in keys]

    def reward_calibration(self) -> int:
        """Training batches that re-estimate BN statistics for a reward."""
        o = self.options
        n = o.reward_calibration_batches
        return o.bn_recalibration_batches if n is None else n

    def _hits(
        self, arch: Architecture, batches: Sequence, epoch: int, draw: Hashable | None = None
    ) -> Tensor:
        self.supernet.set_architecture(arch)
        calibration = self.reward_calibration()
        images = calibration * self.data.train.batch_size + sum(len(y) for _, y in batches)
        batch_bn = self.options.reward_bn != "recalibrate"
        if not batch_bn and calibration and self._by_prefix(draw, images):
            return self._prefix_hits(arch, batches, epoch, draw)
        if batch_bn:
            self.supernet.train()
        else:
            self.recalibrate_bn(self.supernet, epoch, self.options.reward_calibration_batches)
            self.supernet.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.placement.device)
        for x, y in batches:
            with self.placement.autocast():
                logits = self.supernet(self.placement.input(x))
            correct += (logits.argmax(1) == self.placement.target(y)).sum()
        if batch_bn:  # the forwards moved each rank's running statistics its own way
            self.dist.average_buffers(self.supernet)
        return correct

    def _by_prefix(self, key: Hashable | None, images: int) -> bool:
        """Whether scoring runs stage by stage, keeping what candidates share (scoring.prefixes):
        for known data (`key`), BN re-estimated, in one process (the ranks would each keep
        their own), where the stages' outputs for its `images` images fit in the cache."""
        o = self.options
        if key is None or o.reward_cache_mb <= 0 or self.dist.distributed:
            return False
        example = torch.zeros(1, *self.data.input_shape)
        return self.prefixes.fits(images, self.placement.input(example), self.placement.autocast)

    def _prefix_hits(
        self, arch: Architecture, batches: Sequence, epoch: int, draw: Hashable
    ) -> Tensor:
        calibration = self.reward_calibration()

        def inputs() -> Outputs:
            train = self.dist.first(self.data.train, epoch, calibration)
            return (
                [self.placement.input(x) for x, _ in train],
                [self.placement.input(x) for x, _ in batches],
            )

        key = (draw, epoch, calibration)
        logits = self.prefixes.logits(arch, key, inputs, self.placement.autocast)
        correct = torch.zeros((), dtype=torch.int64, device=self.placement.device)
        for out, (_, y) in zip(logits, batches, strict=True):
            correct += (out.argmax(1) == self.placement.target(y)).sum()
        return correct

    def cost(self, arch: Architecture) -> float:
        key = self.options.cost
        if COSTS[key].additive:
            return self.costs.cost(arch, key)
        # a measured cost (latency) differs from rank to rank: rank 0's counts on every rank
        return self.dist.from_main(lambda: self.costs.cost(arch, key))

    def reward(self, arch: Architecture, accuracy: float) -> float:
        """accuracy x (cost / target) ** w, and a hard budget's penalty (MnasNet)."""
        o, cost = self.options, self.cost(arch)
        reward = soft_constrained_reward(accuracy, cost, self.target_cost, o.cost_weight)
        if o.cost_budget is not None and cost > o.cost_budget:
            # MnasNet's hard constraint: below the budget the weight is 0, above it -1
            reward *= o.cost_budget / cost
        return reward

    def scores(self, archs: Sequence[Architecture], epoch: int) -> list[Score]:
        """Reward, accuracy and cost of each of `archs`, all on one draw of reward batches."""
        key = self.draw_key()
        accuracies = self.accuracies(archs, self.draw(), epoch, draw=key)
        return [
            Score(self.reward(arch, acc), acc, self.cost(arch))
            for arch, acc in zip(archs, accuracies, strict=True)
        ]

    # -- validation --
    @torch.no_grad()
    def recalibrate_bn(
        self, net: nn.Module, epoch: int, batches: int | None = None, dist: Dist | None = None
    ) -> None:
        """Re-estimate `net`'s BatchNorm running statistics on the first `batches` (default
        `bn_recalibration_batches`) training batches of `epoch` (shared by the ranks of `dist`,
        default the evaluator's).

        `net` is the supernet set to one architecture, or a child extracted from it.
        """
        batches = self.options.bn_recalibration_batches if batches is None else batches
        if batches <= 0:
            return
        dist = dist or self.dist
        with re_estimating(net) as bns:
            for x, _ in dist.first(self.data.train, epoch, batches):
                with self.placement.autocast():
                    net(self.placement.input(x))
            dist.reduce_bn_statistics(bns)

    @torch.no_grad()
    def evaluate(self, arch: Architecture, loader, epoch: int) -> tuple[float, float]:
        """(loss, accuracy) of `arch` on all of `loader`, eval mode after BN recalibration
        (computed once per set of weights; `loader` is known by identity, and one that cannot
        be, a list of batches, is scored every time)."""
        if not isinstance(loader, Hashable):  # a list of batches: scored every time
            with buffers_kept(self.supernet):
                return self._evaluate(arch, loader, epoch)
        calibration = self.options.bn_recalibration_batches
        known = self.known_scores(with_buffers=not calibration)
        key = ("evaluate", loader, epoch, calibration, *arch.items())
        if key not in known:
            with buffers_kept(self.supernet):
                known[key] = self._evaluate(arch, loader, epoch)
        self.supernet.set_architecture(arch)
        return known[key]

    def _evaluate(self, arch: Architecture, loader, epoch: int) -> tuple[float, float]:
        self.supernet.set_architecture(arch)
        total = Running()
        for logits, y in self._validation_logits(arch, loader, epoch):
            y = self.placement.target(y)
            logits = logits.float()
            total.add(F.cross_entropy(logits, y), (logits.argmax(1) == y).sum(), len(y))
        sums = self.dist.sum_floats([float(total.loss), float(total.correct), total.count])
        return Running(sums[0], sums[1], int(sums[2])).means()

    def _validation_logits(self, arch: Architecture, loader, epoch: int) -> Iterator:
        """(logits, labels) of this rank's share of `loader`, BN re-estimated for `arch`: by
        prefix (stage outputs kept, as rewards) where it can, else the whole network."""
        calibration = self.options.bn_recalibration_batches
        images = calibration * self.data.train.batch_size + getattr(loader, "num_samples", 0)
        if calibration and hasattr(loader, "num_samples") and self._by_prefix(loader, images):
            batches = list(loader)

            def inputs() -> Outputs:
                train = self.dist.first(self.data.train, epoch, calibration)
                return (
                    [self.placement.input(x) for x, _ in train],
                    [self.placement.input(x) for x, _ in batches],
                )

            key = ("evaluate", loader, epoch, calibration)
            logits = self.prefixes.logits(arch, key, inputs, self.placement.autocast)
            yield from zip(logits, (y for _, y in batches), strict=True)
            return
        self.recalibrate_bn(self.supernet, epoch)
        self.supernet.eval()
        for x, y in self.dist.split(loader):
            with self.placement.autocast():
                logits = self.supernet(self.placement.input(x))
            yield logits, y

    def trained_child(self, arch: Architecture, epoch: int) -> nn.Module:
        """A stand-alone copy of `arch` with BN statistics re-estimated for it, on the CPU.

        The supernet's own state is left as it was: what a checkpoint holds never depends on
        what was exported.
        """
        net = child(self.supernet, arch)
        self.recalibrate_bn(net, epoch, dist=LOCAL)  # rank 0 alone exports, on all the batches
        return net.cpu().eval()


@contextlib.contextmanager
def buffers_kept(net: nn.Module):
    """Restore `net`'s buffers (BN running statistics) on exit: scoring that re-estimates them
    for other architectures then leaves no trace in what a checkpoint holds."""
    saved = [b.detach().clone() for b in net.buffers()]
    try:
        yield net
    finally:
        with torch.no_grad():
            for b, kept in zip(net.buffers(), saved, strict=True):
                b.copy_(kept)
