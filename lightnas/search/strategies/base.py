"""The strategy contract: how a search proposes architectures and learns from their rewards.

In the spirit of optuna's samplers, a strategy is a small object with three abstract methods and
optional hooks whose defaults fit a strategy that does not learn; the engine drives every
strategy the same way and never asks which one it is. Per epoch:

1. `sample(epoch)` once per training batch: the architecture whose weights that batch trains
   (abstract);
2. when `wants_rewards(epoch)` (hook; default never): controller steps of `ask(n)` (candidates,
   abstract) -> scores measured by the engine (reward, accuracy, cost: `Score`) ->
   `tell(candidates, scores)` (abstract: the strategy learns, returns its statistics);
3. validation: `favourite()` (hook: the strategy's own pick; default None, none) and the best
   of `candidates(epoch, n)` (hook: default `n` samples; [] where it has none to offer).

A strategy is built from its own options object (`from_options(space, options, seed)`, e.g.
`EnasOptions` beside the ENAS strategy), never from the whole config; `check_options` and
`config_warnings` judge those options before anything is built. It owns its warm-up and draws
every random number from its own generator, so its `state_dict` is all a resumed run needs. It
also owns the rule of the shared-weight phase (`training_rule`: which architectures each batch
trains, lightnas.engine.sampler carries it out): a weight-sharing strategy trains a sandwich of
children with in-place distillation unless the config says otherwise; a strategy that does not
share weights (`fixed`) trains its own architecture every step, and a sampling rule set for it
is refused (`check_rule`). Register new strategies with `@STRATEGIES.register(name)`;
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

    favourite_label: ClassVar[str] = "favourite"
    """How results name the favourite, e.g. `val_acc_greedy` for ENAS."""
    shares_weights: ClassVar[bool] = True
    """Trains one supernet for many architectures, by `default_rule` or the configured one;
    False: trains its own sample every step, and no sampling rule applies."""
    default_rule: ClassVar[TrainingRule] = TrainingRule("sandwich", True)
    """The rule of `search.sampling: null` and `search.inplace_distill: null` (measured best:
    benchmarks/RESULTS.md, ranking.py)."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.generator = torch.Generator().manual_seed(seed)

    # ---- building: from the strategy's own options ----------------------------------------
    @classmethod
    def from_options(cls, space: SearchSpace, options: Any, seed: int = 0) -> Strategy:
        """Build from this strategy's options (None for a strategy that has none)."""
        return cls(space, seed)

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Refuse options this strategy cannot run (a `ConfigError` naming the key)."""
        return None  # a hook: any options will do

    @classmethod
    def config_warnings(cls, options: Any, epochs: int) -> list[str]:
        """Legal settings that probably do not do what the user wants, one line each."""
        return []

    @classmethod
    def check_rule(cls, name: str, sampling: str | None, inplace_distill: bool | None) -> None:
        """Refuse `search.sampling` / `search.inplace_distill` set for a strategy that does not
        share weights (a `ConfigError` naming the key; `name`: the strategy's)."""
        if cls.shares_weights:
            return
        if sampling not in (None, "controller"):
            raise ConfigError(
                f"search.sampling={sampling!r}: strategy {name} trains only its own "
                "architecture, every step (sampling rules belong to weight-sharing strategies); "
                "valid: null or controller"
            )
        if inplace_distill:
            raise ConfigError(
                f"search.inplace_distill=true: strategy {name} trains only its own "
                "architecture, so there is no largest child to distil from; valid: null or false"
            )

    @classmethod
    def training_rule(cls, sampling: str | None, inplace_distill: bool | None) -> TrainingRule:
        """The rule of the shared-weight phase from `search.sampling` and
        `search.inplace_distill` (null: this strategy's own rule). A strategy that does not
        share weights trains its own sample, whatever they say (a config that sets them for it
        is refused by `check_rule`; an inherited one is ignored)."""
        if not cls.shares_weights:
            return TrainingRule("controller", False)
        rule = cls.default_rule
        return TrainingRule(
            rule.sampling if sampling is None else sampling,
            rule.inplace_distill if inplace_distill is None else inplace_distill,
        )

    # ---- the abstract methods -------------------------------------------------------------
    @abstractmethod
    def sample(self, epoch: int) -> Architecture:
        """The architecture trained on the next batch of the shared-weight phase."""

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """`n` candidates whose rewards the engine measures and passes to `tell`."""

    @abstractmethod
    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        """Learn from the scores of the last `ask`; returns statistics (reward, loss, ...)."""

    # ---- optional hooks -------------------------------------------------------------------
    def wants_rewards(self, epoch: int) -> bool:
        """Whether the engine runs controller steps (ask / tell) in `epoch` (0-based)."""
        return False

    def favourite(self) -> Architecture | None:
        """The strategy's own pick, validated every epoch; None if it has none (then
        validation needs candidates: `search.num_val_samples` >= 1)."""
        return None

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        """`n` architectures for validation to rank on reward batches ([]: none to offer)."""
        return [self.sample(epoch) for _ in range(n)]

    def stats(self) -> dict:
        """Extra state for tracking, e.g. {"probabilities": {point: [p, ...]}}."""
        return {}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "search.strategy")
