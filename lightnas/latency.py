"""The documented home of the latency-function extension point (README, "The latency reward"):
`from lightnas.latency import Block, register_latency_function`. The latency table lives in
lightnas.scoring.latency; nothing inside lightnas imports this module."""

from lightnas.scoring.latency import LATENCY_FUNCTIONS, Block, register_latency_function

__all__ = ["LATENCY_FUNCTIONS", "Block", "register_latency_function"]
