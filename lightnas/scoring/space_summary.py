"""What `lightnas space` and the dashboard's Spaces page show of a space file: its decision
points, the number of architectures, the costs of its cheapest, base and largest architectures
(by OPs, from the supernet's cost table: exact, as every choice keeps the shapes) and its graph.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lightnas.models.graph import Space, analyse_space, build_supernet
from lightnas.models.graph.render import space_to_dot
from lightnas.scoring.cost_metrics import COSTS
from lightnas.scoring.costs import CostTable, extreme_architectures
from lightnas.search.space import Architecture, SearchSpace

COST_KEYS = ("ops", "params", "model_bits", "flops", "bops")
ROWS = ("cheapest", "base", "largest")


@dataclass
class SpaceSummary:
    space: Space
    input_shape: tuple[int, int, int]
    num_classes: int
    search_space: SearchSpace
    nodes: int
    architectures: dict[str, Architecture]  # cheapest, base, largest (by OPs)
    costs: dict[str, dict[str, float]]  # row -> cost key -> value
    dot: str

    @property
    def size(self) -> int:
        return self.search_space.size

    def as_dict(self) -> dict:
        """Plain JSON for the dashboard."""
        return {
            "name": self.space.name,
            "description": self.space.description,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "nodes": self.nodes,
            "size": str(self.size),  # may exceed JavaScript's exact integers
            "size_short": f"{self.size:.3g}",
            "points": [
                {"name": p.name, "kind": p.kind, "choices": list(p.choices)}
                for p in self.search_space
            ],
            "costs": {
                row: {k: COSTS[k].fmt(v) for k, v in costs.items()}
                for row, costs in self.costs.items()
            },
        }


def summarize_space(
    space: Space,
    num_classes: int = 10,
    stem: str = "thumbnail",
    input_shape: tuple[int, int, int] | None = None,
    compact: bool = True,
) -> SpaceSummary:
    """Check and build `space` (at `input_shape`, default its file's) and measure it; its graph
    draws every repetition of a repeated group (`compact=False`) or the first only."""
    if input_shape is not None:
        space = dataclasses.replace(space, input_shape=tuple(input_shape))
    done = analyse_space(space, num_classes, stem)
    supernet = build_supernet(space, num_classes, stem, space.input_shape[0])
    table = CostTable(supernet, space.input_shape)
    largest, cheapest = extreme_architectures(supernet.space, table, "ops")
    archs = {"cheapest": cheapest, "base": supernet.space.default(), "largest": largest}
    costs = {row: _costs(table, arch) for row, arch in archs.items()}
    size = supernet.space.size
    stats = {
        "decision points": str(len(supernet.space)),
        "architectures": f"{size:.3g}",
        "OPs": " - ".join(COSTS["ops"].fmt(costs[r]["ops"]) for r in ("cheapest", "largest")),
    }
    dot = space_to_dot(done, f"{space.name} (version {space.version})", stats, compact)
    return SpaceSummary(
        space, space.input_shape, num_classes, supernet.space, len(done.order), archs, costs, dot
    )


def _costs(table: CostTable, arch: Architecture) -> dict[str, float]:
    every = table.costs(arch)
    return {k: every[k] for k in COST_KEYS}


def format_summary(summary: SpaceSummary, source: str | None = None) -> str:
    """The text `lightnas space` prints: decision points, size and the cost range."""
    space = summary.space
    lines = [
        f"space: {space.name} (version {space.version}{', ' + source if source else ''})",
    ]
    if space.description:
        lines.append(f"  {space.description}")
    shape = "x".join(map(str, summary.input_shape))
    lines.append(
        f"{summary.nodes} nodes, input {shape}, {summary.num_classes} classes, "
        f"{len(summary.search_space)} decision points, {summary.size} architectures "
        f"({summary.size:.3g})"
    )
    width = max([len("decision point")] + [len(p.name) for p in summary.search_space])
    kind_width = max([len("kind")] + [len(p.kind) for p in summary.search_space])
    lines.append(f"{'decision point':<{width}}  {'kind':<{kind_width}}  choices (base first)")
    for p in summary.search_space:
        lines.append(f"{p.name:<{width}}  {p.kind:<{kind_width}}  {' | '.join(p.choices)}")
    lines.append(f"{'':<8}  {'OPs':>12}  {'params':>12}  {'size':>10}  {'FLOPs':>12}  {'BOPs':>12}")
    for row in ROWS:
        c = summary.costs[row]
        size = COSTS["model_bits"].fmt(c["model_bits"])
        lines.append(
            f"{row:<8}  {c['ops']:>12.6g}  {int(c['params']):>12d}  {size:>10}  "
            f"{int(c['flops']):>12d}  {int(c['bops']):>12d}"
        )
    return "\n".join(lines)
