"""The search loop: shared-weight phase, controller phase, validation. It touches no files:
tracking, export and checkpointing hang off it as callbacks.

Every rank of a distributed run runs this same loop (lightnas.distributed): rank 0's strategy
decides the architectures, each rank trains on its shard of the batches, the counts are summed
over the ranks, and a stop is agreed on, so all ranks take every branch together."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.binary import QConv2d
from lightnas.distill import distillation_loss
from lightnas.distributed import LOCAL, Dist
from lightnas.errors import LightNASError
from lightnas.evaluation import Evaluator, Placement, Running
from lightnas.models import Supernet
from lightnas.sampling import TrainingSampler
from lightnas.search.space import Architecture
from lightnas.search.strategies import Strategy
from lightnas.selection import FinalSelection, Proposal, select_final
from lightnas.signals import STOP_SIGNALS

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]  # (logits, targets, inputs) -> loss
CONTROLLER_KEYS = ("reward", "baseline", "entropy", "loss")


class NonFiniteLossError(LightNASError):
    """The training loss became NaN or infinite: the run stops, its last checkpoint is kept."""


class Callback:
    """Hooks the engine calls; every method is optional."""

    def on_start(self, engine: Engine) -> None: ...
    def on_phase(self, engine: Engine, phase: str, total: int) -> None: ...
    def on_step(self, engine: Engine, phase: str, stats: dict) -> None: ...
    def on_batch_end(self, engine: Engine) -> None:
        """After each training batch (and its controller phase): the state is consistent."""

    def on_interrupt(self, engine: Engine) -> None:
        """Ctrl-C / SIGTERM arrived during training: the state at this batch is consistent."""

    def on_phase_end(self, engine: Engine, phase: str) -> None: ...
    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None: ...
    def on_epoch_decorate(self, engine: Engine, result: EpochResult) -> None:
        """After every callback's on_epoch_end, so after the epoch's checkpoint: decoration
        (rendered graphs), which must never cost the epoch however it fails."""

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        """The final selection is made (after the last epoch): `engine.best` is its winner."""

    def on_end(self, engine: Engine) -> None: ...


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


@dataclass
class Best:
    """The search's pick: the latest epoch's architecture until the final selection, then its
    winner (with its accuracy on the test split)."""

    epoch: int
    architecture: dict[str, str]
    val_acc: float
    reward: float
    selected_by: str = "latest epoch"
    test_acc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at(epoch: int, epochs: int, lr: float, min_lr: float = 0.0) -> float:
    """The learning rate of epoch `epoch` (0-based): cosine from `lr` down to `min_lr`.

    A pure function of the epoch, so a resumed run, or one whose `epochs` was raised, needs no
    scheduler state."""
    floor = min_lr / lr
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))


def cross_entropy(logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
    return F.cross_entropy(logits, y)


class Engine:
    """Runs epochs of a search (or of a fixed architecture's training) on one supernet."""

    def __init__(
        self,
        cfg,
        supernet: Supernet,
        strategy: Strategy,
        data,
        evaluator: Evaluator,
        placement: Placement,
        loss: LossFn = cross_entropy,
        callbacks: Sequence[Callback] = (),
        sampler: TrainingSampler | None = None,
        dist: Dist = LOCAL,
    ) -> None:
        self.cfg = cfg
        self.supernet = supernet
        self.strategy = strategy
        self.data = data
        self.evaluator = evaluator
        self.placement = placement
        self.loss = loss
        self.callbacks = list(callbacks)
        self.sampler = sampler or TrainingSampler("controller", strategy, evaluator.costs)
        self.dist = dist
        supernet.to(device=placement.device, memory_format=placement.memory_format)
        # what the training step runs: DDP around the supernet when there are several ranks
        self.model = dist.wrap(supernet, static=self.fixed_architecture)
        self.optimizer = make_optimizer(cfg.optim, supernet)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.history: list[EpochResult] = []
        self.best: Best | None = None
        self.progress: EpochProgress | None = None  # the epoch in progress
        self.proposals: list[Proposal] = []  # every architecture validated, for the final pick
        self.final: FinalSelection | None = None
        self.interrupted = False  # set by the first Ctrl-C / SIGTERM

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        with stop_signals(self):
            self._emit("on_start")
            for epoch in range(self.epoch, self.cfg.epochs):
                result = self.run_epoch(epoch)
                self.epoch = epoch + 1
                self.progress = None
                self.final = None  # a resumed run with more epochs chooses again
                self.history.append(result)
                self.best = Best(result.epoch, result.architecture, result.val_acc, result.reward)
                # an epoch's files (metrics, checkpoint) land together: a stop waits for them
                self._emit("on_epoch_end", result)
                self._emit("on_epoch_decorate", result)
                self._stop_if_interrupted()
            if self.final is None and self.cfg.search.final_top_k > 0:
                self.choose_final()
            self._emit("on_end")

    def choose_final(self) -> None:
        """The final selection protocol (lightnas.selection); its winner becomes `best`."""
        k = self.cfg.search.final_top_k
        self._emit("on_phase", "final", k)
        self.final = select_final(self.evaluator, self.proposals, k, self.epoch - 1)
        self._emit("on_phase_end", "final")
        w = self.final.best
        self.best = Best(
            w.proposed_epoch, w.architecture, w.val_acc, w.reward, "final selection", w.test_acc
        )
        self._emit("on_final", self.final)

    def run_epoch(self, epoch: int) -> EpochResult:
        started = time.perf_counter()
        search = self.cfg.search
        learn = self.strategy.wants_rewards(epoch)
        every = search.update_arch_frequency
        progress = self.progress
        if progress is None or progress.epoch != epoch:
            progress = self.progress = EpochProgress(epoch)
            self.evaluator.restart_reward_batches()
        lr = self.set_lr(epoch)
        train = progress.train
        # `progress.step` counts the epoch's batches over all ranks: a step trains `world` of them
        world = self.dist.world_size
        end = progress.step + world * self.dist.steps(len(self.data.train), progress.step)
        self._emit("on_phase", "train", end)
        for i, (x, y) in self.dist.shard(self.data.train, epoch, start=progress.step):
            done = i + world
            train.add(*self.shared_step(epoch, x, y))
            if i % 20 < world or done == end:
                self._check_finite(train, epoch, i)
                mean_loss, mean_acc = train.means()
                self._emit("on_step", "train", {"n": done, "loss": mean_loss, "acc": mean_acc})
            if learn and every and done // every > i // every:  # every `every` batches
                progress.controller.append(self.controller_phase(epoch, search.controller_steps))
            progress.step = done
            progress.elapsed += time.perf_counter() - started
            started = time.perf_counter()
            self._emit("on_batch_end")
            if self._stop_requested():
                self.dist.average_buffers(self.supernet)
                self._emit("on_interrupt")
                raise KeyboardInterrupt
        self.dist.average_buffers(self.supernet)  # each rank updated them from its own batches
        self._emit("on_phase_end", "train")
        if learn and not every:
            progress.controller.append(self.controller_phase(epoch, search.controller_steps))
        train_loss, train_acc = train.means()
        self._check_finite(train, epoch)
        validation = self.validate(epoch)
        return EpochResult(
            epoch=epoch + 1,
            train_loss=train_loss,
            train_acc=train_acc,
            lr=lr,
            controller=mean_stats(progress.controller),
            **validation,
            time_s=progress.elapsed + time.perf_counter() - started,
            probabilities=self.choice_probabilities(),
        )

    def choice_probabilities(self) -> dict[str, dict[str, float]]:
        """The strategy's current choice probabilities by decision point and choice."""
        probs = self.strategy.stats().get("probabilities", {})
        space = self.supernet.space
        return {k: dict(zip(space[k].choices, p, strict=True)) for k, p in probs.items()}

    def _stop_if_interrupted(self) -> None:
        if self._stop_requested():
            raise KeyboardInterrupt

    def _stop_requested(self) -> bool:
        """Whether Ctrl-C / SIGTERM reached any rank: then all stop at this safe point."""
        self.interrupted = self.dist.any(self.interrupted)
        return self.interrupted

    def set_lr(self, epoch: int) -> float:
        o = self.cfg.optim
        lr = lr_at(epoch, self.cfg.epochs, o.lr, o.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _check_finite(self, train: Running, epoch: int, step: int | None = None) -> None:
        if not math.isfinite(train.means()[0]):
            where = f"epoch {epoch + 1}" + ("" if step is None else f" step {step + 1}")
            raise NonFiniteLossError(
                f"non-finite training loss at {where}; stopping (the last checkpoint is kept). "
                "Lower optim.lr or set optim.grad_clip."
            )

    # ---- shared-weight phase --------------------------------------------------------------
    @property
    def fixed_architecture(self) -> bool:
        """Every step trains the same architecture (a retrain)."""
        return not self.strategy.proposes_candidates and self.sampler.mode == "controller"

    def training_architectures(self, epoch: int) -> list[Architecture]:
        """The architectures of the next step: rank 0's sampler draws them for every rank."""
        return self.dist.from_main(lambda: self.sampler.architectures(epoch))

    def shared_step(self, epoch: int, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, int]:
        """One step of the shared-weight phase; its mean loss, correct count and sample count
        over every rank's batch."""
        loss, correct = self.train_step(self.training_architectures(epoch), x, y)
        return self.dist.step_totals(loss, correct, len(y))

    def train_step(
        self, archs: Sequence[Architecture], x: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One optimizer step on the summed gradients of `archs` (one, or a sandwich, averaged
        over the ranks); the mean loss and the correct count of the first, on this rank."""
        self.supernet.train()
        x, y = self.placement.input(x), self.placement.target(y)
        self.optimizer.zero_grad(set_to_none=True)
        distill = self.cfg.search.inplace_distill
        largest = self.sampler.largest
        losses, correct = [], None
        with self.dist.synced_batchnorm(self.supernet, self.cfg.distributed.sync_bn):
            teacher = self.inplace_teacher(archs, x) if distill else None
            for k, arch in enumerate(archs):
                soft = teacher if arch != largest else None
                logits, loss = self.child_backward(arch, x, y, soft, last=k == len(archs) - 1)
                losses.append(loss)
                if distill and arch == largest:
                    teacher = logits.detach().float()  # the soft targets of the other children
                correct = (logits.argmax(1) == y).sum() if correct is None else correct
        if self.cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.global_step += 1
        return torch.stack(losses).mean(), correct

    def child_backward(
        self, arch: Architecture, x: Tensor, y: Tensor, soft: Tensor | None, last: bool
    ) -> tuple[Tensor, Tensor]:
        """Forward and backward of one child of the step: its logits and loss. The ranks
        average the gradients once, in the step's `last` backward."""
        self.supernet.set_architecture(arch)
        with self.dist.accumulating(self.model, not last):
            with self.placement.autocast():
                logits = self.model(x)
            loss = self.child_loss(logits.float(), y, x, soft)
            loss.backward()
        return logits, loss.detach()

    def inplace_teacher(self, archs: Sequence[Architecture], x: Tensor) -> Tensor | None:
        """The largest child's logits for in-place distillation: None when the step trains the
        largest first (it provides them), else from a forward without grad."""
        if archs[0] == self.sampler.largest:
            return None
        self.supernet.set_architecture(self.sampler.largest)
        with torch.no_grad(), self.placement.autocast():
            return self.supernet(x).float()

    def child_loss(self, logits: Tensor, y: Tensor, x: Tensor, soft: Tensor | None) -> Tensor:
        """The run's loss, or (in-place distillation) the KL to the largest child's output."""
        if soft is None:
            return self.loss(logits, y, x)
        return distillation_loss(logits, soft, y, alpha=1.0, temperature=1.0)

    # ---- controller phase -----------------------------------------------------------------
    def controller_step(self, epoch: int) -> dict:
        """Ask for candidates, score them all on the same reward batches, tell the scores (the
        strategy lives on rank 0; every rank scores its share of the batches)."""
        ask = self.cfg.search.controller_batch
        candidates = self.dist.from_main(lambda: self.strategy.ask(ask))
        scores = self.evaluator.scores(candidates, epoch)
        return self.dist.from_main(lambda: self.strategy.tell(candidates, scores))

    def controller_phase(self, epoch: int, steps: int) -> dict:
        """`steps` ask / tell rounds; the mean of their statistics ({} when none ran)."""
        self._emit("on_phase", "controller", steps)
        stats: list[dict] = []
        for i in range(steps):
            stats.append(self.controller_step(epoch))
            self._emit("on_step", "controller", {"n": i + 1, "reward": stats[-1].get("reward")})
            self._stop_if_interrupted()
        self._emit("on_phase_end", "controller")
        return mean_stats(stats)

    # ---- validation -----------------------------------------------------------------------
    def validate(self, epoch: int) -> dict:
        """Validate the strategy's favourite and the best of `num_val_samples` candidates."""
        s = self.strategy
        n = self.cfg.search.num_val_samples if s.proposes_candidates else 0
        picks: dict[str, Architecture] = {}
        self._emit("on_phase", "valid", n + 2)
        favourite = self.dist.from_main(s.favourite)
        if n > 0:
            with torch.no_grad():
                candidates = self.dist.from_main(lambda: s.candidates(epoch, n))
            rewards = [score.reward for score in self.evaluator.scores(candidates, epoch)]
            picks["sampled"] = candidates[max(range(n), key=lambda i: (rewards[i], i))]
        if favourite is not None:
            picks[s.favourite_label] = favourite
        if not picks:
            raise ValueError("validation has no architecture: the strategy proposed none")
        validated: dict[str, dict[str, float]] = {}
        chosen, best_reward = "", -math.inf
        for label, arch in picks.items():
            loss, acc = self.evaluator.evaluate(arch, self.data.val, epoch)
            reward = self.evaluator.reward(arch, acc)
            validated[label] = {"acc": acc, "loss": loss}
            self.proposals.append(Proposal(epoch + 1, label, dict(arch), reward))
            self._emit("on_step", "valid", {"n": len(validated), f"acc_{label}": acc})
            self._stop_if_interrupted()
            if reward > best_reward:
                chosen, best_reward = label, reward
        self._emit("on_phase_end", "valid")
        arch = picks[chosen]
        costs = self.evaluator.costs
        return {
            "validated": validated,
            "chosen": chosen,
            "reward": best_reward,
            "cost": self.evaluator.cost(arch),
            "costs": self.evaluator.costs.costs(arch),
            "architecture": dict(arch),
            "validated_costs": {
                label: {"architecture": dict(a), **costs.costs(a)} for label, a in picks.items()
            },
        }

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": [r.to_row() for r in self.history],
            "best": None if self.best is None else self.best.as_dict(),
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "rng": rng,
            "config": self.cfg.to_dict(),
            "progress": None if self.progress is None else self._progress_state(),
            "proposals": [asdict(p) for p in self.proposals],
            "final": None if self.final is None else self.final.to_dict(),
            "sampler": self.sampler.state_dict(),
        }

    def _progress_state(self) -> dict:
        return {**self.progress.state_dict(), "evaluator": self.evaluator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = [EpochResult.from_row(r) for r in state["history"]]
        self.best = None if state.get("best") is None else Best(**state["best"])
        self.proposals = [Proposal(**p) for p in state.get("proposals", [])]
        final = state.get("final")
        self.final = None if final is None else FinalSelection.from_dict(final)
        if state.get("sampler") is not None:
            self.sampler.load_state_dict(state["sampler"])
        progress = state.get("progress")
        self.progress = None
        if progress is not None:
            self.progress = EpochProgress.from_state(progress, self.placement.device)
            self.evaluator.load_state_dict(progress["evaluator"])

    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)


def mean_stats(stats: Sequence[dict]) -> dict:
    """Key-wise mean of statistics dicts ({} for none)."""
    stats = [s for s in stats if s]
    if not stats:
        return {}
    return {k: sum(s[k] for s in stats) / len(stats) for k in stats[0]}


@contextlib.contextmanager
def stop_signals(engine: Engine) -> Iterator[None]:
    """Ctrl-C or SIGTERM asks the engine to stop at its next safe point (a training batch saves
    its state first); a second one stops at once, keeping the last checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        if engine.interrupted:
            raise KeyboardInterrupt
        engine.interrupted = True

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv / linear weights only: not on BatchNorm, biases or latent binary
    weights (whose sign is all that is used; BMXNet set wd_mult=0 on them)."""
    decay, no_decay, seen = [], [], set()
    for module in net.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            latent = isinstance(module, QConv2d) and module.w_bits < 32
            exempt = isinstance(module, nn.modules.batchnorm._BatchNorm) or name == "bias"
            (no_decay if latent or exempt else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(optim, net: nn.Module) -> torch.optim.Optimizer:
    """The supernet's optimizer from the `optim` config section."""
    groups = parameter_groups(net, optim.weight_decay)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, optim.lr, momentum=optim.momentum, nesterov=True)
    return torch.optim.Adam(groups, optim.lr)
