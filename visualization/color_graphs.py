"""Re-render the architectures of a training folder: logs/architectures/epoch_N.json → .dot/.png.

python visualization/color_graphs.py trainings/<name> [--format png svg pdf] [--no-color]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lightnas.errors import LightNASError
from lightnas.layout import TrainingFolder
from lightnas.outputs.graphs import RENDER_FORMATS, dot_available, rerender_architecture_file

_EPOCH_JSON = re.compile(r"epoch_(\d+)\.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("training", type=Path, help="a training folder, e.g. trainings/<name>")
    parser.add_argument("--format", nargs="+", default=["png"], choices=RENDER_FORMATS)
    parser.add_argument("--no-color", action="store_true", help="plain boxes, no legend")
    return parser.parse_args(argv)


def epoch_files(arch_dir: Path) -> list[Path]:
    """The epoch_N.json files, in epoch order."""
    numbered = [(_EPOCH_JSON.fullmatch(p.name), p) for p in arch_dir.iterdir()]
    return [p for m, p in sorted((int(m.group(1)), p) for m, p in numbered if m)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arch_dir = TrainingFolder(args.training).architectures
    if not arch_dir.is_dir():
        print(
            f"error: {args.training} is not a training folder (no logs/architectures/)",
            file=sys.stderr,
        )
        return 2
    rendered = True
    for path in epoch_files(arch_dir):
        title = f"{args.training.resolve().name} {path.stem}"
        try:
            written = rerender_architecture_file(path, args.format, not args.no_color, title)
        except LightNASError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        rendered &= len(written) == 1 + len(args.format)  # the .dot and every format
        print(" ".join(str(p) for p in written))
    if not rendered:
        why = "is not installed" if not dot_available() else "failed (see the warning above)"
        print(
            f"error: not rendered ({' '.join(args.format)}): Graphviz's `dot` {why}, "
            "so only the .dot files were written (apt-get install graphviz)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
