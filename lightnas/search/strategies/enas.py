"""`enas`: an LSTM controller trained with REINFORCE (Pham et al., 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from lightnas.search.controller import Controller, ControllerSample, Reinforce
from lightnas.search.space import Architecture, SearchSpace
from lightnas.search.strategies.base import STRATEGIES, Score, Strategy


@dataclass
class ControllerOptions:
    """The ENAS controller (an LSTM trained with REINFORCE)."""

    hidden_size: int = 64
    """LSTM hidden size."""
    temperature: float | None = 5.0
    """Logits are divided by this; null = 1."""
    tanh_constant: float | None = 2.5
    """Logits become tanh_constant * tanh(logits); null = no squashing."""
    entropy_weight: float = 1e-4
    """Weight of the entropy bonus in the REINFORCE loss."""
    baseline_decay: float = 0.95
    """Decay of the reward's moving-average baseline, in [0, 1)."""
    lr: float = 3.5e-4
    """The controller's Adam learning rate."""
    grad_clip: float | None = None
    """Clip the controller's gradient norm; null = no clipping."""


@dataclass(frozen=True)
class EnasOptions:
    """What the ENAS strategy is built from: `search.warmup_epochs` and the controller."""

    warmup_epochs: int = 0
    controller: ControllerOptions = field(default_factory=ControllerOptions)


@STRATEGIES.register("enas")
class EnasStrategy(Strategy):
    """Uniform sampling during warm-up, then the controller's samples; its greedy pick is the
    favourite."""

    favourite_label = "greedy"
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
        self.warmup_epochs = warmup_epochs
        with torch.random.fork_rng(devices=[]):  # the controller's init leaves torch's RNG alone
            torch.manual_seed(seed)
            self.controller = Controller(space, hidden_size, temperature, tanh_constant)
        self.trainer = Reinforce(self.controller, lr, entropy_weight, baseline_decay, grad_clip)
        self._buffer: list[Architecture] = []
        self._buffer_epoch = -1
        self._pending: list[ControllerSample] = []

    @classmethod
    def config_warnings(cls, options: EnasOptions, epochs: int) -> list[str]:
        warmup = options.warmup_epochs
        if warmup > 0 and warmup >= epochs:
            return [
                f"search.warmup_epochs={warmup} >= epochs={epochs}: the controller does not "
                "train in this run (resume it with more --epochs, or lower the warm-up)"
            ]
        return []

    @classmethod
    def from_options(cls, space: SearchSpace, options: EnasOptions, seed: int = 0) -> EnasStrategy:
        c = options.controller
        return cls(
            space,
            seed,
            options.warmup_epochs,
            c.hidden_size,
            c.temperature,
            c.tanh_constant,
            c.lr,
            c.entropy_weight,
            c.baseline_decay,
            c.grad_clip,
        )

    def sample(self, epoch: int) -> Architecture:
        if epoch < self.warmup_epochs:
            return self.space.sample(self.generator)
        # one batched LSTM pass per BUFFER architectures instead of one pass each; the buffer is
        # dropped whenever the policy changes (ask) and at every epoch, so runs that resume
        # at an epoch boundary draw exactly the same architectures
        if self._buffer_epoch != epoch or not self._buffer:
            self._buffer = self.controller.sample_many(self.BUFFER, self.generator)[::-1]
            self._buffer_epoch = epoch
        return self._buffer.pop()

    def wants_rewards(self, epoch: int) -> bool:
        return epoch >= self.warmup_epochs

    def ask(self, n: int) -> list[Architecture]:
        self._buffer = []
        self._pending = [self.controller.sample(self.generator) for _ in range(n)]
        return [s.architecture for s in self._pending]

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        samples, self._pending = self._pending, []
        if [s.architecture for s in samples] != list(candidates):
            raise ValueError("tell() must receive the candidates of the last ask(), in order")
        return self.trainer.step(samples, [s.reward for s in scores])

    def favourite(self) -> Architecture:
        return self.controller.greedy()

    def stats(self) -> dict:
        return {"probabilities": self.controller.probabilities()}

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "trainer": self.trainer.state_dict(),
            "buffer": [a.indices() for a in self._buffer],
            "buffer_epoch": self._buffer_epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.trainer.load_state_dict(state["trainer"])
        self._buffer = [self.space.from_indices(i) for i in state.get("buffer", [])]
        self._buffer_epoch = state.get("buffer_epoch", -1)
        self._pending = []
