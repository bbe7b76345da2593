"""Search spaces, the ENAS controller and search strategies."""

from lightnas.search.space import Architecture, DecisionPoint, SearchSpace

__all__ = ["Architecture", "DecisionPoint", "SearchSpace"]
