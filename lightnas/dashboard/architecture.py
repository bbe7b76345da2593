"""An epoch's architecture drawn as SVG (from the run's own files), or its text table. Only files
inside the dashboard's root are read: a symbolic link out of it is as good as no file."""

from __future__ import annotations

from pathlib import Path

import graphviz

from lightnas.dashboard.folders import cached
from lightnas.dashboard.paths import inside
from lightnas.graphs import architecture_to_dot, dot_available, read_logged_architecture
from lightnas.layout import TrainingFolder, epoch_name


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
