"""`lightnas space FILE`: check a space file (docs/spaces.md), print its decision points, the
number of architectures and the OPs / parameter range (cheapest, base, largest architecture),
and write its graph (SVG through Graphviz, the decision points highlighted).

Bad input (a malformed file, a bad option) is one line and exit code 2; nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lightnas.config import ArgParser
from lightnas.errors import ConfigError
from lightnas.models import STEMS
from lightnas.models.graph import OPS, SpaceError, read_space_file
from lightnas.models.graph.ops import REQUIRED
from lightnas.outputs.graphs import RENDER_FORMATS, render_dot
from lightnas.runtime.fileio import write_atomic
from lightnas.scoring.space_summary import format_summary, summarize_space

GRAPH_SUFFIXES = (*RENDER_FORMATS, "dot")


def parser() -> ArgParser:
    p = ArgParser(prog="lightnas space", description=__doc__.splitlines()[0])
    p.add_argument(
        "file", nargs="?", help="the space file, e.g. configs/spaces/meliusnet22_bits.yml"
    )
    p.add_argument("--ops", action="store_true", help="list the ops nodes can use, and exit")
    p.add_argument(
        "--full",
        action="store_true",
        help="draw every repetition of a repeated group (default: the first, the rest as one box)",
    )
    p.add_argument(
        "-o",
        "--output",
        help=f"the graph file: .{', .'.join(GRAPH_SUFFIXES)} (default: <file name>.svg here)",
    )
    p.add_argument("--classes", type=int, default=10, help="classes of the head (default 10)")
    p.add_argument("--image-size", type=int, help="height and width (default: the file's input)")
    p.add_argument(
        "--stem",
        default="thumbnail",
        help=f"stem of a stem node that names no type; valid: {STEMS.valid()}",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one of the file's params (repeatable), e.g. --param growth=32",
    )
    return p


def parse_params(items: list[str]) -> dict:
    """`name=value` (value read as YAML: 32, [1, 2], true) -> {name: value}."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r}: write it as NAME=VALUE, e.g. growth=32")
        try:
            params[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--param {item!r}: the value is not valid YAML") from None
    return params


def output_path(file: str, output: str | None) -> Path:
    path = Path(output) if output else Path(f"{Path(file).stem}.svg")
    fmt = path.suffix.lstrip(".")
    if fmt not in GRAPH_SUFFIXES:
        raise ConfigError(
            f"--output {path}: unknown graph format; valid: .{', .'.join(GRAPH_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise ConfigError(f"--output {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder; name a file")
    return path


def ops_table() -> str:
    """Every registered op: its arguments with their defaults, and what it is."""
    lines = []
    for name in OPS.names():
        op = OPS[name]
        args = [k if a.default is REQUIRED else f"{k}={a.default}" for k, a in op.args.items()]
        reads = "2+ inputs" if op.merge else ""
        lines.append(f"{name}({', '.join(args)}){'  ' + reads if reads else ''}")
        lines.append(f"    {op.doc}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.ops:
        print(ops_table())
        return 0
    if args.file is None:
        raise ConfigError("lightnas space: give a space file (or --ops)")
    for key, value in (("--classes", args.classes), ("--image-size", args.image_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{key}={value} must be >= 1")
    STEMS[args.stem]  # noqa: B018  (an unknown stem is a ConfigError naming the valid ones)
    out = output_path(args.file, args.output)
    _, space = read_space_file(args.file, parse_params(args.param))
    shape = space.input_shape
    if args.image_size is not None:
        shape = (shape[0], args.image_size, args.image_size)
    try:
        summary = summarize_space(space, args.classes, args.stem, shape, compact=not args.full)
    except SpaceError as err:
        raise err.with_source(args.file) from None
    print(format_summary(summary, args.file))
    print(f"graph: {write_graph(summary.dot, out)}")
    return 0


def write_graph(dot: str, out: Path) -> Path:
    """`dot` rendered to `out` (its suffix the format); without Graphviz, the .dot beside it."""
    fmt = out.suffix.lstrip(".")
    if fmt != "dot":
        written = render_dot(dot, out.with_suffix(""), [fmt])
        if written:
            return written[0]
        out = out.with_suffix(".dot")
    write_atomic(out, dot)
    return out
