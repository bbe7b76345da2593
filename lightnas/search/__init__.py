"""Search spaces, the ENAS controller and search strategies."""

from lightnas.search.controller import Controller, ControllerSample, Reinforce
from lightnas.search.space import Architecture, DecisionPoint, SearchSpace

__all__ = [
    "Architecture",
    "Controller",
    "ControllerSample",
    "DecisionPoint",
    "Reinforce",
    "SearchSpace",
]
