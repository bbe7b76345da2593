"""The space file format, version 1 (docs/spaces.md): a file's YAML (read with its line numbers by
`yaml_text`), its groups and `repeat:` expanded into one flat list of nodes (`space`) with full
dotted names and resolved inputs.

Only the structure is checked here (keys, names, references, numbers of inputs); ops, their
arguments and shapes are checked where the graph is analysed (`lightnas.models.graph.build`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightnas.models.graph.space import DEFAULT_INPUT, INPUT, VERSION, Graph, Node, Space
from lightnas.models.graph.yaml_text import (
    Located,
    SpaceError,
    line_of,
    parse_or_raise,
    parse_yaml,
    plain,
)

REMOVED = ("identity", "skip")  # a choice candidate that removes the node (its output = input)
TOP_KEYS = ("version", "name", "description", "input", "params", "defaults", "templates", "nodes")
GROUP_KEYS = ("name", "nodes", "repeat", "start", "inputs")
NODE_KEYS = ("name", "op", "inputs", "kind")
CHOICE_KEYS = ("name", "choice", "inputs", "kind", "share")
PART = re.compile(r"[A-Za-z0-9_]+")
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
CANDIDATE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_REPEAT = 10_000
MAX_NODES = 100_000  # after expansion: a typo such as repeat: 1000 inside repeat: 1000 stops here


# ---- the expansion's scopes --------------------------------------------------------------------
@dataclass(frozen=True)
class _Ref:
    """A reference to a node as written (`conv1`, `input`), resolved once every name is known."""

    text: str
    scope: _Scope
    node: str  # the node (or group) that reads it, for error messages
    line: int | None


@dataclass(frozen=True)
class _Scope:
    """Where a list of nodes is expanded: its name prefix, its input (a full name or a _Ref),
    the enclosing prefixes (names resolve innermost first) and the file's per-op defaults."""

    prefix: str
    input: str | _Ref
    outer: tuple[str, ...]
    defaults: Mapping

    def nested(self, prefix: str, input_ref: str | _Ref) -> _Scope:
        return _Scope(prefix, input_ref, (prefix, *self.outer), self.defaults)


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# ---- reading ----------------------------------------------------------------------------------
def read_space(data: object, default_name: str = "space", params: Mapping | None = None) -> Space:
    """The Space of a parsed file (a mapping), its `params` set to the file's values updated by
    `params`; SpaceError (with the line) when it is malformed."""
    if not isinstance(data, Mapping):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise SpaceError(f"a space file holds a mapping (version, name, nodes), not {kind}")
    # first: a later version's file may hold keys this one does not know
    version = data.get("version")
    if version != VERSION:
        raise SpaceError(
            f"version: {version!r} is not supported; valid: {VERSION} (write `version: {VERSION}`)",
            line_of(data),
        )
    _check_keys(data, TOP_KEYS, "the file")
    values = parameters(data, params or {})
    params_given = data.get("params")
    data = substitute({k: v for k, v in data.items() if k != "params"}, values, line_of(data))
    data["params"] = params_given
    name = data.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise SpaceError(f"name: {name!r} must be letters, digits, '_', '-' or '.'", line_of(data))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping) or not all(
        isinstance(v, Mapping) for v in defaults.values()
    ):
        raise SpaceError("defaults: a mapping of op -> {argument: value}", line_of(data))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpaceError("description: must be text", line_of(data))
    graph = read_graph(data.get("nodes"), _Scope("", INPUT, ("",), defaults), line_of(data))
    return Space(name, graph, read_input(data.get("input", list(DEFAULT_INPUT)), data), description)


def parameters(data: Mapping, overrides: Mapping) -> dict:
    """The file's `params` (name -> value) with `overrides` (model.kwargs.params) applied."""
    declared = data.get("params", {})
    if not isinstance(declared, Mapping) or not all(
        isinstance(k, str) and PARAM.fullmatch(f"${k}") for k in declared
    ):
        raise SpaceError("params: a mapping of name -> value, e.g. {growth: 64}", line_of(data))
    if not isinstance(overrides, Mapping):
        raise SpaceError(f"params must be a mapping of name -> value, got {overrides!r}")
    unknown = [k for k in overrides if k not in declared]
    if unknown:
        valid = ", ".join(declared) or "none (the file declares no params)"
        raise SpaceError(f"params: the space has no parameter {unknown[0]!r}; valid: {valid}")
    return {**declared, **overrides}


def substitute(value: object, params: Mapping, line: int | None = None) -> object:
    """`value` with every string `$name` replaced by the parameter's value."""
    if isinstance(value, Mapping):
        out = Located()
        out.line = line_of(value) or line  # a plain dict (the file's top level) keeps the line
        for k, v in value.items():
            out[k] = substitute(v, params, out.line)
        return out
    if isinstance(value, list):
        return [substitute(v, params, line) for v in value]
    if isinstance(value, str) and value.startswith("$"):
        found = PARAM.fullmatch(value)
        if not found or found[1] not in params:
            valid = ", ".join(f"${k}" for k in params) or "none (declare them under params:)"
            raise SpaceError(f"unknown parameter {value!r}; valid: {valid}", line)
        return params[found[1]]
    return value


def read_input(value: object, data: object) -> tuple[int, int, int]:
    ok = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        raise SpaceError(
            f"input: {value!r} must be [channels, height, width] of whole numbers >= 1",
            line_of(data),
        )
    return tuple(value)


def read_graph(entries: object, scope: _Scope, line: int | None) -> Graph:
    """The nodes of a top-level graph or a candidate sub-graph, references resolved."""
    if not isinstance(entries, list) or not entries:
        raise SpaceError("nodes: must be a non-empty list of nodes", line)
    nodes = _expand(entries, scope)
    _check_unique(nodes)
    known = {n.name for n in nodes}
    for node in nodes:
        node.inputs = tuple(_resolve(ref, known) for ref in node.inputs)
    return Graph(nodes, line)


def _expand(entries: list, scope: _Scope) -> list[Node]:
    nodes: list[Node] = []
    previous = scope.input
    names = _default_names(entries)
    for entry, name in zip(entries, names, strict=True):
        if not isinstance(entry, Mapping):
            raise SpaceError(
                f"a node is a mapping such as {{name: conv1, op: qconv}}, not {entry!r}"
            )
        if "nodes" in entry or "repeat" in entry:
            inner = _expand_group(entry, scope, previous)
        else:
            inner = [_node(entry, name, scope, previous)]
        nodes += inner
        previous = inner[-1].name
    return nodes


def _default_names(entries: list) -> list[str | None]:
    """Each entry's name: the one it gives, or its op's, numbered where it repeats (bn, bn_2)."""
    given = {e.get("name") for e in entries if isinstance(e, Mapping)}
    counts: dict[str, int] = {}
    names = []
    for entry in entries:
        if (
            not isinstance(entry, Mapping)
            or "name" in entry
            or not isinstance(entry.get("op"), str)
        ):
            names.append(entry.get("name") if isinstance(entry, Mapping) else None)
            continue
        base = entry["op"]
        n = counts.get(base, 0)
        while True:
            n += 1
            candidate = base if n == 1 else f"{base}_{n}"
            if candidate not in given:
                break
        counts[base] = n
        names.append(candidate)
    return names


def _check_keys(entry: Mapping, valid: Sequence[str], what: str) -> None:
    for key in entry:
        if key not in valid:
            raise SpaceError(
                f"{what}: unknown key {key!r}; valid: {', '.join(valid)}", line_of(entry)
            )


def _check_name(name: object, entry: Mapping, what: str) -> str:
    if not isinstance(name, str) or not all(PART.fullmatch(p) for p in name.split(".")):
        raise SpaceError(
            f"{what} name {name!r} must be dotted parts of letters, digits and '_'", line_of(entry)
        )
    if name == INPUT:
        raise SpaceError(
            f"'{INPUT}' is reserved for the graph's input; rename the node", line_of(entry)
        )
    return name


def _raw_inputs(entry: Mapping, what: str) -> list[str] | None:
    raw = entry.get("inputs")
    if raw is None:
        return None
    raw = [raw] if isinstance(raw, str) else raw
    if not isinstance(raw, list) or not raw or not all(isinstance(r, str) for r in raw):
        raise SpaceError(f"{what}: inputs must be a node name or a list of them", line_of(entry))
    return raw


def _int(entry: Mapping, key: str, default: int, least: int, what: str) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_REPEAT:
        raise SpaceError(
            f"{what}: {key}: {value!r} must be a whole number >= {least}", line_of(entry)
        )
    return value


def _expand_group(entry: Mapping, scope: _Scope, previous: str | _Ref) -> list[Node]:
    """A group of nodes under a name prefix, `repeat` times (`{i}` in its name counts up)."""
    template = entry.get("name")
    what = f"group {template!r}" if template else "a group"
    _check_keys(entry, GROUP_KEYS, what)
    if template is None:
        raise SpaceError(
            "a group (nodes: / repeat:) needs a name, e.g. stage1.block{i}", line_of(entry)
        )
    count = _int(entry, "repeat", 1, 1, what)
    start = _int(entry, "start", 1, 0, what)
    if count > 1 and "{i}" not in str(template):
        raise SpaceError(
            f"{what}: repeat: {count} needs '{{i}}' in its name (e.g. stage1.block{{i}}), or "
            "every repetition would have the same names",
            line_of(entry),
        )
    raw = _raw_inputs(entry, what)
    if raw is not None and len(raw) != 1:
        raise SpaceError(f"{what}: a group reads one input, got {raw}", line_of(entry))
    body = entry.get("nodes")
    if not isinstance(body, list) or not body:
        raise SpaceError(f"{what}: nodes: must be a non-empty list of nodes", line_of(entry))
    group_input = previous if raw is None else _Ref(raw[0], scope, what, line_of(entry))
    nodes: list[Node] = []
    for i in range(start, start + count):
        name = _check_name(str(template).replace("{i}", str(i)), entry, "group")
        inner = _expand(body, scope.nested(join(scope.prefix, name), group_input))
        if count > 1:
            for node in inner:
                node.repeats = (
                    (join(scope.prefix, str(template)), i - start, count),
                    *node.repeats,
                )
        nodes += inner
        if len(nodes) > MAX_NODES:
            raise SpaceError(f"{what} expands to more than {MAX_NODES} nodes", line_of(entry))
        group_input = inner[-1].name
    return nodes


def _node(entry: Mapping, name: str | None, scope: _Scope, previous: str | _Ref) -> Node:
    if "choice" in entry:
        return _choice(entry, scope, previous)
    what = f"node {join(scope.prefix, str(name)) if name else '?'}"
    if "op" not in entry:
        raise SpaceError(
            f"{what}: a node needs `op:` (a layer or block), `choice:` (a decision point) or "
            "`nodes:` (a group)",
            line_of(entry),
        )
    op = entry["op"]
    if not isinstance(op, str):
        raise SpaceError(f"{what}: op must be a name, got {op!r}", line_of(entry))
    full = join(scope.prefix, _check_name(name, entry, "node"))
    args = {**scope.defaults.get(op, {}), **{k: v for k, v in entry.items() if k not in NODE_KEYS}}
    node = Node(full, op, args, (), line_of(entry), entry.get("kind"))
    _queue(node, entry, scope, previous)
    return node


def _queue(node: Node, entry: Mapping, scope: _Scope, previous: str | _Ref) -> None:
    """The node's inputs as written (resolved by read_graph); none written: the previous node."""
    what = f"{'choice' if node.candidates is not None else 'node'} {node.name}"
    raw = _raw_inputs(entry, what)
    refs = [previous] if raw is None else [_Ref(r, scope, what, node.line) for r in raw]
    node.inputs = tuple(refs)


def _choice(entry: Mapping, scope: _Scope, previous: str | _Ref) -> Node:
    name = entry.get("name")
    if name is None:
        raise SpaceError("a choice node needs a name (its decision point's)", line_of(entry))
    full = join(scope.prefix, _check_name(name, entry, "choice"))
    what = f"choice {full}"
    _check_keys(entry, CHOICE_KEYS, what)
    options = entry["choice"]
    if not isinstance(options, Mapping) or not options:
        raise SpaceError(
            f"{what}: choice: must map candidate names to ops or sub-graphs, e.g. "
            "{conv3x3: {op: qconv, kernel: 3, channels: 64}, skip: identity}",
            line_of(entry),
        )
    share = entry.get("share", True)
    if not isinstance(share, bool):
        raise SpaceError(f"{what}: share: must be true or false", line_of(entry))
    candidates = {
        _candidate_name(key, entry, what): _candidate(value, key, entry, scope.defaults, what)
        for key, value in options.items()
    }
    node = Node(full, None, {}, (), line_of(entry), entry.get("kind"), candidates, share)
    _queue(node, entry, scope, previous)
    if len(node.inputs) != 1:
        raise SpaceError(f"{what}: a choice reads one input, got {len(node.inputs)}", node.line)
    return node


def _candidate_name(key: object, entry: Mapping, what: str) -> str:
    if not isinstance(key, str) or not CANDIDATE.fullmatch(key):
        raise SpaceError(
            f"{what}: candidate name {key!r} must start with a letter and hold only letters, "
            "digits and '_'",
            line_of(entry),
        )
    return key


def _candidate(value: object, key: str, entry: Mapping, defaults: Mapping, what: str):
    """None for identity/skip, else the candidate's sub-graph (its input is INPUT)."""
    where = f"{what}, candidate {key}"
    if isinstance(value, str) and value in REMOVED:
        return None
    if isinstance(value, str):
        value = Located(op=value)
        value.line = line_of(entry)
    if isinstance(value, Mapping):
        if "name" in value or "inputs" in value:
            raise SpaceError(
                f"{where}: a one-op candidate takes no name or inputs (use a list of nodes)",
                line_of(value) or line_of(entry),
            )
        value = [value]
    if not isinstance(value, list):
        raise SpaceError(
            f"{where}: a candidate is `identity`/`skip`, an op ({{op: ...}}) or a list of nodes",
            line_of(entry),
        )
    return read_graph(value, _Scope("", INPUT, ("",), defaults), line_of(entry))


def _resolve(ref: str | _Ref, known: set[str]) -> str:
    """The full name a reference stands for: INPUT is its scope's input, other names resolve
    in the innermost enclosing group first."""
    if isinstance(ref, str):
        return ref
    if ref.text == INPUT:
        return _resolve(ref.scope.input, known)
    for prefix in ref.scope.outer:
        full = join(prefix, ref.text)
        if full in known:
            return full
    near = difflib.get_close_matches(ref.text, sorted(known), n=1)
    hint = f" (did you mean {near[0]}?)" if near else f"; valid: {INPUT} or a node's name"
    raise SpaceError(f"{ref.node}: input {ref.text!r} names no node{hint}", ref.line)


def _check_unique(nodes: list[Node]) -> None:
    seen: dict[str, Node] = {}
    for node in nodes:
        if node.name in seen:
            first = seen[node.name].line
            where = f" (first at line {first})" if first else ""
            raise SpaceError(f"duplicate node name {node.name!r}{where}", node.line)
        seen[node.name] = node


# ---- files ------------------------------------------------------------------------------------
def load_space(
    text: str, source: str | None = None, default_name: str = "space", params: Mapping | None = None
) -> Space:
    """The Space of a file's text; a SpaceError names `source` and the line."""
    try:
        return read_space(parse_yaml(text), default_name, params)
    except SpaceError as err:
        raise err.with_source(source) if source else err from None


def read_space_file(path: str | Path, params: Mapping | None = None) -> tuple[dict, Space]:
    """(the file's data as plain JSON-able values, its Space); SpaceError when unusable."""
    path = Path(path)
    if path.is_dir():
        raise SpaceError(f"space file {path} is a folder; give a .yml file")
    if not path.is_file():
        raise SpaceError(f"space file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"space file {path} cannot be read: {err}") from None
    data = parse_or_raise(text, str(path))
    try:
        space = read_space(data, path.stem, params)
    except SpaceError as err:
        raise err.with_source(str(path)) from None
    if "name" not in data:
        data = {**data, "name": path.stem}  # the stored description names the space too
    return plain(data), space
