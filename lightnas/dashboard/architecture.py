"""An epoch's architecture drawn as SVG (from the run's own files), or its text table."""

from __future__ import annotations

from pathlib import Path

import graphviz

from lightnas.dashboard.folders import cached
from lightnas.layout import TrainingFolder, epoch_name
from lightnas.outputs.graphs import architecture_to_dot, dot_available, read_logged_architecture


def _stem(folder: TrainingFolder, epoch: int) -> Path:
    return folder.architectures / epoch_name(epoch)


def _svg_from_dot(path: Path) -> bytes:
    return graphviz.pipe("dot", "svg", path.read_bytes())


def _svg_from_json(path: Path) -> bytes:
    arch, stats = read_logged_architecture(path)
    dot = architecture_to_dot(arch, f"{arch.space.name} {path.stem}", stats=stats)
    return graphviz.pipe("dot", "svg", dot.encode())


def architecture_svg(folder: TrainingFolder, epoch: int) -> bytes | None:
    """The SVG the run rendered (epoch_N.svg), else one rendered from epoch_N.dot (or .json);
    None when there is neither, or Graphviz's `dot` is missing."""
    stem = _stem(folder, epoch)
    svg = stem.with_name(f"{stem.name}.svg")
    if svg.is_file():
        return svg.read_bytes()
    if not dot_available():
        return None
    for suffix, render in ((".dot", _svg_from_dot), (".json", _svg_from_json)):
        path = stem.with_name(stem.name + suffix)
        if path.is_file():
            return cached(f"svg{suffix}", path, render)
    return None


def architecture_text(folder: TrainingFolder, epoch: int) -> str | None:
    """The epoch's narrow text table (epoch_N.txt), if saved."""
    path = _stem(folder, epoch).with_name(f"{epoch_name(epoch)}.txt")
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
