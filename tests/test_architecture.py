"""The package's structure: data flows one way, the CLI only parses and dispatches, and each fact
(the training folder's layout) has one home."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightnas"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every lightnas module `name` imports, at any depth of its code (function-level too)."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (a list of nodes, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def folder_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_module_imports_one_that_imports_it_back():
    assert find_cycle(GRAPH) is None


def test_no_folder_imports_one_that_imports_it_back():
    folders: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        edges = {folder_of(t) for t in targets} - {folder_of(name)}
        folders.setdefault(folder_of(name), set()).update(edges)
    assert find_cycle(folders) is None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("low", ["lightnas.engine", "lightnas.evaluation", "lightnas.models"])
def test_lower_layers_never_import_the_command_line_or_runs(low):
    below = {low} | {m for m in MODULES if m.startswith(low + ".")}
    for name in below:
        assert not GRAPH[name] & {"lightnas.cli", "lightnas.runs", "lightnas.retrain"}, name


def test_search_does_not_import_models():
    for name in (m for m in MODULES if m.startswith("lightnas.search")):
        assert not any(t.startswith("lightnas.models") for t in GRAPH[name]), name


def test_the_cli_only_parses_and_dispatches():
    # it imports command modules and argument parsing, never the machinery of a run
    machinery = ("engine", "evaluation", "models", "data", "tracking", "checkpoint", "export")
    assert not {t for t in GRAPH["lightnas.cli"] if t.split(".")[1] in machinery}
    tree = ast.parse(MODULES["lightnas.cli"].read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "torch" not in imported
    for command in GRAPH["lightnas.cli"] - {"lightnas", "lightnas.errors", "lightnas.config"}:
        assert command in MODULES, command


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
