"""Search strategies behind one contract (`Strategy`), registered by name in `STRATEGIES`."""

from lightnas.search.strategies.base import SAMPLINGS, STRATEGIES, Score, Strategy, TrainingRule
from lightnas.search.strategies.enas import EnasStrategy
from lightnas.search.strategies.evolution import EvolutionOptions, EvolutionStrategy
from lightnas.search.strategies.fixed import FixedStrategy
from lightnas.search.strategies.random_search import RandomStrategy

__all__ = [
    "SAMPLINGS",
    "STRATEGIES",
    "EnasStrategy",
    "EvolutionOptions",
    "EvolutionStrategy",
    "FixedStrategy",
    "RandomStrategy",
    "Score",
    "Strategy",
    "TrainingRule",
]
