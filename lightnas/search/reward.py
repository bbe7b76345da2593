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
    """Costs of any architecture as a fixed part plus one contribution per decision point.

    Every choice of these supernets leaves the shapes of the rest unchanged, so params, bits,
    FLOPs and BOPs add up exactly (a test checks this against the extracted child). Each choice's
    contribution is counted on its extracted op alone, at the input shape it sees in the network:
    cheap even for MeliusNet-59. Latency does not add up: it is measured on the child and cached.
    """

    def __init__(self, supernet: Supernet, input_shape: Sequence[int]) -> None:
        self.supernet = supernet
        self.input_shape = tuple(input_shape)
        default = supernet.space.default()
        shapes = self._choice_input_shapes(default)
        self.contrib: dict[tuple[str, str], dict[str, float]] = {}
        for name, module in supernet.choice_modules().items():
            for choice in module.point.choices:
                module.set_choice(choice)
                op = module.extract()
                self.contrib[name, choice] = _costs(op, shapes[name]) if op is not None else {}
            module.set_choice(default[name])
        total = _costs(child(supernet, default), self.input_shape)
        self.fixed = {k: v - self._choices_total(default, k) for k, v in total.items()}
        self._latency: dict[Architecture, float] = {}

    def _choice_input_shapes(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        shapes = {}

        def record(module, args) -> None:
            shapes.setdefault(module.point.name, tuple(args[0].shape[1:]))

        hooks = [
            m.register_forward_pre_hook(record) for m in self.supernet.choice_modules().values()
        ]
        self.supernet.set_architecture(arch)
        try:
            count_costs(self.supernet, self.input_shape)  # one forward of a zero batch
        finally:
            for h in hooks:
                h.remove()
        return shapes

    def _choices_total(self, arch: Architecture, key: str) -> float:
        return sum(self.contrib[n, c].get(key, 0) for n, c in arch.items())

    def costs(self, arch: Architecture) -> dict[str, float]:
        return {k: v + self._choices_total(arch, k) for k, v in self.fixed.items()}

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


def _costs(module, input_shape: Sequence[int]) -> dict[str, float]:
    costs = count_costs(module, input_shape)
    return {
        "params": costs.params,
        "model_bits": costs.model_bits,
        "flops": costs.flops,
        "bops": costs.bops,
        "ops": costs.ops,
    }
