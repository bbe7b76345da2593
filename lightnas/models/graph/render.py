"""A space drawn as a Graphviz graph: every node with its op, arguments and output shape, the
decision points highlighted with their choices, stages as clusters."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import graphviz

from lightnas.models.graph.build import Analysed
from lightnas.models.graph.format import INPUT, Node
from lightnas.models.graph.ops import OPS

DECISION_FILL = "#E69F00"  # Okabe-Ito orange: the decision points
MERGE_FILL = "#DDDDDD"
SHOWN_ARGS = ("type", "channels", "width", "growth", "kernel", "stride", "bits", "groups", "pre")


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _args(node: Node, args: Mapping) -> str:
    """The arguments worth showing: the main ones, where they differ from the op's default."""
    defaults = OPS[node.op].args
    shown = [
        f"{k} {v}"
        for k, v in args.items()
        if k in SHOWN_ARGS and v is not None and v != defaults[k].default
    ]
    if node.op == "stem" and args.get("type") is None:
        shown.insert(0, "type model.stem")
    return ", ".join(shown)


def _label(node: Node, done: Analysed) -> str:
    lines = [node.name]
    point = done.points.get(node.name)
    if node.candidates is None:
        lines.append(" ".join(p for p in (node.op, _args(node, done.args[node.name])) if p))
    if point is not None:
        lines.append(" | ".join(point.choices))
    lines.append(_shape(done.shapes[node.name]))
    return "\\n".join(lines)


def space_to_dot(done: Analysed, title: str, stats: Mapping[str, str] | None = None) -> str:
    """DOT source of an analysed space: input -> nodes -> output, decision points filled."""
    graph = graphviz.Digraph(name="space")
    label = [title] + [f"{k}: {v}" for k, v in (stats or {}).items()]
    graph.attr(rankdir="TB", labelloc="t", fontsize="16", fontname="Helvetica")
    graph.attr(label="\\n".join(label))
    graph.attr("node", shape="box", style="rounded", fontname="Helvetica", fontsize="10")
    ids = {INPUT: "input"}
    graph.node("input", f"input\\n{_shape(done.shapes[INPUT])}", shape="oval")
    clusters: dict[str, list[Node]] = {}
    for node in done.order:
        clusters.setdefault(node.name.split(".")[0] if "." in node.name else "", []).append(node)
    for i, node in enumerate(done.order):
        ids[node.name] = f"n{i}"
    for stage, nodes in clusters.items():
        # nodes outside any stage (stem, head) go to the top level
        target = graph.subgraph(name=f"cluster_{stage}") if stage else contextlib.nullcontext(graph)
        with target as sub:
            if stage:
                sub.attr(label=stage, style="rounded", color="#999999")
            for node in nodes:
                sub.node(ids[node.name], _label(node, done), **_style(node, done))
    for node in done.order:
        for source in node.inputs:
            graph.edge(ids[source], ids[node.name])
    graph.node("output", "output", shape="oval")
    graph.edge(ids[done.graph.output], "output")
    return graph.source


def _style(node: Node, done: Analysed) -> dict[str, str]:
    if node.name in done.points:
        return {"style": "rounded,filled,bold", "fillcolor": DECISION_FILL, "penwidth": "2"}
    if node.op in ("add", "concat"):
        return {"shape": "ellipse", "style": "filled", "fillcolor": MERGE_FILL}
    return {}
