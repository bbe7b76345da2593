"""The costs of any architecture of a supernet, from one measurement per (decision point,
choice)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lightnas.models import Supernet, child
from lightnas.scoring.cost_metrics import COSTS, count_costs, measure_costs
from lightnas.search.space import Architecture, SearchSpace


class CostTable:
    """Costs of any architecture: additive metrics as a fixed part plus one contribution per
    decision point, the others measured on the extracted child and cached.

    Every choice of these supernets leaves the shapes of the rest unchanged, so params, bits,
    FLOPs and BOPs add up exactly (a test checks this against the extracted child). Each choice's
    contribution is counted on its extracted op alone, at the input shape it sees in the network:
    cheap even for MeliusNet-59.
    """

    def __init__(self, supernet: Supernet, input_shape: Sequence[int]) -> None:
        self.supernet = supernet
        self.input_shape = tuple(input_shape)
        self.additive = [k for k in COSTS.names() if COSTS[k].additive]
        default = supernet.space.default()
        shapes = self._choice_input_shapes(default)
        self.contrib: dict[tuple[str, str], dict[str, float]] = {}
        for name, module in supernet.choice_modules().items():
            for choice in module.point.choices:
                module.set_choice(choice)
                op = module.extract()
                self.contrib[name, choice] = self._measure(op, shapes[name]) if op else {}
            module.set_choice(default[name])
        total = self._measure(child(supernet, default), self.input_shape)
        self.fixed = {k: v - self._choices_total(default, k) for k, v in total.items()}
        self._measured: dict[tuple[Architecture, str], float] = {}

    def _measure(self, module: nn.Module, shape: Sequence[int]) -> dict[str, float]:
        return measure_costs(module, shape, self.additive)

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
        """Every additive cost of `arch`, by key."""
        return {k: v + self._choices_total(arch, k) for k, v in self.fixed.items()}

    def reference(self, key: str) -> float:
        """The cost `search.target_cost` defaults to: the base network's (first choice
        everywhere). A latency table normalises by its mean instead (lightnas.scoring.latency)."""
        return self.cost(self.supernet.space.default(), key)

    def cost(self, arch: Architecture, key: str) -> float:
        """The cost `key` of `arch` (a registered metric, e.g. ops, model_bits or latency)."""
        if COSTS[key].additive:
            return self.costs(arch)[key]
        if (arch, key) not in self._measured:
            device = next(self.supernet.parameters()).device
            net = child(self.supernet, arch).to(device)
            self._measured[arch, key] = measure_costs(net, self.input_shape, [key])[key]
        return self._measured[arch, key]


def extreme_architectures(
    space: SearchSpace, costs: CostTable, key: str = "ops"
) -> tuple[Architecture, Architecture]:
    """(largest, smallest): at every decision point the choice that costs most / least."""
    largest, smallest = {}, {}
    for point in space:
        cost = {c: costs.contrib[point.name, c].get(key, 0.0) for c in point.choices}
        largest[point.name] = max(point.choices, key=lambda c: cost[c])
        smallest[point.name] = min(point.choices, key=lambda c: cost[c])
    return Architecture(space, largest), Architecture(space, smallest)
