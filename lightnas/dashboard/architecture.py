"""An epoch's architecture, or the run's result's (lightnas.outputs.result), drawn as SVG from
the run's own files, or as a text table. Only files inside the dashboard's root are read: a
symbolic link out of it is as good as no file."""

from __future__ import annotations

from pathlib import Path

import graphviz

from lightnas.dashboard.folders import cached, result_of
from lightnas.dashboard.paths import inside
from lightnas.errors import ArchitectureError
from lightnas.layout import TrainingFolder, epoch_name
from lightnas.outputs.graphs import (
    architecture_table,
    architecture_to_dot,
    dot_available,
    read_logged_architecture,
)
from lightnas.search.space import Architecture


def _file(root: Path, folder: TrainingFolder, epoch: int, suffix: str) -> Path | None:
    """The epoch's saved file with `suffix` (epoch_N.svg, ...), if it is a file inside the root."""
    path = folder.architectures / f"{epoch_name(epoch)}{suffix}"
    return path if path.is_file() and inside(root, path) else None


def _svg_from_dot(path: Path) -> bytes:
    return graphviz.pipe("dot", "svg", path.read_bytes())


def _svg_from_json(path: Path) -> bytes:
    arch, stats = read_logged_architecture(path)
    dot = architecture_to_dot(arch, f"{arch.space.name} {path.stem}", stats=stats)
    return graphviz.pipe("dot", "svg", dot.encode())


def architecture_svg(root: Path, folder: TrainingFolder, epoch: int) -> bytes | None:
    """The SVG the run rendered (epoch_N.svg), else one rendered from epoch_N.dot (or .json);
    None when there is neither, or Graphviz's `dot` is missing."""
    svg = _file(root, folder, epoch, ".svg")
    if svg is not None:
        return svg.read_bytes()
    if not dot_available():
        return None
    for suffix, render in ((".dot", _svg_from_dot), (".json", _svg_from_json)):
        path = _file(root, folder, epoch, suffix)
        if path is not None:
            return cached(f"svg{suffix}", path, render)
    return None


def architecture_text(root: Path, folder: TrainingFolder, epoch: int) -> str | None:
    """The epoch's narrow text table (epoch_N.txt), if saved."""
    path = _file(root, folder, epoch, ".txt")
    return None if path is None else path.read_text(encoding="utf-8", errors="replace")


# ---- the run's result ------------------------------------------------------------------------
def result_graph(root: Path, folder: TrainingFolder) -> tuple[Architecture, dict] | None:
    """The result's architecture (best_architecture.json) and what its graph is annotated
    with: how it was selected, its accuracies and costs; None before the first epoch's end."""
    result = result_of(folder)
    path = folder.best_architecture
    if result is None or not path.is_file() or not inside(root, path):
        return None
    try:
        arch, _ = read_logged_architecture(folder.best_architecture)
    except ArchitectureError:
        return None
    stats = {"epoch": result.epoch, "selected_by": result.selected_by, "val_acc": result.val_acc}
    if result.test_acc is not None:
        stats["test_acc"] = result.test_acc
    costs = {k: result.costs[k] for k in ("ops", "model_bits", "params") if k in result.costs}
    return arch, stats | costs


def _svg_of_result(root: Path, folder: TrainingFolder) -> bytes | None:
    graph = result_graph(root, folder)
    if graph is None:
        return None
    dot = architecture_to_dot(graph[0], f"{folder.name}: result", stats=graph[1])
    return graphviz.pipe("dot", "svg", dot.encode())


def result_svg(root: Path, folder: TrainingFolder) -> bytes | None:
    """The result's architecture as SVG; None without one, or without Graphviz's `dot`."""
    if not dot_available() or not folder.best_architecture.is_file():
        return None
    return cached("svg.result", folder.best_architecture, lambda _: _svg_of_result(root, folder))


def result_text(root: Path, folder: TrainingFolder) -> str | None:
    """The result's architecture as a narrow text table, if there is a result."""
    graph = result_graph(root, folder)
    return None if graph is None else architecture_table(*graph)
