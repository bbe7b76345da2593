"""A space drawn as a Graphviz graph: every node with its op, arguments and output shape, the
decision points highlighted with their choices, stages as clusters."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import graphviz

from lightnas.models.graph.build import Analysed
from lightnas.models.graph.ops import OPS
from lightnas.models.graph.space import INPUT, Node

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


def space_to_dot(
    done: Analysed, title: str, stats: Mapping[str, str] | None = None, compact: bool = True
) -> str:
    """DOT source of an analysed space: input -> nodes -> output, decision points filled.
    `compact`: the repetitions of a `repeat` group after its first are one box."""
    graph = graphviz.Digraph(name="space")
    label = [title] + [f"{k}: {v}" for k, v in (stats or {}).items()]
    graph.attr(rankdir="TB", labelloc="t", fontsize="16", fontname="Helvetica")
    graph.attr(label="\\n".join(label))
    graph.attr("node", shape="box", style="rounded", fontname="Helvetica", fontsize="10")
    graph.node("input", f"input\\n{_shape(done.shapes[INPUT])}", shape="oval")
    ids, folded = _ids(done, compact)
    clusters: dict[str, list[Node]] = {}
    for node in done.order:
        if not ids[node.name].startswith("n"):  # drawn in its folded repetition's box
            continue
        clusters.setdefault(node.name.split(".")[0] if "." in node.name else "", []).append(node)
    for stage, nodes in clusters.items():
        # nodes outside any stage (stem, head) go to the top level
        target = graph.subgraph(name=f"cluster_{stage}") if stage else contextlib.nullcontext(graph)
        with target as sub:
            if stage:
                sub.attr(label=stage, style="rounded", color="#999999")
            for node in nodes:
                sub.node(ids[node.name], _label(node, done), **_style(node, done))
                for box, members in folded.get(node.name, {}).items():
                    sub.node(box, _folded_label(members, done), **_folded_style(members, done))
    edges = dict.fromkeys(
        (ids[source], ids[node.name])
        for node in done.order
        for source in node.inputs
        if ids[source] != ids[node.name]
    )
    for tail, head in edges:
        graph.edge(tail, head)
    graph.node("output", "output", shape="oval")
    graph.edge(ids[done.graph.output], "output")
    return graph.source


def _ids(done: Analysed, compact: bool) -> tuple[dict[str, str], dict]:
    """Each node's graph id (a folded repetition's: its box), and the boxes of the folded
    repetitions with their nodes, by the node after which each box is drawn."""
    ids = {INPUT: "input"}
    boxes: dict[str, str] = {}  # repeated group -> its box
    folded: dict[str, dict[str, list[Node]]] = {}  # anchor node -> box -> nodes
    anchor = ""
    for i, node in enumerate(done.order):
        later = [group for group, index, _ in node.repeats if index > 0]
        if not (compact and later):
            ids[node.name] = f"n{i}"
            anchor = node.name
            continue
        # the outermost repetition folds everything inside it
        box = boxes.setdefault(later[0], f"fold{len(boxes)}")
        ids[node.name] = box
        folded.setdefault(anchor, {}).setdefault(box, []).append(node)
    return ids, folded


def _folded_label(members: list[Node], done: Analysed) -> str:
    group, _, count = next(r for r in members[0].repeats if r[1] > 0)
    points = sum(n.name in done.points for n in members)
    first, last = members[0].name, members[-1].name
    return "\\n".join(
        [
            f"{group}: {count - 1} more repetitions",
            f"{first} ... {last}",
            f"{points} decision points",
            _shape(done.shapes[last]),
        ]
    )


def _folded_style(members: list[Node], done: Analysed) -> dict[str, str]:
    if any(n.name in done.points for n in members):
        return {"style": "rounded,filled,bold,dashed", "fillcolor": DECISION_FILL, "penwidth": "2"}
    return {"style": "rounded,dashed"}


def _style(node: Node, done: Analysed) -> dict[str, str]:
    if node.name in done.points:
        return {"style": "rounded,filled,bold", "fillcolor": DECISION_FILL, "penwidth": "2"}
    if node.op in ("add", "concat"):
        return {"shape": "ellipse", "style": "filled", "fillcolor": MERGE_FILL}
    return {}
