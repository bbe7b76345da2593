"""Architecture costs for the reward: an additive per-choice table, and the MnasNet-style reward."""

from __future__ import annotations

from collections.abc import Sequence

from lightnas.cost import count_costs, measure_latency
from lightnas.models import Supernet, child
from lightnas.search.space import Architecture

COST_KEYS = ("ops", "model_bits", "latency")


def soft_constrained_reward(accuracy: float, cost: float, target: float, weight: float) -> float:
    """accuracy * (cost / target) ** weight (weight <= 0; 0 = accuracy only)."""
    if weight == 0:
        return accuracy
    return accuracy * (cost / target) ** weight


class CostTable:
    """Costs of any architecture as base cost + one delta per non-default choice.

    Every choice of these supernets leaves the shapes of the rest unchanged, so params, bits,
    FLOPs and BOPs add up exactly (a test checks this against the extracted child). Latency is
    measured on the child and cached, since it does not add up.
    """

    def __init__(self, supernet: Supernet, input_shape: Sequence[int]) -> None:
        self.supernet = supernet
        self.input_shape = tuple(input_shape)
        space = supernet.space
        default = space.default()
        self.base = self._measure(default)
        self.deltas: dict[tuple[str, str], dict[str, float]] = {}
        for point in space:
            for choice in point.choices[1:]:
                changed = self._measure(Architecture(space, {**default, point.name: choice}))
                self.deltas[point.name, choice] = {k: changed[k] - self.base[k] for k in self.base}
        supernet.set_architecture(default)
        self._latency: dict[Architecture, float] = {}

    def _measure(self, arch: Architecture) -> dict[str, float]:
        costs = count_costs(child(self.supernet, arch), self.input_shape)
        return {
            "params": costs.params,
            "model_bits": costs.model_bits,
            "flops": costs.flops,
            "bops": costs.bops,
            "ops": costs.ops,
        }

    def costs(self, arch: Architecture) -> dict[str, float]:
        total = dict(self.base)
        for name, choice in arch.items():
            for key, value in self.deltas.get((name, choice), {}).items():
                total[key] += value
        return total

    def latency(self, arch: Architecture) -> float:
        if arch not in self._latency:
            device = next(self.supernet.parameters()).device
            net = child(self.supernet, arch).to(device)
            self._latency[arch] = measure_latency(net, self.input_shape, repeats=10)
        return self._latency[arch]

    def cost(self, arch: Architecture, key: str) -> float:
        """The configured cost of `arch`: ops, model_bits or latency (seconds)."""
        if key == "latency":
            return self.latency(arch)
        return self.costs(arch)[key]
