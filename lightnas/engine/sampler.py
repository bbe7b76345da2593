"""Which architectures a training batch trains: the strategy's training rule, carried out.

The rule (`TrainingRule`: a sampling and whether to distil in place) belongs to the strategy
(`Strategy.training_rule`): weight-sharing strategies default to a sandwich with in-place
distillation; `fixed` always trains its own architecture alone. The samplings:

- `controller`: the strategy's own sample (ENAS: the controller's; random: uniform; fixed: its
  architecture);
- `uniform`: a uniformly random architecture (SPOS, Guo et al. 2020);
- `sandwich`: the largest and the smallest architecture plus `k` uniform ones, their gradients
  summed into one step (BigNAS, Yu et al. 2020), optionally with in-place distillation: the
  largest child's predictions are the others' soft targets. With `every` > 1 only every
  `every`-th step is a whole sandwich; the steps between train the `k` uniform ones alone
  (distilled from the largest child's forward without grad, where distillation is on).
"""

from __future__ import annotations

import torch

from lightnas.scoring.costs import CostTable, extreme_architectures
from lightnas.search.space import Architecture
from lightnas.search.strategies import SAMPLINGS, Strategy, TrainingRule


class TrainingSampler:
    """The architectures of each training step; draws from its own generator."""

    def __init__(
        self,
        rule: TrainingRule,
        strategy: Strategy,
        costs: CostTable,
        cost_key: str = "ops",
        k: int = 1,
        seed: int = 0,
        every: int = 1,
    ) -> None:
        if rule.sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {rule.sampling!r}; valid: {', '.join(SAMPLINGS)}")
        self.rule = rule
        self.strategy = strategy
        self.space = strategy.space
        self.k, self.every = k, every
        self.largest, self.smallest = extreme_architectures(self.space, costs, cost_key)
        # its own stream: the strategy's draws stay what they are under any sampling
        self.generator = torch.Generator().manual_seed(seed + 0x5A4D)

    def architectures(self, epoch: int, step: int = 0) -> list[Architecture]:
        """The architectures of training step `step` (the engine's step count: which steps
        are whole sandwiches is a function of it, so a resumed run needs no state of its own)."""
        if self.rule.sampling == "controller":
            return [self.strategy.sample(epoch)]
        if self.rule.sampling == "uniform":
            return [self.space.sample(self.generator)]
        middle = [self.space.sample(self.generator) for _ in range(self.k)]
        if step % self.every:
            return middle
        return [self.largest, self.smallest, *middle]

    def children_per_step(self) -> float:
        """The architectures a step trains, on average over the rule's period."""
        if self.rule.sampling != "sandwich":
            return 1.0
        return self.k + 2 / self.every

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
