"""The search loop: shared-weight phase, controller phase, validation. It touches no files:
tracking, export and checkpointing hang off it as callbacks."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.config import Config
from lightnas.data import DataBundle
from lightnas.models import Supernet
from lightnas.search.reward import CostTable, soft_constrained_reward
from lightnas.search.space import Architecture
from lightnas.search.strategies import Strategy


class NonFiniteLossError(RuntimeError):
    pass


class Callback:
    """Hooks the engine calls; every method is optional."""

    def on_start(self, engine: Engine) -> None: ...
    def on_phase(self, engine: Engine, phase: str, total: int) -> None: ...
    def on_step(self, engine: Engine, phase: str, stats: dict) -> None: ...
    def on_phase_end(self, engine: Engine, phase: str) -> None: ...
    def on_epoch_end(self, engine: Engine, result: dict) -> None: ...
    def on_end(self, engine: Engine) -> None: ...


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


class Engine:
    def __init__(
        self,
        cfg: Config,
        supernet: Supernet,
        strategy: Strategy,
        data: DataBundle,
        device: torch.device,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.cfg = cfg
        self.supernet = supernet
        self.strategy = strategy
        self.data = data
        self.device = device
        self.callbacks = list(callbacks)
        self.costs = CostTable(supernet, data.input_shape)
        self.target_cost = cfg.search.target_cost or self.costs.cost(
            supernet.space.default(), cfg.search.cost
        )
        self.memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        supernet.to(device=device, memory_format=self.memory_format)
        self.optimizer = make_optimizer(cfg, supernet)
        # closed form in (epoch, cfg.epochs): a resume that raises `epochs` stays well defined
        floor = cfg.optim.min_lr / cfg.optim.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda e: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * e / self.cfg.epochs)),
        )
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.history: list[dict] = []
        self.best: dict | None = None

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        self._emit("on_start")
        for epoch in range(self.epoch, self.cfg.epochs):
            result = self.run_epoch(epoch)
            self.epoch = epoch + 1
            self.history.append(result)
            if self.best is None or result["reward"] > self.best["reward"]:
                self.best = {k: result[k] for k in ("epoch", "architecture", "val_acc", "reward")}
            with deferred_sigint():  # an epoch's files (metrics, checkpoint) land together
                self._emit("on_epoch_end", result)
        self._emit("on_end")

    def run_epoch(self, epoch: int) -> dict:
        started = time.perf_counter()
        search = self.cfg.search
        learn = self.strategy.learns and epoch >= search.warmup_epochs
        self.restart_reward_batches()
        controller: list[dict] = []
        train = Running()
        lr = self.optimizer.param_groups[0]["lr"]
        self.data.train.set_epoch(epoch)
        self._emit("on_phase", "train", len(self.data.train))
        for i, (x, y) in enumerate(self.data.train):
            arch = self.strategy.sample(epoch)
            loss, correct = self.train_step(arch, x, y)
            train.add(loss, correct, len(y))
            if i % 20 == 0 or i == len(self.data.train) - 1:
                mean_loss, mean_acc = train.means()
                if not math.isfinite(mean_loss):
                    raise NonFiniteLossError(
                        f"non-finite training loss at epoch {epoch} step {i}; stopping (the last "
                        "checkpoint is kept). Lower optim.lr or set optim.grad_clip."
                    )
                self._emit("on_step", "train", {"n": i + 1, "loss": mean_loss, "acc": mean_acc})
            if (
                learn
                and search.update_arch_frequency
                and (i + 1) % search.update_arch_frequency == 0
            ):
                controller.append(self.controller_phase(search.controller_steps))
        self._emit("on_phase_end", "train")
        if learn and not search.update_arch_frequency:
            controller.append(self.controller_phase(search.controller_steps))
        self.scheduler.step()
        train_loss, train_acc = train.means()
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(f"non-finite training loss in epoch {epoch}; stopping")
        result = {
            "epoch": epoch + 1,  # 1-based, as in the file names epoch_N
            "train_loss": train_loss,
            "train_acc": train_acc,
            "lr": lr,
            **self.controller_summary(controller),
            **self.validate(epoch),
        }
        result["time_s"] = time.perf_counter() - started
        return result

    # ---- shared-weight phase --------------------------------------------------------------
    def _autocast(self):
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _input(self, x: Tensor) -> Tensor:
        return x.to(self.device, non_blocking=True, memory_format=self.memory_format)

    def train_step(self, arch: Architecture, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        self.supernet.train()
        self.supernet.set_architecture(arch)
        x, y = self._input(x), y.to(self.device, non_blocking=True)
        with self._autocast():
            logits = self.supernet(x)
            loss = self.loss(logits.float(), y, x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.global_step += 1
        return loss, (logits.argmax(1) == y).sum()

    def loss(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Training loss of one batch; subclasses add terms (lightnas.distill.DistillEngine)."""
        return F.cross_entropy(logits, y)

    # ---- controller phase -----------------------------------------------------------------
    def restart_reward_batches(self) -> None:
        """Rewards read validation batches in order, from the first one again each epoch."""
        self._val_batches = self._cycle(self.data.val)

    @staticmethod
    def _cycle(loader) -> Iterator:
        while True:
            yield from loader

    @torch.no_grad()
    def batch_accuracy(self, arch: Architecture) -> float:
        """Accuracy of `arch` on the next validation batches, BN on batch statistics.

        Batch statistics avoid the running averages that mix all architectures; the running
        averages are re-estimated for one architecture before every full validation.
        """
        self.supernet.train()
        self.supernet.set_architecture(arch)
        correct, count = 0.0, 0
        for _ in range(self.cfg.search.reward_batches):
            x, y = next(self._val_batches)
            with self._autocast():
                logits = self.supernet(self._input(x))
            correct += float((logits.argmax(1) == y.to(self.device)).sum())
            count += len(y)
        return correct / max(count, 1)

    def reward(self, arch: Architecture, accuracy: float) -> float:
        cost = self.costs.cost(arch, self.cfg.search.cost)
        return soft_constrained_reward(
            accuracy, cost, self.target_cost, self.cfg.search.cost_weight
        )

    def controller_phase(self, steps: int) -> dict:
        self._emit("on_phase", "controller", steps)
        stats: list[dict] = []
        for i in range(steps):
            stats.append(
                self.strategy.update(
                    lambda a: self.reward(a, self.batch_accuracy(a)),
                    self.cfg.search.controller_batch,
                )
            )
            self._emit("on_step", "controller", {"n": i + 1, "reward": stats[-1]["reward"]})
        self._emit("on_phase_end", "controller")
        return {k: sum(s[k] for s in stats) / len(stats) for k in stats[0]} if stats else {}

    @staticmethod
    def controller_summary(phases: list[dict]) -> dict:
        keys = ("reward", "baseline", "entropy", "loss")
        if not phases:
            return {f"controller_{k}": None for k in keys}
        return {f"controller_{k}": sum(p[k] for p in phases) / len(phases) for k in keys}

    # ---- validation -----------------------------------------------------------------------
    @torch.no_grad()
    def recalibrate_bn(self, arch: Architecture, epoch: int) -> None:
        """Re-estimate BatchNorm running statistics for `arch` on a few training batches."""
        batches = self.cfg.search.bn_recalibration_batches
        if batches <= 0:
            return
        bns = [m for m in self.supernet.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the recalibration batches
        self.supernet.train()
        self.supernet.set_architecture(arch)
        self.data.train.set_epoch(epoch)
        for i, (x, _) in enumerate(self.data.train):
            if i >= batches:
                break
            with self._autocast():
                self.supernet(self._input(x))
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum

    @torch.no_grad()
    def evaluate(self, arch: Architecture, loader, epoch: int) -> tuple[float, float]:
        """(loss, accuracy) of `arch` on all of `loader`, eval mode after BN recalibration."""
        self.recalibrate_bn(arch, epoch)
        self.supernet.eval()
        self.supernet.set_architecture(arch)
        total = Running()
        for x, y in loader:
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.supernet(self._input(x)).float()
            total.add(F.cross_entropy(logits, y), (logits.argmax(1) == y).sum(), len(y))
        return total.means()

    def validate(self, epoch: int) -> dict:
        """Validate the strategy's favourite and the best of `num_val_samples` samples."""
        # a fixed strategy has nothing to sample: its one architecture is its favourite
        n = 0 if self.strategy.name == "fixed" else self.cfg.search.num_val_samples
        self._emit("on_phase", "valid", n + 2)
        results = {}
        favourite = self.strategy.favourite()
        if n > 0:
            with torch.no_grad():
                samples = [self.strategy.sample(epoch) for _ in range(n)]
            scored = [(self.reward(a, self.batch_accuracy(a)), i) for i, a in enumerate(samples)]
            results["sampled"] = samples[max(scored)[1]]
        if favourite is not None:
            results["greedy"] = favourite
        out: dict = {}
        best_key, best_reward = None, -math.inf
        for key, arch in results.items():
            loss, acc = self.evaluate(arch, self.data.val, epoch)
            reward = self.reward(arch, acc)
            out[f"val_acc_{key}"] = acc
            out[f"val_loss_{key}"] = loss
            self._emit("on_step", "valid", {"n": len(out) // 2, f"acc_{key}": acc})
            if reward > best_reward:
                best_key, best_reward = key, reward
        self._emit("on_phase_end", "valid")
        arch = results[best_key]
        costs = self.costs.costs(arch)
        return {
            **out,
            "val_acc": out[f"val_acc_{best_key}"],
            "val_loss": out[f"val_loss_{best_key}"],
            "reward": best_reward,
            "chosen": best_key,
            "cost": self.costs.cost(arch, self.cfg.search.cost),
            "ops": costs["ops"],
            "model_bits": costs["model_bits"],
            "params": costs["params"],
            "architecture": dict(arch),
        }

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history,
            "best": self.best,
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "rng": rng,
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # the LR is a function of (epoch, epochs): recompute it, `epochs` may have been raised
        for group, factor in zip(
            self.optimizer.param_groups, self.scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = group["initial_lr"] * factor(self.scheduler.last_epoch)
        self.strategy.load_state_dict(state["strategy"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = list(state["history"])
        self.best = state["best"]

    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)


@contextlib.contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C until the block has run, then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def make_optimizer(cfg: Config, net: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(
            net.parameters(), o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True
        )
    return torch.optim.Adam(net.parameters(), o.lr, weight_decay=o.weight_decay)
