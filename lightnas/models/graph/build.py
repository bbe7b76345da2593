"""From a parsed space file to a `Supernet`: the graph checked with networkx (inputs, cycles,
dangling nodes), every node's output shape inferred by running its module on a meta tensor
(no memory, no arithmetic: the ops themselves define their shapes), then the real modules built.

The supernet has the layout of the built-in families (stem -> body -> head): the stem is the
chain of fixed layers from the input up to the first decision point, the head the output node,
and the body runs what lies between, as an `nn.Sequential` where it is a chain (the families'
own layout, so a file that writes a family down gets its module and state-dict structure) and as
a `GraphBody` (a fixed list of layers and the values each reads) elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import networkx as nx
import torch
from torch import nn

from lightnas.errors import ConfigError
from lightnas.models.graph.modules import CandidateChoice, GraphBody, share_equal_weights
from lightnas.models.graph.ops import OPS, ArgError, Ctx, default_kind
from lightnas.models.graph.space import INPUT, Graph, Node, Space
from lightnas.models.graph.yaml_text import SpaceError
from lightnas.models.supernet import Choice, Supernet
from lightnas.search.space import DecisionPoint

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Env:
    """What the whole build shares: the classes of the head and the default stem."""

    num_classes: int
    stem: str


@dataclass
class Analysed:
    """A checked graph: its nodes in execution order, each node's output shape and checked
    arguments, and the analysed sub-graphs of its choice nodes' candidates (None = removed)."""

    graph: Graph
    order: list[Node]
    shapes: dict[str, Shape]
    args: dict[str, dict] = field(default_factory=dict)
    candidates: dict[str, dict[str, Analysed | None]] = field(default_factory=dict)
    points: dict[str, DecisionPoint] = field(default_factory=dict)  # by decision node

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.graph.output]

    @property
    def space(self) -> list[DecisionPoint]:
        """The decision points in the supernet's order (the execution order)."""
        return [self.points[n.name] for n in self.order if n.name in self.points]


def is_decision(node: Node, args: dict) -> bool:
    return node.candidates is not None or OPS[node.op].is_decision(args)


# ---- structure -------------------------------------------------------------------------------
def execution_order(graph: Graph, where: str = "") -> list[Node]:
    """The nodes in a topological order, file order among equals; SpaceError on a cycle or a
    node whose output nobody reads (the last node is the output)."""
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    dag = nx.DiGraph()
    dag.add_node(INPUT)
    dag.add_nodes_from(index)
    dag.add_edges_from((i, node.name) for node in graph.nodes for i in node.inputs)
    nodes = graph.by_name()
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise SpaceError(
            f"{where}cycle: {path} (a node cannot read its own output)", nodes[cycle[0][0]].line
        )
    for node in graph.nodes:
        if node.name != graph.output and dag.out_degree(node.name) == 0:
            raise SpaceError(
                f"{where}node {node.name} is dangling: no node reads its output (the output is "
                f"the last node, {graph.output})",
                node.line,
            )
    order = nx.lexicographical_topological_sort(dag, key=lambda n: index.get(n, -1))
    return [nodes[n] for n in order if n != INPUT]


# ---- shapes ----------------------------------------------------------------------------------
def analyse(graph: Graph, input_shape: Shape, env: Env, where: str = "") -> Analysed:
    """Check `graph` and infer every node's output shape from an input of `input_shape`."""
    order = execution_order(graph, where)
    done = Analysed(graph, order, {INPUT: tuple(input_shape)})
    for node in order:
        in_shapes = [done.shapes[i] for i in node.inputs]
        if node.candidates is not None:
            done.shapes[node.name] = _analyse_choice(node, in_shapes, env, where, done)
        else:
            done.shapes[node.name] = _analyse_op(node, in_shapes, env, where, done)
        if where and is_decision(node, done.args.get(node.name, {})):
            raise SpaceError(
                f"{where}node {node.name} is a decision point inside a candidate; nested "
                "decision points are not supported (format version 1)",
                node.line,
            )
    return done


def _label(node: Node, where: str) -> str:
    what = f"choice {node.name}" if node.candidates is not None else f"node {node.name} ({node.op})"
    return f"{where}{what}"


def _analyse_op(node: Node, in_shapes: list[Shape], env: Env, where: str, done: Analysed) -> Shape:
    label = _label(node, where)
    if node.op not in OPS:
        raise SpaceError(
            f"{where}node {node.name}: op {node.op!r} is not known; valid: {OPS.valid()}", node.line
        )
    op = OPS[node.op]
    try:
        args = op.check_args(node.args)
    except ArgError as err:
        raise SpaceError(f"{label}: {err}", node.line) from None
    done.args[node.name] = args
    _check_arity(node, op.merge, label)
    if op.merge:
        _check_merge(node, in_shapes, done, label)
    ctx = Ctx(node.name, args, in_shapes, env.num_classes, env.stem, node.kind)
    module = make_module(ctx, node, label, meta=True)
    if isinstance(module, Choice):
        done.points[node.name] = module.point
    return output_shape(module, in_shapes, label, node.line)


def _check_arity(node: Node, merge: bool, label: str) -> None:
    if merge and len(node.inputs) < 2:
        raise SpaceError(
            f"{label}: reads two or more inputs (inputs: [a, b]), got {len(node.inputs)}", node.line
        )
    if not merge and len(node.inputs) != 1:
        raise SpaceError(
            f"{label}: reads one input, got {len(node.inputs)} ({', '.join(node.inputs)}): merge "
            "them first with an add or concat node",
            node.line,
        )


def _check_merge(node: Node, shapes: list[Shape], done: Analysed, label: str) -> None:
    """add: equal shapes; concat: equal shapes but for the channels. Names both inputs."""
    first, first_shape = node.inputs[0], shapes[0]
    for other, shape in zip(node.inputs[1:], shapes[1:], strict=True):
        if node.op == "add":
            ok = shape == first_shape
        else:
            ok = len(shape) == len(first_shape) and shape[1:] == first_shape[1:]
        if ok:
            continue
        differ = []
        if len(shape) != len(first_shape):
            differ = ["rank"]
        else:
            if node.op == "add" and shape[0] != first_shape[0]:
                differ.append("channels")
            if shape[1:] != first_shape[1:]:
                differ.append("spatial size")
        need = "one shape" if node.op == "add" else "one height and width"
        raise SpaceError(
            f"{label}: {first} gives {first_shape} but {other} gives {shape} "
            f"({' and '.join(differ)} differ); {node.op} needs inputs of {need}",
            node.line,
        )


def make_module(ctx: Ctx, node: Node, label: str, meta: bool) -> nn.Module:
    """The module of an op node (on the meta device for the analysis)."""
    op = OPS[node.op]
    try:
        if meta:
            with torch.device("meta"):
                return op.build(ctx)
        return op.build(ctx)
    except (ArgError, ConfigError) as err:
        raise SpaceError(f"{label}: {err}", node.line) from None
    except ValueError as err:  # torch's layers check their sizes (e.g. groups) on construction
        raise SpaceError(f"{label}: {err} (input {ctx.in_shape})", node.line) from None


def output_shape(
    module: nn.Module, in_shapes: Sequence[Shape], label: str, line: int | None
) -> Shape:
    """The output shape of `module` (on the meta device) for inputs of `in_shapes`."""
    module.eval()
    xs = [torch.empty((1, *s), device="meta") for s in in_shapes]
    try:
        with torch.no_grad():
            out = module(*xs)
    except (RuntimeError, ValueError, IndexError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        shapes = ", ".join(str(s) for s in in_shapes)
        raise SpaceError(f"{label} does not run on input {shapes}: {reason}", line) from None
    return tuple(out.shape[1:])


def _analyse_choice(
    node: Node, in_shapes: list[Shape], env: Env, where: str, done: Analysed
) -> Shape:
    label = _label(node, where)
    results: dict[str, Analysed | None] = {}
    shapes: dict[str, Shape] = {}
    for name, sub in node.candidates.items():
        if hasattr(nn.ModuleDict, name):  # the candidates are held in one
            raise SpaceError(f"{label}: candidate name {name!r} is reserved; rename it", node.line)
        if sub is None:
            results[name], shapes[name] = None, in_shapes[0]
            continue
        results[name] = analyse(sub, in_shapes[0], env, f"{label}, candidate {name}: ")
        shapes[name] = results[name].output_shape
    first = next(iter(shapes))
    for name, shape in shapes.items():
        if shape != shapes[first]:
            raise SpaceError(
                f"{label}: candidate {first} gives {shapes[first]} but {name} gives {shape}; "
                "every candidate of a choice must give one shape (a skip keeps its input's "
                f"{in_shapes[0]})",
                node.line,
            )
    done.candidates[node.name] = results
    done.points[node.name] = choice_point(node)
    return shapes[first]


def check_output(done: Analysed, num_classes: int) -> None:
    """A network ends in its class scores."""
    shape = done.output_shape
    if shape != (num_classes,):
        node = done.graph.nodes[-1]
        raise SpaceError(
            f"the output node {node.name} gives {shape}, not the class scores ({num_classes},): "
            "end the graph with a head (or global_avgpool + linear)",
            node.line,
        )


# ---- building ----------------------------------------------------------------------------------
def build_modules(done: Analysed, env: Env) -> dict[str, nn.Module]:
    """The real module of every node of an analysed graph, in execution order."""
    modules = {}
    for node in done.order:
        in_shapes = [done.shapes[i] for i in node.inputs]
        if node.candidates is not None:
            modules[node.name] = _choice_module(node, done, env)
            continue
        ctx = Ctx(node.name, done.args[node.name], in_shapes, env.num_classes, env.stem, node.kind)
        modules[node.name] = make_module(ctx, node, _label(node, ""), meta=False)
    return modules


def choice_point(node: Node) -> DecisionPoint:
    return DecisionPoint(node.name, tuple(node.candidates), node.kind or default_kind(node.name))


def _choice_module(node: Node, done: Analysed, env: Env) -> CandidateChoice:
    candidates = {}
    for name, sub in done.candidates[node.name].items():
        candidates[name] = None if sub is None else assemble(sub, build_modules(sub, env))
    if node.share:
        share_equal_weights(candidates)
    return CandidateChoice(choice_point(node), candidates)


def assemble(
    done: Analysed,
    modules: dict[str, nn.Module],
    nodes: Sequence[Node] | None = None,
    start: str = INPUT,
    chain: type[nn.Module] | None = None,
) -> nn.Module:
    """One module running `nodes` (default: all, in execution order) from the value `start`:
    a chain is an nn.Sequential (a one-node chain its module itself, unless `chain` is given:
    then always that container), anything else a GraphBody whose chains are nn.Sequentials."""
    nodes = list(done.order if nodes is None else nodes)
    readers = Counter(i for n in done.order for i in n.inputs)
    segments: list[list[Node]] = []
    for node in nodes:
        # a chain starts with a one-input node: an nn.Sequential passes on one value
        extends = segments and len(segments[-1][0].inputs) == 1
        last = segments[-1][-1] if segments else None
        if extends and node.inputs == (last.name,) and readers[last.name] == 1:
            segments[-1].append(node)
        else:
            segments.append([node])
    if len(segments) <= 1 and (not segments or segments[0][0].inputs == (start,)):
        members = [modules[n.name] for n in (segments[0] if segments else [])]
        if chain is None and len(members) == 1:
            return members[0]
        return (chain or nn.Sequential)(*members)
    slot = {start: 0}
    reads, layers = [], []
    for k, segment in enumerate(segments, start=1):
        members = [modules[n.name] for n in segment]
        layers.append(members[0] if len(members) == 1 else nn.Sequential(*members))
        reads.append(tuple(slot[i] for i in segment[0].inputs))
        slot[segment[-1].name] = k
    last_read = {i: k for k, r in enumerate(reads) for i in r}
    drops = [tuple(i for i in sorted(set(r)) if last_read[i] == k) for k, r in enumerate(reads)]
    return GraphBody(layers, reads, drops)


# ---- the supernet ------------------------------------------------------------------------------
def split(done: Analysed) -> tuple[list[Node], list[Node], list[Node]]:
    """(stem, body, head) nodes: the stem is the chain of fixed single-input layers from the
    input up to the first decision point, the head the output node when it reads one input."""
    readers = Counter(i for n in done.order for i in n.inputs)
    order = done.order
    head = order[-1:] if len(order[-1].inputs) == 1 else []
    stem: list[Node] = []
    previous = INPUT
    for node in order[: len(order) - len(head)]:
        fixed = not is_decision(node, done.args.get(node.name, {}))
        if not fixed or node.inputs != (previous,) or readers[previous] != 1:
            break
        stem.append(node)
        previous = node.name
    body = order[len(stem) : len(order) - len(head)]
    return stem, body, head


def build_supernet(space: Space, num_classes: int, stem: str, in_channels: int) -> Supernet:
    """The supernet of a parsed space file (checked and shape-inferred first)."""
    env = Env(num_classes, stem)
    done = analyse_space(space, num_classes, stem, in_channels)
    modules = build_modules(done, env)
    stem_nodes, body_nodes, head_nodes = split(done)
    body_start = stem_nodes[-1].name if stem_nodes else INPUT
    parts = (
        assemble(done, modules, stem_nodes),
        assemble(done, modules, body_nodes, body_start, chain=nn.Sequential),
        assemble(done, modules, head_nodes, body_nodes[-1].name if body_nodes else body_start),
    )
    return Supernet(space.name, *parts)


def analyse_space(
    space: Space, num_classes: int, stem: str, in_channels: int | None = None
) -> Analysed:
    """The checked, shape-inferred top-level graph of `space` (at its file's input size, with
    `in_channels` channels when given)."""
    shape = space.input_shape if in_channels is None else (in_channels, *space.input_shape[1:])
    done = analyse(space.graph, shape, Env(num_classes, stem))
    check_output(done, num_classes)
    return done
