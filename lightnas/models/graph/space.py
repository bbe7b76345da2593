"""A parsed space file: a `Space` holding its `Graph`, a list of `Node`s with full dotted names
and resolved inputs, as the format (`format`) reads them and the analysis (`build`) builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = 1  # of the space file format
INPUT = "input"  # the network's input, or a group's / a candidate's input inside it
DEFAULT_INPUT = (3, 32, 32)


@dataclass
class Node:
    """One node of a graph: an op with its arguments, or a choice between candidates."""

    name: str  # full dotted name, e.g. stage2.block3.dense
    op: str | None  # a registered op; None for a choice node
    args: dict  # the op's arguments as written (defaults of the file applied)
    inputs: tuple[str, ...]  # full names of the nodes it reads, or INPUT
    line: int | None = None
    kind: str | None = None  # decision-point kind, where the file names one
    candidates: dict[str, Graph | None] | None = None  # a choice's; None = removed (identity)
    share: bool = True  # a choice's candidates share conv weights of equal shapes
    # the repeated groups it is in, outermost first: (group name with {i}, repetition, count)
    repeats: tuple[tuple[str, int, int], ...] = ()


@dataclass
class Graph:
    """Nodes in file order; the last one is the output, INPUT names the graph's input."""

    nodes: list[Node]
    line: int | None = None

    @property
    def output(self) -> str:
        return self.nodes[-1].name

    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}


@dataclass
class Space:
    """A parsed space file."""

    name: str
    graph: Graph
    input_shape: tuple[int, int, int] = DEFAULT_INPUT
    description: str = ""
    version: int = VERSION
