"""Scoring architectures: costs and rewards, accuracy on shared weights, BN re-estimation, and the
accuracy and costs of a stand-alone child. Used by the engine, the exporter, `lightnas evaluate`
and the benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.cost import COSTS, count_costs, measure_costs
from lightnas.distributed import LOCAL, Dist
from lightnas.errors import ArchitectureError, DataError
from lightnas.export import find_trainable, load_architecture, load_child, resolve_target
from lightnas.models import Supernet, child, create_supernet
from lightnas.search.space import Architecture
from lightnas.search.strategies.base import Score


# ---- costs and the reward ----------------------------------------------------------------------
def soft_constrained_reward(accuracy: float, cost: float, target: float, weight: float) -> float:
    """accuracy * (cost / target) ** weight (weight <= 0; 0 = accuracy only), MnasNet-style."""
    if weight == 0:
        return accuracy
    return accuracy * (cost / target) ** weight


class CostTable:
    """Costs of any architecture: additive metrics as a fixed part plus one contribution per
    decision point, the others measured on the extracted child and cached.

    Every choice of these supernets leaves the shapes of the rest unchanged, so params, bits,
    FLOPs and BOPs add up exactly (a test checks this against the extracted child). Each choice's
    contribution is counted on its extracted op alone, at the input shape it sees in the network:
    cheap even for MeliusNet-59.
    """

    def __init__(self, supernet: Supernet, input_shape: Sequence[int]) -> None:
        self.supernet = supernet
        self.input_shape = tuple(input_shape)
        self.additive = [k for k in COSTS.names() if COSTS[k].additive]
        default = supernet.space.default()
        shapes = self._choice_input_shapes(default)
        self.contrib: dict[tuple[str, str], dict[str, float]] = {}
        for name, module in supernet.choice_modules().items():
            for choice in module.point.choices:
                module.set_choice(choice)
                op = module.extract()
                self.contrib[name, choice] = self._measure(op, shapes[name]) if op else {}
            module.set_choice(default[name])
        total = self._measure(child(supernet, default), self.input_shape)
        self.fixed = {k: v - self._choices_total(default, k) for k, v in total.items()}
        self._measured: dict[tuple[Architecture, str], float] = {}

    def _measure(self, module: nn.Module, shape: Sequence[int]) -> dict[str, float]:
        return measure_costs(module, shape, self.additive)

    def _choice_input_shapes(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        shapes = {}

        def record(module, args) -> None:
            shapes.setdefault(module.point.name, tuple(args[0].shape[1:]))

        hooks = [
            m.register_forward_pre_hook(record) for m in self.supernet.choice_modules().values()
        ]
        self.supernet.set_architecture(arch)
        try:
            count_costs(self.supernet, self.input_shape)  # one forward of a zero batch
        finally:
            for h in hooks:
                h.remove()
        return shapes

    def _choices_total(self, arch: Architecture, key: str) -> float:
        return sum(self.contrib[n, c].get(key, 0) for n, c in arch.items())

    def costs(self, arch: Architecture) -> dict[str, float]:
        """Every additive cost of `arch`, by key."""
        return {k: v + self._choices_total(arch, k) for k, v in self.fixed.items()}

    def reference(self, key: str) -> float:
        """The cost `search.target_cost` defaults to: the base network's (first choice
        everywhere). A latency table normalises by its mean instead (lightnas.latency)."""
        return self.cost(self.supernet.space.default(), key)

    def cost(self, arch: Architecture, key: str) -> float:
        """The cost `key` of `arch` (a registered metric, e.g. ops, model_bits or latency)."""
        if COSTS[key].additive:
            return self.costs(arch)[key]
        if (arch, key) not in self._measured:
            device = next(self.supernet.parameters()).device
            net = child(self.supernet, arch).to(device)
            self._measured[arch, key] = measure_costs(net, self.input_shape, [key])[key]
        return self._measured[arch, key]


# ---- where and how tensors run -------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """The device, autocast and memory format a run computes with."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.preserve_format

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def input(self, x: Tensor) -> Tensor:
        return x.to(self.device, non_blocking=True, memory_format=self.memory_format)

    def target(self, y: Tensor) -> Tensor:
        return y.to(self.device, non_blocking=True)


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
REWARD_BN = ("recalibrate", "batch")


@dataclass(frozen=True)
class ScoringOptions:
    """What the search's reward and validation depend on (the `search` section's keys)."""

    reward_batches: int | None = None  # validation batches per reward; None = the whole split
    bn_recalibration_batches: int = 10
    reward_calibration_batches: int | None = 1  # None = bn_recalibration_batches
    reward_bn: str = "recalibrate"  # see REWARD_BN and Evaluator.accuracy
    cost: str = "ops"
    cost_weight: float = 0.0
    target_cost: float | None = None
    cost_budget: float | None = None  # hard budget: rewards of costlier architectures penalised


class Evaluator:
    """Rewards and validation of architectures on a supernet's shared weights.

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
        self.restart_reward_batches()

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

    def state_dict(self) -> dict:
        return {"reward_batches_used": self.reward_batches_used}

    def load_state_dict(self, state: dict) -> None:
        """Continue the epoch's reward batches where a checkpoint left them."""
        self.restart_reward_batches(state["reward_batches_used"])

    @torch.no_grad()
    def accuracies(
        self, archs: Sequence[Architecture], batches: Sequence, epoch: int
    ) -> list[float]:
        """Accuracy of each of `archs` on `batches` with the shared weights.

        `reward_bn: recalibrate`: BN statistics re-estimated for each architecture on training
        data, then eval mode (the protocol of the full validation). `batch` (ENAS's original):
        train mode, BN on each reward batch's own statistics; kept to measure against.
        The candidates run back to back with their hits counted on the device: one host sync
        (and one all-reduce) for all of them.
        """
        hits = [self._hits(arch, batches, epoch) for arch in archs]
        count = sum(len(y) for _, y in batches)
        correct = torch.stack(hits).tolist() if hits else []
        totals = self.dist.sum_floats([*correct, count])
        return [c / max(totals[-1], 1) for c in totals[:-1]]

    def _hits(self, arch: Architecture, batches: Sequence, epoch: int) -> Tensor:
        self.supernet.set_architecture(arch)
        batch_bn = self.options.reward_bn != "recalibrate"
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
        batches = self.draw()
        accuracies = self.accuracies(archs, batches, epoch)
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
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the recalibration batches
        net.train()
        for x, _ in dist.first(self.data.train, epoch, batches):
            with self.placement.autocast():
                net(self.placement.input(x))
        dist.reduce_bn_statistics(bns)
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum

    @torch.no_grad()
    def evaluate(self, arch: Architecture, loader, epoch: int) -> tuple[float, float]:
        """(loss, accuracy) of `arch` on all of `loader`, eval mode after BN recalibration."""
        self.supernet.set_architecture(arch)
        self.recalibrate_bn(self.supernet, epoch)
        self.supernet.eval()
        total = Running()
        for x, y in self.dist.split(loader):
            y = self.placement.target(y)
            with self.placement.autocast():
                logits = self.supernet(self.placement.input(x)).float()
            total.add(F.cross_entropy(logits, y), (logits.argmax(1) == y).sum(), len(y))
        sums = self.dist.sum_floats([float(total.loss), float(total.correct), total.count])
        return Running(sums[0], sums[1], int(sums[2])).means()

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


# ---- a stand-alone child --------------------------------------------------------------------
@torch.no_grad()
def accuracy(net: nn.Module, loader, num_classes: int, dist: Dist = LOCAL) -> dict:
    """top1 (and top5 when there are more than 5 classes) of `net` over `loader` (its batches
    shared by the ranks of `dist`)."""
    net.eval()
    device = next(net.parameters()).device
    k = min(5, num_classes)
    top1 = top5 = n = 0
    for x, y in dist.split(loader):
        x, y = x.to(device), y.to(device)
        hits = net(x).float().topk(k, dim=1).indices == y[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        n += len(y)
    top1, top5, n = (int(v) for v in dist.sum_floats([top1, top5, n]))
    if n == 0:
        raise DataError("the evaluation split is empty")
    return {"top1": top1 / n, "top5": top5 / n if num_classes > 5 else None, "samples": n}


def measure(
    net: nn.Module,
    loader,
    num_classes: int,
    input_shape: Sequence[int],
    device: torch.device,
    latency_batch: int = 1,
    latency_repeats: int = 20,
    dist: Dist = LOCAL,
) -> dict[str, object]:
    """Every registered cost of `net` (latency on `device`), plus its accuracy if `loader`.
    In a distributed run the ranks share the accuracy and rank 0 alone measures the costs (the
    others' rows have none): its latency is timed without the others competing."""
    net.to(device)
    row: dict[str, object] = {}
    if dist.is_main:
        timing = {"latency_batch": latency_batch, "latency_repeats": latency_repeats}
        row.update(measure_costs(net, input_shape, **timing))
    scores = accuracy(net, loader, num_classes, dist) if loader is not None else {}
    row["top1"], row["top5"] = scores.get("top1"), scores.get("top5")
    row["samples"] = scores.get("samples")
    return row


def base_network(
    info: dict, model: nn.Module, weights: Path, base: str | None
) -> tuple[nn.Module, str | None]:
    """The base network (first choice everywhere) of an exported child's family, and its
    weights file; None = untrained (costs only). `base` is a trained base network's folder or
    export."""
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    default = dict(supernet.space.default())
    if base is not None:
        path = Path(base)
        found = find_trainable(path) if path.is_dir() else resolve_target(base, None)[0]
        if dict(load_architecture(found)) != default:
            raise ArchitectureError(
                f"--base {base}: not the base network (first choice everywhere)"
            )
        return load_child(found), str(found)
    if dict(load_architecture(weights)) == default:
        return model, str(weights)  # the evaluated model is the base network
    return child(supernet, supernet.space.default()), None
