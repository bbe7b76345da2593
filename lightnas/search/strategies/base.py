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
`state_dict` is all a resumed run needs. It also owns the rule of the shared-weight phase
(`training_rule`: which architectures each batch trains, lightnas.sampling carries it out): a
weight-sharing strategy trains a sandwich of children with in-place distillation unless the
config says otherwise; a strategy that does not share weights (`fixed`) trains its own
architecture every step, and a sampling rule set for it is refused. Register new strategies
with `@STRATEGIES.register(name)`; tests/search/test_strategy_conformance.py is the suite every
registered strategy must pass.
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

SAMPLINGS = ("controller", "uniform", "sandwich")
"""Architectures a training step trains: the strategy's own sample (one), a uniform one, or a
sandwich (the largest, the smallest and `search.sandwich_k` uniform ones)."""


@dataclass(frozen=True)
class TrainingRule:
    """What each step of the shared-weight phase trains."""

    sampling: str
    """One of SAMPLINGS."""
    inplace_distill: bool
    """The largest child's predictions are the soft targets of the others (BigNAS)."""


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
    shares_weights: ClassVar[bool] = True
    """Trains one supernet for many architectures, by `default_rule` or the configured one;
    False: trains its own sample every step, and no sampling rule applies."""
    default_rule: ClassVar[TrainingRule] = TrainingRule("sandwich", True)
    """The rule of `search.sampling: null` and `search.inplace_distill: null` (measured best:
    benchmarks/RESULTS.md, ranking.py)."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Refuse a config this strategy cannot run (a `ConfigError` naming the key)."""
        s = cfg.search
        if not cls.has_favourite and s.num_val_samples < 1:
            raise ConfigError(
                f"search.num_val_samples={s.num_val_samples}: strategy "
                f"{s.strategy} has no architecture of its own to validate, so it needs "
                "candidates; use >= 1"
            )
        if cls.shares_weights:
            return
        if s.sampling not in (None, "controller"):
            raise ConfigError(
                f"search.sampling={s.sampling!r}: strategy {s.strategy} trains only its own "
                "architecture, every step (sampling rules belong to weight-sharing strategies); "
                "valid: null or controller"
            )
        if s.inplace_distill:
            raise ConfigError(
                f"search.inplace_distill=true: strategy {s.strategy} trains only its own "
                "architecture, so there is no largest child to distil from; valid: null or false"
            )

    @classmethod
    def training_rule(cls, sampling: str | None, inplace_distill: bool | None) -> TrainingRule:
        """The rule of the shared-weight phase from `search.sampling` and
        `search.inplace_distill` (null: this strategy's own rule). A strategy that does not
        share weights trains its own sample, whatever they say (a config that sets them for it
        is refused by `check_config`; an inherited one is ignored)."""
        if not cls.shares_weights:
            return TrainingRule("controller", False)
        rule = cls.default_rule
        return TrainingRule(
            rule.sampling if sampling is None else sampling,
            rule.inplace_distill if inplace_distill is None else inplace_distill,
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
