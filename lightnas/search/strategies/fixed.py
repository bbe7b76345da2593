"""`fixed`: train one given architecture (what `lightnas retrain` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightnas.errors import ConfigError
from lightnas.search.space import Architecture, SearchSpace, load_architecture_file
from lightnas.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("fixed")
class FixedStrategy(Strategy):
    """Always the same architecture: it is the favourite, there are no candidates, and every
    training step trains it alone (no sampling rule, no in-place distillation)."""

    has_favourite = True
    favourite_label = "fixed"
    proposes_candidates = False
    shares_weights = False

    def __init__(self, space: SearchSpace, architecture: Architecture, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.architecture = architecture

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        super().check_config(cfg)
        path = cfg.search.architecture
        if not path:
            raise ConfigError("search.architecture (a JSON file) is required with strategy fixed")
        if path != "-" and not Path(path).is_file():
            raise ConfigError(f"search.architecture={path}: no such file")

    @classmethod
    def from_config(cls, space: SearchSpace, cfg: Any) -> FixedStrategy:
        return cls(space, load_architecture_file(cfg.search.architecture, space), cfg.seed)

    def sample(self, epoch: int) -> Architecture:
        return self.architecture

    def favourite(self) -> Architecture:
        return self.architecture

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        return []
