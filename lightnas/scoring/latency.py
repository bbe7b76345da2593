"""The original LightNAS's latency reward: a per-op latency table and its cost metric.

With `search.cost: latency_table` the run measures, once, every (decision point, choice) of its
supernet on the target device: the extracted op alone, at the input shape it sees in the
network, in eval mode, the median of `repeats` timed forward passes after `warmup` untimed ones.
A choice that removes its block (`identity`, `skip`) costs 0. An architecture's latency is the sum
of its choices' entries, and the reward is the original's

    reward = accuracy * (mean_latency / latency) ** -w    (w = search.cost_weight <= 0)

where mean_latency sums, over the decision points, the mean latency of each point's choices;
LightNAS's `accuracy * (cost / target) ** w` with cost = latency and target = mean_latency.

The table is written to the training folder as `latency_table.csv` (exact floats) and read back on
resume, so a resumed latency-aware search continues bit-exactly. `search.latency_table.csv`
uses a table measured elsewhere (say, on the deployment device) instead of measuring.

Analytic latencies replace the measurement per decision-point kind, as the original's
`latency_function` did: register `fn(block: Block) -> seconds` with
`@register_latency_function("dense")` in a module you import, or name it in the config,
`search.latency_table.functions: {dense: "my_package.my_module:dense_latency"}`.
"""

from __future__ import annotations

import csv
import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from lightnas.errors import ConfigError
from lightnas.models import Supernet
from lightnas.registry import Registry
from lightnas.runtime.fileio import write_atomic
from lightnas.scoring.cost_metrics import LATENCY_TABLE, measure_latency
from lightnas.scoring.costs import CostTable
from lightnas.search.space import Architecture, DecisionPoint, SearchSpace

OPTIONS_KEY = "search.latency_table"
CSV_FIELDS = ("decision_point", "kind", "choice", "seconds", "source")
REMOVED = "removed (no op)"


@dataclass
class LatencyTableOptions:
    """How the latency table of `search.cost: latency_table` is made."""

    repeats: int = 20
    """Timed forward passes per (decision point, choice); the median is the entry."""
    warmup: int = 3
    """Untimed forward passes before the timed ones."""
    batch_size: int = 1
    """Batch size of the timed forward passes."""
    csv: str | None = None
    """A latency_table.csv to use instead of measuring (e.g. one measured on the target device)."""
    functions: dict[str, str] = field(default_factory=dict)
    """Analytic latencies per decision-point kind, e.g. {dense: "my_module:dense_latency"}."""


@dataclass(frozen=True)
class Block:
    """What a latency function is given: one choice of one decision point, extracted."""

    point: DecisionPoint
    choice: str
    op: nn.Module
    """The choice's standalone module (on the run's device, eval mode)."""
    input_shape: tuple[int, ...]
    """(C, H, W) of the op's input in the network."""
    batch_size: int
    device: torch.device


LatencyFunction = Callable[[Block], float]
LATENCY_FUNCTIONS: Registry[LatencyFunction] = Registry(
    "latency function", f"{OPTIONS_KEY}.functions"
)


def register_latency_function(kind: str) -> Callable[[LatencyFunction], LatencyFunction]:
    """Decorator: `fn(block) -> seconds` gives the latency of every decision point of `kind`."""
    return LATENCY_FUNCTIONS.register(kind)


# ---- the options ------------------------------------------------------------------------------
def check_options(options: LatencyTableOptions) -> None:
    """One-line ConfigErrors for bad values (the function specs are imported here)."""
    for key, value, least in (
        ("repeats", options.repeats, 1),
        ("warmup", options.warmup, 0),
        ("batch_size", options.batch_size, 1),
    ):
        if value < least:
            raise ConfigError(f"{OPTIONS_KEY}.{key}={value} must be >= {least}")
    if options.csv is not None and not Path(options.csv).is_file():
        raise ConfigError(f"{OPTIONS_KEY}.csv={options.csv!r}: no such file")
    for kind, spec in options.functions.items():
        import_function(kind, spec)


def import_function(kind: str, spec: str) -> LatencyFunction:
    """The function named by "module:function"."""
    key = f"{OPTIONS_KEY}.functions.{kind}"
    module_name, sep, name = str(spec).partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"{key}={spec!r} is not valid; valid: 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{key}={spec!r}: cannot import {module_name} ({err})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"{key}={spec!r}: {module_name} has no function {name}")
    return function


def latency_functions(
    options: LatencyTableOptions, kinds: Iterable[str]
) -> dict[str, tuple[LatencyFunction, str]]:
    """{kind: (function, its name)}: the config's, then the registered ones; others measure."""
    kinds = sorted(set(kinds))
    chosen = {k: (LATENCY_FUNCTIONS[k], f"registered {k}") for k in kinds if k in LATENCY_FUNCTIONS}
    for kind, spec in options.functions.items():
        if kind not in kinds:
            raise ConfigError(
                f"{OPTIONS_KEY}.functions: no decision point is of kind {kind!r}; "
                f"valid kinds: {', '.join(kinds)}"
            )
        chosen[kind] = (import_function(kind, spec), spec)
    return chosen


# ---- the table --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """The latency of one choice at one decision point."""

    point: str
    kind: str
    choice: str
    seconds: float
    source: str  # "measured on cpu", a latency function's name, or REMOVED


class LatencyTable:
    """Seconds per (decision point, choice) of a search space."""

    def __init__(self, space: SearchSpace, entries: Iterable[Entry]) -> None:
        self.space = space
        self.entries = {(e.point, e.choice): e for e in entries}
        expected = {(p.name, c) for p in space for c in p.choices}
        missing = sorted(expected - self.entries.keys())
        extra = sorted(self.entries.keys() - expected)
        if missing or extra:
            point, choice = (missing or extra)[0]
            what = "has no entry for" if missing else "has an entry for an unknown"
            raise ConfigError(
                f"the latency table does not fit the search space {space.name!r}: it {what} "
                f"{point} / {choice} ({len(missing)} missing, {len(extra)} unknown)"
            )

    def seconds(self, point: str, choice: str) -> float:
        return self.entries[point, choice].seconds

    def latency(self, arch: Mapping[str, str]) -> float:
        """The architecture's latency: the sum of its choices' entries."""
        return math.fsum(self.seconds(p, c) for p, c in arch.items())

    def mean(self, point: DecisionPoint) -> float:
        return math.fsum(self.seconds(point.name, c) for c in point.choices) / len(point.choices)

    def reference(self) -> float:
        """The original's normalisation: the sum over decision points of their choices' mean."""
        return math.fsum(self.mean(p) for p in self.space)

    # -- files --
    def write_csv(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(CSV_FIELDS)
                for e in self.entries.values():
                    # repr: the shortest text that reads back as the same float, bit for bit
                    out.writerow([e.point, e.kind, e.choice, repr(e.seconds), e.source])

        write_atomic(Path(path), write)

    @classmethod
    def read_csv(cls, path: Path, space: SearchSpace) -> LatencyTable:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            entries = [
                Entry(r["decision_point"], r["kind"], r["choice"], float(r["seconds"]), r["source"])
                for r in rows
            ]
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"{path} is not a latency table (columns {', '.join(CSV_FIELDS)}): {err}"
            ) from None
        try:
            return cls(space, entries)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    # -- views --
    def rows(self, arch: Mapping[str, str]) -> list[dict]:
        """One row per decision point: the chosen choice's latency and the point's mean."""
        return [
            {
                "decision_point": p.name,
                "choice": arch[p.name],
                "seconds": self.seconds(p.name, arch[p.name]),
                "mean_seconds": self.mean(p),
                "source": self.entries[p.name, arch[p.name]].source,
            }
            for p in self.space
        ]

    def markdown(self, arch: Mapping[str, str]) -> str:
        """The table for TensorBoard's text tab, the architecture's choices marked."""
        lines = [
            "| decision point | choice | latency (ms) | mean of its choices (ms) |",
            "|---|---|---|---|",
        ]
        for r in self.rows(arch):
            ms, mean = r["seconds"] * 1e3, r["mean_seconds"] * 1e3
            lines.append(f"| {r['decision_point']} | {r['choice']} | {ms:.4g} | {mean:.4g} |")
        total, ref = self.latency(arch) * 1e3, self.reference() * 1e3
        lines.append(f"| **total** | | **{total:.4g}** | **{ref:.4g}** |")
        sources = sorted({e.source for e in self.entries.values()})
        return "\n".join(lines) + f"\n\nsources: {'; '.join(sources)}"


def format_rows(rows: Sequence[Mapping]) -> str:
    """A narrow text table of `LatencyTable.rows` (for `lightnas evaluate`)."""
    width = max([len("decision point")] + [len(r["decision_point"]) for r in rows])
    choice = max([len("choice")] + [len(r["choice"]) for r in rows])
    lines = [f"{'decision point':<{width}}  {'choice':<{choice}}  {'ms':>9}  {'mean ms':>9}"]
    for r in rows:
        ms, mean = r["seconds"] * 1e3, r["mean_seconds"] * 1e3
        lines.append(
            f"{r['decision_point']:<{width}}  {r['choice']:<{choice}}  {ms:9.4g}  {mean:9.4g}"
        )
    total = math.fsum(r["seconds"] for r in rows) * 1e3
    ref = math.fsum(r["mean_seconds"] for r in rows) * 1e3
    lines.append(f"{'total':<{width}}  {'':<{choice}}  {total:9.4g}  {ref:9.4g}")
    return "\n".join(lines)


# ---- measuring ----------------------------------------------------------------------------------
def table_entry(
    block: Block,
    functions: Mapping[str, tuple[LatencyFunction, str]],
    options: LatencyTableOptions,
) -> Entry:
    """The entry of one extracted choice: its latency function's value, else measured."""
    point = block.point
    if point.kind in functions:
        function, name = functions[point.kind]
        seconds = function(block)
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(
                f"{OPTIONS_KEY}.functions.{point.kind}: {name} returned {seconds!r} for "
                f"{point.name} / {block.choice}; expected seconds >= 0"
            )
        return Entry(point.name, point.kind, block.choice, float(seconds), name)
    seconds = measure_latency(
        block.op,
        block.input_shape,
        options.batch_size,
        options.repeats,
        options.warmup,
        device=block.device,
    )
    return Entry(point.name, point.kind, block.choice, seconds, f"measured on {block.device.type}")


class LatencyCostTable(CostTable):
    """A CostTable whose `latency_table` cost comes from a per-op latency table: `table`, or
    measured once here (or read from `saved`, or from `options.csv`), then only looked up."""

    def __init__(
        self,
        supernet: Supernet,
        input_shape: Sequence[int],
        options: LatencyTableOptions,
        saved: Path | None = None,
        table: LatencyTable | None = None,
        measure: Callable[[Block], Entry] | None = None,
    ) -> None:
        """`measure`: gives every (decision point, choice)'s entry instead of the latency
        functions and this device's PyTorch timing (`lightnas latency-table --engine lce`)."""
        super().__init__(supernet, input_shape)
        space = supernet.space
        source = saved if saved is not None and saved.is_file() else options.csv
        if table is not None:
            self.latency = table
        elif source is not None:
            self.latency = LatencyTable.read_csv(Path(source), space)
        else:
            self.latency = self._measure_table(options, measure)

    def _measure_table(
        self, options: LatencyTableOptions, measure: Callable[[Block], Entry] | None
    ) -> LatencyTable:
        space = self.supernet.space
        functions = latency_functions(options, (p.kind for p in space))
        shapes = self._choice_input_shapes(space.default())
        device = next(self.supernet.parameters()).device
        entries = []
        for name, module in self.supernet.choice_modules().items():
            active = module.active
            for choice in module.point.choices:
                module.set_choice(choice)
                op = module.extract()
                if op is None:
                    entries.append(Entry(name, module.point.kind, choice, 0.0, REMOVED))
                    continue
                shape, batch = shapes[name], options.batch_size
                block = Block(module.point, choice, op.eval(), shape, batch, device)
                entries.append(
                    measure(block) if measure else table_entry(block, functions, options)
                )
            module.set_choice(active)
        return LatencyTable(space, entries)

    def costs(self, arch: Architecture) -> dict[str, float]:
        return {**super().costs(arch), LATENCY_TABLE: self.latency.latency(arch)}

    def cost(self, arch: Architecture, key: str) -> float:
        if key == LATENCY_TABLE:
            return self.latency.latency(arch)
        return super().cost(arch, key)

    def reference(self, key: str) -> float:
        if key == LATENCY_TABLE:
            return self.latency.reference()
        return super().reference(key)


def latency_cost_table(
    search,
    supernet: Supernet,
    input_shape: Sequence[int],
    saved: Path | None,
    table: LatencyTable | None = None,
) -> LatencyCostTable | None:
    """The run's cost table when `search.cost` is latency_table (None otherwise), with `table`
    (measured elsewhere: rank 0 of a distributed run) or else the one read from `saved` (the
    latency_table.csv of a resumed run's folder, if it exists) or else measured now."""
    if search.cost != LATENCY_TABLE:
        return None
    return LatencyCostTable(supernet, input_shape, search.latency_table, saved, table)


def latency_table_of(evaluator) -> LatencyTable | None:
    """The latency table an evaluator scores with, if any."""
    costs = getattr(evaluator, "costs", None)
    return costs.latency if isinstance(costs, LatencyCostTable) else None
