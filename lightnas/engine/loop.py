"""The search loop, to be read top to bottom: every epoch runs the shared-weight steps (train the
supernet on the architectures of the strategy's training rule), the controller steps (the
strategy asks for candidates, the engine scores them, the strategy is told), the validation
(the strategy's favourite and the best of its candidates) and records the epoch. After the last
epoch, the final selection re-scores the best proposals. It touches no files: tracking, export
and checkpointing hang off it as callbacks.

What is not the loop lives beside it: records.py (an epoch's result, the pick so far),
state.py (the checkpoint format), optim.py (optimizer, `lr_at`), loss.py, sampler.py (the
architectures of a training step), selection.py (the final selection).

Every rank of a distributed run runs this same loop (lightnas.runtime.distributed): rank 0's
strategy decides the architectures, each rank trains on its shard of the batches, the counts are
summed over the ranks, and a stop is agreed on, so all ranks take every branch together."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightnas.engine.loss import LossFn, check_finite, cross_entropy, distillation_loss
from lightnas.engine.optim import lr_at, make_optimizer, set_lr
from lightnas.engine.records import Best, EpochProgress, EpochResult, Validation, mean_stats
from lightnas.engine.sampler import TrainingSampler
from lightnas.engine.selection import FinalSelection, Proposal, select_final
from lightnas.engine.state import engine_state, load_engine_state
from lightnas.models import Supernet
from lightnas.runtime.distributed import LOCAL, Dist
from lightnas.runtime.placement import Placement
from lightnas.runtime.signals import stop_signals
from lightnas.scoring.evaluator import Evaluator
from lightnas.search.space import Architecture
from lightnas.search.strategies import Strategy


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
        sampler: TrainingSampler,
        loss: LossFn = cross_entropy,
        callbacks: Sequence[Callback] = (),
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
        self.sampler = sampler
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
                self.best = Best.of_epoch(result)
                # an epoch's files (metrics, checkpoint) land together: a stop waits for them
                self._emit("on_epoch_end", result)
                self._emit("on_epoch_decorate", result)
                self._stop_if_interrupted()
            if self.final is None and self.cfg.search.final_top_k > 0:
                self.choose_final()
            self._emit("on_end")

    def run_epoch(self, epoch: int) -> EpochResult:
        started = time.perf_counter()
        search = self.cfg.search
        learn = self.strategy.wants_rewards(epoch)
        every = search.update_arch_frequency
        progress = self.progress
        if progress is None or progress.epoch != epoch:
            progress = self.progress = EpochProgress(epoch)
            self.evaluator.restart_reward_batches()
        lr = lr_at(epoch, self.cfg.epochs, self.cfg.optim.lr, self.cfg.optim.min_lr)
        set_lr(self.optimizer, lr)
        train = progress.train
        # `progress.step` counts the epoch's batches over all ranks: a step trains `world` of them
        world = self.dist.world_size
        end = progress.step + world * self.dist.steps(len(self.data.train), progress.step)
        self._emit("on_phase", "train", end)
        for i, (x, y) in self.dist.shard(self.data.train, epoch, start=progress.step):
            done = i + world
            train.add(*self.shared_step(epoch, x, y))
            if i % 20 < world or done == end:
                mean_loss, mean_acc = train.means()
                check_finite(mean_loss, epoch, i)
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
        check_finite(train_loss, epoch)
        v = self.validate(epoch)
        return EpochResult(
            epoch + 1,
            train_loss,
            train_acc,
            lr,
            mean_stats(progress.controller),
            v.validated,
            v.chosen,
            v.reward,
            v.cost,
            v.costs,
            v.architecture,
            time_s=progress.elapsed + time.perf_counter() - started,
            probabilities=self.choice_probabilities(),
            validated_costs=v.validated_costs,
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

    # ---- shared-weight phase --------------------------------------------------------------
    @property
    def fixed_architecture(self) -> bool:
        """Every step trains the same architecture (a retrain)."""
        return not self.strategy.shares_weights and self.sampler.rule.sampling == "controller"

    def training_architectures(self, epoch: int) -> list[Architecture]:
        """The architectures of the next step: rank 0's sampler draws them for every rank."""
        return self.dist.from_main(lambda: self.sampler.architectures(epoch, self.global_step))

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
        distill = self.sampler.rule.inplace_distill
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
    def validate(self, epoch: int) -> Validation:
        """Validate the strategy's favourite and the best of `num_val_samples` candidates."""
        s, n = self.strategy, self.cfg.search.num_val_samples
        picks: dict[str, Architecture] = {}
        favourite = self.dist.from_main(s.favourite)
        with torch.no_grad():
            candidates = self.dist.from_main(lambda: s.candidates(epoch, n)) if n else []
        self._emit("on_phase", "valid", len(candidates) + 2)
        if candidates:
            rewards = [score.reward for score in self.evaluator.scores(candidates, epoch)]
            best = max(range(len(candidates)), key=lambda i: (rewards[i], i))
            picks["sampled"] = candidates[best]
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
        arch, costs = picks[chosen], self.evaluator.costs
        validated_costs = {
            label: {"architecture": dict(a), **costs.costs(a)} for label, a in picks.items()
        }
        cost = self.evaluator.cost(arch)
        return Validation(
            validated, chosen, best_reward, cost, costs.costs(arch), dict(arch), validated_costs
        )

    # ---- final selection ------------------------------------------------------------------
    def choose_final(self) -> None:
        """The final selection protocol (lightnas.engine.selection); its winner becomes `best`."""
        k = self.cfg.search.final_top_k
        self._emit("on_phase", "final", k)
        self.final = select_final(self.evaluator, self.proposals, k, self.epoch - 1)
        self._emit("on_phase_end", "final")
        winner = self.final.best
        arch = Architecture(self.supernet.space, winner.architecture)
        self.best = Best.of_final(winner, self.evaluator.cost(arch))
        self._emit("on_final", self.final)

    # ---- state (its format: lightnas.engine.state) ----------------------------------------
    def state_dict(self) -> dict:
        return engine_state(self)

    def load_state_dict(self, state: dict) -> None:
        load_engine_state(self, state)

    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
