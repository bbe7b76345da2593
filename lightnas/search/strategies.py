"""Search strategies sharing one engine: `enas` (learned controller), `random`, `fixed`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lightnas.search.controller import Controller, Reinforce
from lightnas.search.space import Architecture, SearchSpace

RewardFn = Callable[[Architecture], float]


class Strategy:
    """Samples architectures for the shared-weight phase and proposes candidates to validate."""

    name = "base"
    learns = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, epoch: int) -> Architecture:
        return self.space.sample(self.generator)

    def update(self, reward_fn: RewardFn, batch: int) -> dict[str, float]:
        """One controller step; strategies that do not learn do nothing."""
        return {}

    def favourite(self) -> Architecture | None:
        """The strategy's own pick (ENAS: the greedy architecture), validated every epoch."""
        return None

    def stats(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class RandomStrategy(Strategy):
    """Uniform sampling with the same weight sharing (Li & Talwalkar's random-search baseline)."""

    name = "random"


class FixedStrategy(Strategy):
    """Train one given architecture."""

    name = "fixed"

    def __init__(self, space: SearchSpace, architecture: Architecture, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.architecture = architecture

    def sample(self, epoch: int) -> Architecture:
        return self.architecture

    def favourite(self) -> Architecture:
        return self.architecture


class EnasStrategy(Strategy):
    """An LSTM controller trained with REINFORCE; uniform sampling during warm-up."""

    name = "enas"
    learns = True
    BUFFER = 32

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        warmup_epochs: int = 0,
        hidden_size: int = 64,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        lr: float = 3.5e-4,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.95,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__(space, seed)
        torch.manual_seed(seed)  # controller init
        self.warmup_epochs = warmup_epochs
        self.controller = Controller(space, hidden_size, temperature, tanh_constant)
        self.trainer = Reinforce(self.controller, lr, entropy_weight, baseline_decay, grad_clip)
        self._buffer: list[Architecture] = []
        self._buffer_epoch = -1

    def sample(self, epoch: int) -> Architecture:
        if epoch < self.warmup_epochs:
            return self.space.sample(self.generator)
        # one batched LSTM pass per BUFFER architectures instead of one pass each; the buffer is
        # dropped whenever the policy changes (update) and at every epoch, so runs that resume
        # at an epoch boundary draw exactly the same architectures
        if self._buffer_epoch != epoch or not self._buffer:
            self._buffer = self.controller.sample_many(self.BUFFER, self.generator)[::-1]
            self._buffer_epoch = epoch
        return self._buffer.pop()

    def update(self, reward_fn: RewardFn, batch: int) -> dict[str, float]:
        self._buffer = []
        samples = [self.controller.sample(self.generator) for _ in range(batch)]
        rewards = [reward_fn(s.architecture) for s in samples]
        return self.trainer.step(samples, rewards)

    def favourite(self) -> Architecture:
        return self.controller.greedy()

    def stats(self) -> dict:
        return {"probabilities": self.controller.probabilities()}

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "trainer": self.trainer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._buffer = []
        self.controller.load_state_dict(state["controller"])
        self.trainer.load_state_dict(state["trainer"])
