"""`fixed`: train one given architecture (what `lightnas retrain` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightnas.errors import ConfigError
from lightnas.search.space import Architecture, SearchSpace, load_architecture_file
from lightnas.search.strategies.base import STRATEGIES, Score, Strategy


@STRATEGIES.register("fixed")
class FixedStrategy(Strategy):
    """Always the same architecture: it is the favourite, there are no candidates, and every
    training step trains it alone (no sampling rule, no in-place distillation)."""

    favourite_label = "fixed"
    shares_weights = False

    def __init__(self, space: SearchSpace, architecture: Architecture, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.architecture = architecture

    @classmethod
    def check_options(cls, options: str | None) -> None:
        """`options`: search.architecture, the architecture's JSON file."""
        path = options
        if not path:
            raise ConfigError("search.architecture (a JSON file) is required with strategy fixed")
        if path != "-" and not Path(path).is_file():
            raise ConfigError(f"search.architecture={path}: no such file")

    @classmethod
    def from_options(cls, space: SearchSpace, options: str, seed: int = 0) -> FixedStrategy:
        return cls(space, load_architecture_file(options, space), seed)

    def sample(self, epoch: int) -> Architecture:
        return self.architecture

    def ask(self, n: int) -> list[Architecture]:
        return [self.architecture] * n

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        return {}  # nothing to learn

    def favourite(self) -> Architecture:
        return self.architecture

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        return []
