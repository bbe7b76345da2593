"""The strategy contract: how a search proposes architectures and learns from their rewards.

In the style of optuna's samplers, a strategy is a small object behind an abstract interface; the
engine drives every strategy the same way and never asks which one it is. Per epoch:

1. `sample(epoch)` once per training batch: the architecture whose weights that batch trains;
2. when `wants_rewards(epoch)`: controller steps of `ask(n)` (candidates) -> scores measured by
   the engine (reward, accuracy, cost: `Score`) -> `tell(candidates, scores)` (the strategy
   learns, returns its statistics);
3. validation: `favourite()` (the strategy's own pick, if it has one) and the best of
   `candidates(epoch, n)` when `proposes_candidates`.

A strategy owns its warm-up and draws every random number from its own generator, so its
`state_dict` is all a resumed run needs. Register new strategies with `@STRATEGIES.register(name)`;
tests/search/test_strategy_conformance.py is the suite every registered strategy must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from lightnas.errors import ConfigError
from lightnas.registry import Registry
from lightnas.search.space import Architecture, SearchSpace


@dataclass(frozen=True)
class Score:
    """What the engine measured of one candidate: the reward and what it is made of."""

    reward: float
    accuracy: float
    cost: float


class Strategy(ABC):
    """Proposes architectures for the shared-weight phase, for rewards and for validation."""

    has_favourite: ClassVar[bool] = False
    """Has an architecture of its own (`favourite()`) that validation always scores."""
    favourite_label: ClassVar[str] = "favourite"
    """How results name the favourite, e.g. `val_acc_greedy` for ENAS."""
    proposes_candidates: ClassVar[bool] = True
    """Validation may rank `candidates(epoch, n)` (a fixed architecture has none to offer)."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Refuse a config this strategy cannot run (a `ConfigError` naming the key)."""
        if not cls.has_favourite and cfg.search.num_val_samples < 1:
            raise ConfigError(
                f"search.num_val_samples={cfg.search.num_val_samples}: strategy "
                f"{cfg.search.strategy} has no architecture of its own to validate, so it needs "
                "candidates; use >= 1"
            )

    @classmethod
    def config_warnings(cls, cfg: Any) -> list[str]:
        """Legal settings that probably do not do what the user wants, one line each."""
        return []

    @classmethod
    def from_config(cls, space: SearchSpace, cfg: Any) -> Strategy:
        """Build from a LightNAS config (its `seed`, `search` and strategy-specific sections)."""
        return cls(space, cfg.seed)

    @abstractmethod
    def sample(self, epoch: int) -> Architecture:
        """The architecture trained on the next batch of the shared-weight phase."""

    def wants_rewards(self, epoch: int) -> bool:
        """Whether the engine runs controller steps (ask / tell) in `epoch` (0-based)."""
        return False

    def ask(self, n: int) -> list[Architecture]:
        """`n` candidates whose rewards the engine measures and passes to `tell`."""
        return [self.space.sample(self.generator) for _ in range(n)]

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        """Learn from the scores of the last `ask`; returns statistics (reward, loss, ...)."""
        return {}

    def favourite(self) -> Architecture | None:
        """The strategy's own pick, validated every epoch; None if it has none."""
        return None

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        """`n` architectures for validation to rank on reward batches."""
        return [self.sample(epoch) for _ in range(n)]

    def stats(self) -> dict:
        """Extra state for tracking, e.g. {"probabilities": {point: [p, ...]}}."""
        return {}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "search.strategy")
