"""The package's structure: the layers written once in the README ("The code") and every import
of lightnas/ obeying them, no import cycle, a short top level, the CLI only dispatching, and the
training folder's layout spelled out in one module."""

import ast
import re
from pathlib import Path

import networkx as nx
import pytest
from helpers import ROOT

PACKAGE = ROOT / "lightnas"
# the package's facade and entry points: they may import anything, nothing inside imports them
FACADES = {"lightnas", "lightnas.cost", "lightnas.latency"}
# imports inside functions, each for a stated reason (never to dodge a cycle)
LAZY = {
    ("lightnas", "lightnas.sweeps"): "`import lightnas` must not load torch and every module",
    ("lightnas.commands.dashboard", "lightnas.dashboard.server"): "the optional dashboard extra",
    ("lightnas.commands.deploy", "lightnas.deploy.benchmark"): "the optional deploy extra",
    ("lightnas.commands.deploy", "lightnas.deploy.convert"): "the optional deploy extra",
    ("lightnas.commands.latency_table", "lightnas.deploy.latency"): "the optional deploy extra",
    ("lightnas.export.tflite", "lightnas.deploy.convert"): "the optional deploy extra",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def is_facade(name: str) -> bool:
    return name in FACADES or name.endswith(".__main__")


def import_targets(name: str, node: ast.AST) -> list[str]:
    """The dotted names an import statement of module `name` may refer to."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        anchor = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def resolve(target: str) -> str | None:
    """The lightnas module `target` names (a module, or a name inside one)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports(name: str) -> dict[str, bool]:
    """Every lightnas module `name` imports, at any depth of its code -> whether one of its
    imports is inside a function."""
    found: dict[str, bool] = {}
    tree = ast.parse(MODULES[name].read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in map(resolve, import_targets(name, node)):
            if target and target != name and not name.startswith(target + "."):
                found[target] = found.get(target, False) or id(node) in nested
    return found


IMPORTS = {name: imports(name) for name in MODULES}
GRAPH = nx.DiGraph([(a, b) for a, targets in IMPORTS.items() for b in targets])
GRAPH.add_nodes_from(MODULES)


# ---- the layers -------------------------------------------------------------------------------
def layer_line() -> str:
    """The README's one line of layers, e.g. `cli > commands > sweeps, dashboard > ...`."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"^Layers, top to bottom[^`]*`([^`]+)`", text, re.MULTILINE)
    assert len(found) == 1, "the README's code section states the layers once"
    return found[0]


def parse_layers(line: str) -> dict[str, int]:
    """{folder or top-level module: its rank}; 0 is the top, siblings share a rank."""
    return {
        part.strip(): rank
        for rank, group in enumerate(line.split(">"))
        for part in group.split(",")
    }


LAYERS = parse_layers(layer_line())


def unit_of(name: str) -> str:
    """The folder (or top-level module) a lightnas module belongs to: its layer's name."""
    return name.split(".")[1]


def test_the_layer_line_parses_into_ranks():
    assert parse_layers("a > b, c > d") == {"a": 0, "b": 1, "c": 1, "d": 2}


def test_every_folder_and_top_level_module_has_one_layer():
    units = {unit_of(n) for n in MODULES if not is_facade(n)}
    assert units == set(LAYERS), "place each folder in the README's layer line, once"
    assert len(layer_line().replace(">", ",").split(",")) == len(LAYERS)


def against_layers(edges, layers: dict[str, int]) -> list[str]:
    """The imports (module -> module) that go up the layers or sideways between siblings."""
    wrong = []
    for a, b in edges:
        if is_facade(a) or unit_of(a) == unit_of(b):
            continue  # a facade may import anything; a folder its own modules
        if is_facade(b) or layers[unit_of(b)] <= layers[unit_of(a)]:
            wrong.append(f"{a} -> {b}")
    return wrong


def test_every_import_goes_down_the_layers():
    wrong = against_layers(GRAPH.edges, LAYERS)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_check_refuses_upward_sideways_and_facade_imports():
    layers = parse_layers("top > left, right > low")
    edges = [
        ("lightnas.top.a", "lightnas.left.b"),  # down: fine
        ("lightnas.left.b", "lightnas.left.c"),  # within a folder: fine
        ("lightnas.low.x", "lightnas.top.a"),  # up
        ("lightnas.left.b", "lightnas.right.c"),  # between siblings
        ("lightnas.top.a", "lightnas.cost"),  # a facade, from inside
        ("lightnas.cost", "lightnas.low.x"),  # from a facade: fine
    ]
    assert against_layers(edges, layers) == [
        "lightnas.low.x -> lightnas.top.a",
        "lightnas.left.b -> lightnas.right.c",
        "lightnas.top.a -> lightnas.cost",
    ]


# ---- cycles and imports inside functions ------------------------------------------------------
def test_no_module_imports_one_that_imports_it_back():
    assert list(nx.simple_cycles(GRAPH)) == []


def test_no_folder_imports_one_that_imports_it_back():
    inside = [(a, b) for a, b in GRAPH.edges if not is_facade(a) and not is_facade(b)]
    folders = nx.DiGraph((unit_of(a), unit_of(b)) for a, b in inside if unit_of(a) != unit_of(b))
    assert list(nx.simple_cycles(folders)) == []


def test_the_cycle_check_finds_cycles():
    assert list(nx.simple_cycles(nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")])))
    assert not list(nx.simple_cycles(nx.DiGraph([("a", "b")])))


def test_imports_inside_functions_are_the_stated_ones():
    lazy = {(a, b) for a, targets in IMPORTS.items() for b, inside in targets.items() if inside}
    assert lazy == set(LAZY)


# ---- the top level and the CLI ----------------------------------------------------------------
MAX_LINES = 450  # a module longer than this holds more than one job: split it by responsibility


def test_no_module_is_longer_than_the_limit():
    long = {n: c for n, p in MODULES.items() if (c := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_top_level_holds_at_most_eight_modules():
    assert len(list(PACKAGE.glob("*.py"))) <= 8


@pytest.mark.parametrize("low", ["lightnas.engine", "lightnas.scoring", "lightnas.models"])
def test_lower_layers_never_import_the_command_line_or_the_run(low):
    below = {m for m in MODULES if m.startswith(low + ".") or m == low}
    below = {m for m in below if not is_facade(m)}  # python -m lightnas.models is the command
    for name in below:
        assert not any(unit_of(t) in ("cli", "commands", "run") for t in IMPORTS[name]), name


def test_search_does_not_import_models():
    for name in (m for m in MODULES if m.startswith("lightnas.search")):
        assert not any(t.startswith("lightnas.models") for t in IMPORTS[name]), name


def test_the_cli_only_parses_and_dispatches():
    # it imports command modules and the errors it reports, never the machinery of a run
    assert {unit_of(t) for t in IMPORTS["lightnas.cli"]} <= {"commands", "errors"}
    tree = ast.parse(MODULES["lightnas.cli"].read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "torch" not in imported


LAYOUT_NAMES = (
    "config.yml",
    "metrics.jsonl",
    "best_architecture.json",
    "enas_checkpoint",
    "exported_models",
    "trainables",
    "inference_only",
    "status.json",
)


def string_constants(path: Path) -> list[str]:
    """The string literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_training_folder_layout_is_spelled_out_in_one_module():
    # a path is built from a literal that is exactly the name (folder / "config.yml"); messages
    # that mention a name in a sentence are fine
    for name, path in MODULES.items():
        if name == "lightnas.layout":
            continue
        literals = set(string_constants(path))
        for layout_name in LAYOUT_NAMES:
            assert layout_name not in literals, f"{name} spells out {layout_name!r}: use layout"
