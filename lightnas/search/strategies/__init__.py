"""Search strategies behind one contract (`Strategy`), registered by name in `STRATEGIES`; each
is built from its own options (`EnasOptions`, `EvolutionSearchOptions`, ...)."""

from lightnas.search.strategies.base import SAMPLINGS, STRATEGIES, Score, Strategy, TrainingRule
from lightnas.search.strategies.enas import ControllerOptions, EnasOptions, EnasStrategy
from lightnas.search.strategies.evolution import (
    EvolutionOptions,
    EvolutionSearchOptions,
    EvolutionStrategy,
)
from lightnas.search.strategies.fixed import FixedStrategy
from lightnas.search.strategies.random_search import RandomStrategy

__all__ = [
    "SAMPLINGS",
    "STRATEGIES",
    "ControllerOptions",
    "EnasOptions",
    "EnasStrategy",
    "EvolutionOptions",
    "EvolutionSearchOptions",
    "EvolutionStrategy",
    "FixedStrategy",
    "RandomStrategy",
    "Score",
    "Strategy",
    "TrainingRule",
]
