"""The documented home of the cost-metric extension point (README, "Extending LightNAS"):
`from lightnas.cost import Measured, register_cost`. The metrics live in
lightnas.scoring.cost_metrics; nothing inside lightnas imports this module."""

from lightnas.scoring.cost_metrics import COSTS, CostMetric, Measured, register_cost

__all__ = ["COSTS", "CostMetric", "Measured", "register_cost"]
