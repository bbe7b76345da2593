"""Architecture → Graphviz DOT graph, coloured by choice category, with optional rendering.

Building DOT needs only the `graphviz` Python package; rendering to PNG/SVG/PDF also needs
Graphviz's `dot` binary. Rendering is decoration: without `dot`, or with one that fails (a build
without cairo cannot write PNG; an install in progress), everything degrades to the .dot files
with one warning per process, and never fails the run.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import graphviz

from lightnas.errors import ConfigError
from lightnas.models.categories import CATEGORIES, op_category
from lightnas.runtime.fileio import write_atomic
from lightnas.runtime.signals import run_shielded
from lightnas.search.space import (
    Architecture,
    DecisionPoint,
    SearchSpace,
    read_architecture_json,
)

logger = logging.getLogger(__name__)

RENDER_FORMATS = ("png", "svg", "pdf")

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = {
    "binary": "#56B4E9",
    "replaced": "#E69F00",
    "higher_precision": "#009E73",
    "skipped": "#DDDDDD",
    "other": "#CC79A7",
}
LEGEND_LABELS = {
    "binary": "binary (kept)",
    "replaced": "replaced (binary 1x1)",
    "higher_precision": "higher precision",
    "skipped": "skipped",
    "other": "other",
}

_MISSING_DOT = (
    "Graphviz's `dot` is not installed: architecture graphs are written as .dot files only. "
    "Install it to render PNG/SVG/PDF: apt-get install graphviz / conda install graphviz / "
    "brew install graphviz"
)
_FAILED_DOT = (
    "Graphviz's `dot` failed to render {fmt} ({reason}): architecture graphs are kept as .dot "
    "files only; render them later with python visualization/color_graphs.py <training folder>"
)
_warned: set[str] = set()  # the warnings given in this process: each once


def choice_category(choice: str) -> str:
    """Category of a choice, as its op registered it (lightnas.models.categories): binary,
    replaced, skipped, higher_precision, or other where it registered none."""
    return op_category(choice).category


def _format_stat(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _style(category: str, colored: bool) -> dict[str, str]:
    style = ["rounded"]
    attrs = {}
    if category == "skipped":
        style.append("dashed")
        attrs["color"] = attrs["fontcolor"] = "#777777"
    if colored:
        style.append("filled")
        attrs["fillcolor"] = PALETTE[category]
    return {"style": ",".join(style), **attrs}


def _add_legend(graph, categories: Sequence[str]) -> None:
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="rounded", color="#999999")
        for category in categories:
            legend.node(f"legend_{category}", LEGEND_LABELS[category], **_style(category, True))
        # Invisible edges stack the entries vertically instead of in one wide row.
        for upper, lower in pairwise(categories):
            legend.edge(f"legend_{upper}", f"legend_{lower}", style="invis")


def architecture_to_dot(
    arch: Architecture,
    title: str | None = None,
    colored: bool = True,
    stats: Mapping | None = None,
) -> str:
    """DOT source of `arch`: input → stem → one node per decision point → classifier."""

    graph = graphviz.Digraph(name=arch.space.name)
    label = [title or arch.space.name] + [
        f"{k}: {_format_stat(v)}" for k, v in (stats or {}).items()
    ]
    graph.attr(rankdir="TB", labelloc="t", fontsize="16", fontname="Helvetica")
    graph.attr(label="\\n".join(label))
    graph.attr("node", shape="box", fontname="Helvetica", fontsize="11")
    graph.node("input", "input", shape="oval")
    graph.node("stem", "stem")

    stages: dict[str, list[tuple[str, DecisionPoint]]] = {}
    for i, point in enumerate(arch.space):
        stages.setdefault(point.name.split(".")[0], []).append((f"p{i}", point))
    for stage, points in stages.items():
        with graph.subgraph(name=f"cluster_{stage}") as cluster:
            cluster.attr(label=stage, style="rounded", color="#999999")
            for node_id, point in points:
                choice = arch[point.name]
                style = _style(choice_category(choice), colored)
                cluster.node(node_id, f"{point.name}\\n{choice}", **style)
    graph.node("classifier", "classifier")

    chain = ["input", "stem"] + [f"p{i}" for i in range(len(arch))] + ["classifier"]
    for upper, lower in pairwise(chain):
        graph.edge(upper, lower)
    if colored:
        used = {choice_category(c) for c in arch.values()}
        _add_legend(graph, [c for c in CATEGORIES if c != "other" or c in used])
    return graph.source


def dot_available() -> bool:
    """Whether Graphviz's `dot` binary is on PATH."""
    return shutil.which("dot") is not None


def _warn_once(kind: str, message: str) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message)


def _check_formats(formats: Sequence[str]) -> None:
    bad = [f for f in formats if f not in RENDER_FORMATS]
    if bad:
        raise ConfigError(f"unknown graph format {bad[0]!r}; valid: {', '.join(RENDER_FORMATS)}")


def _failure(err: Exception) -> str:
    """Why `dot` failed, in a few words: its exit code and the first line it printed."""
    if isinstance(err, subprocess.CalledProcessError):
        said = (err.stderr or b"").decode(errors="replace").strip().splitlines()
        return f"exit code {err.returncode}" + (f": {said[0][:200]}" if said else "")
    return f"{type(err).__name__}: {err}"


def _pipe(dot_source: str, fmt: str) -> bytes | None:
    """`dot -T<fmt>` of the source; None (and one warning per process) when there is no `dot`
    or it fails."""
    if not dot_available():
        _warn_once("missing", _MISSING_DOT)
        return None
    try:
        return run_shielded(["dot", f"-T{fmt}"], dot_source.encode())
    except (subprocess.CalledProcessError, OSError) as err:  # OSError: `dot` vanished meanwhile
        _warn_once("failed", _FAILED_DOT.format(fmt=fmt, reason=_failure(err)))
        return None


def render_dot(dot_source: str, out_stem: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Render to out_stem.<fmt> per format; the files written: those `dot` rendered (a missing
    or failing `dot` is one warning per process, never an error)."""
    _check_formats(formats)
    out_stem = Path(out_stem)
    written = []
    for fmt in formats:
        data = _pipe(dot_source, fmt)
        if data is not None:
            path = out_stem.with_name(f"{out_stem.name}.{fmt}")
            write_atomic(path, data)
            written.append(path)
    return written


def render_png_bytes(dot_source: str) -> bytes | None:
    """PNG bytes of the graph (e.g. for TensorBoard), or None without a working `dot`."""
    return _pipe(dot_source, "png")


def architecture_table(arch: Architecture, stats: Mapping | None = None) -> str:
    """A narrow text table: one line per decision point (choice, category), then stats."""
    width = max([len("decision point")] + [len(name) for name in arch])
    choice_width = max([len("choice")] + [len(c) for c in arch.values()])
    lines = [
        f"space: {arch.space.name} ({len(arch)} decision points)",
        f"{'decision point':<{width}}  {'choice':<{choice_width}}  category",
    ]
    for name, choice in arch.items():
        lines.append(f"{name:<{width}}  {choice:<{choice_width}}  {choice_category(choice)}")
    counts = Counter(choice_category(c) for c in arch.values())
    lines.append("summary: " + ", ".join(f"{c} {counts[c]}" for c in CATEGORIES if counts[c]))
    for key, value in (stats or {}).items():
        lines.append(f"{key}: {_format_stat(value)}")
    return "\n".join(lines) + "\n"


_SUMMARY_LABELS = {"binary": "kept", "replaced": "replaced", "skipped": "skipped"}


def _summary_label(choice: str) -> str:
    """kept / replaced / skipped for block ops; a bit-width choice is its width ("1bit")."""
    if op_category(choice).bits is not None:
        return choice
    return _SUMMARY_LABELS.get(choice_category(choice), choice)


def blocks_summary(arch: Architecture) -> dict[str, object]:
    """What the original printed per epoch: per decision-point kind, how many blocks kept their
    base op, were replaced (a dense block's 1x1), skipped, or took each bit width, e.g.
    {"dense_kept": 14, "dense_replaced": 3, "improvement_kept": 12, "improvement_skipped": 5};
    with bit-width choices also "bits", the width of every block in order (0 = skipped).

    Every label any point's choices can take is a key (0 when unused), so the keys of one search
    are the same every epoch."""
    counts: dict[str, int] = {}
    bits: list[int] = []
    for point in arch.space:
        kind = point.kind or "block"
        for choice in point.choices:
            counts.setdefault(f"{kind}_{_summary_label(choice)}", 0)
        choice = arch[point.name]
        counts[f"{kind}_{_summary_label(choice)}"] += 1
        if any(op_category(c).bits is not None for c in point.choices):
            bits.append(op_category(choice).bits or 0)
    return {**counts, "bits": bits} if bits else dict(counts)


def _json_default(value: object) -> object:
    # Tensors and NumPy scalars in stats become plain numbers.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_architecture_files(
    arch: Architecture,
    out_dir: Path,
    stem: str,
    stats: Mapping | None = None,
    formats: Sequence[str] = ("png",),
    title: str | None = None,
) -> dict[str, Path]:
    """Write <stem>.json/.txt/.dot (and rendered formats when `dot` exists) into out_dir."""
    _check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = arch.to_dict()
    if stats:
        data["stats"] = dict(stats)
    dot_source = architecture_to_dot(arch, title=title or f"{arch.space.name} {stem}", stats=stats)
    contents = {
        "json": json.dumps(data, indent=2, default=_json_default) + "\n",
        "txt": architecture_table(arch, stats),
        "dot": dot_source,
    }
    paths = {}
    for ext, text in contents.items():
        paths[ext] = out_dir / f"{stem}.{ext}"
        write_atomic(paths[ext], text)
    for path in render_dot(dot_source, out_dir / stem, formats):
        paths[path.suffix[1:]] = path
    return paths


def _kind_from_name(name: str) -> str:
    return name.rsplit(".", 1)[-1] if "." in name else ""


def read_logged_architecture(path: Path) -> tuple[Architecture, dict | None]:
    """An Architecture and its stats from a saved .json, without the model's search space.

    Only the chosen choice of each point is known, so the rebuilt space has one choice per point.
    """
    data = read_architecture_json(path)
    points = [DecisionPoint(n, (str(c),), _kind_from_name(n)) for n, c in data["choices"].items()]
    space = SearchSpace(str(data.get("space", "architecture")), points)
    return Architecture.from_dict(space, data), data.get("stats")


def rerender_architecture_file(
    json_path: Path,
    formats: Sequence[str] = ("png",),
    colored: bool = True,
    title: str | None = None,
) -> list[Path]:
    """Rewrite the .dot next to a saved architecture .json and render it; returns paths written."""
    _check_formats(formats)
    json_path = Path(json_path)
    arch, stats = read_logged_architecture(json_path)
    dot_source = architecture_to_dot(arch, title=title, colored=colored, stats=stats)
    dot_path = json_path.with_suffix(".dot")
    write_atomic(dot_path, dot_source)
    return [dot_path, *render_dot(dot_source, json_path.with_suffix(""), formats)]
