"""`lightnas deploy <training folder | trainable file> [-o OUT.tflite] [--fallback float]
[--verify] [--benchmark]`: a child to a Larq Compute Engine .tflite, checked against the PyTorch
child, optionally verified on the test split and timed with LCE's interpreter.

The conversion (lightnas.deploy) needs the optional `deploy` extra: it is imported once the
arguments are parsed, so that `lightnas` without the extra starts and says which extra is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightnas import deploy
from lightnas.commands.evaluate import build_eval_data, load_data_config, pick_split
from lightnas.config import ArgParser
from lightnas.errors import ConfigError
from lightnas.export import (
    PACKED_SUFFIX,
    TFLITE,
    format_path,
    load_child,
    read_metadata,
    resolve_target,
)
from lightnas.runtime.fileio import make_folder, write_atomic
from lightnas.scoring.cost_metrics import count_costs


def add_timing_arguments(p: ArgParser, warmup: int, repeats: int, scope: str) -> None:
    """--threads, --warmup and --repeats of timings with LCE's interpreter (`scope`: of what)."""
    p.add_argument("--threads", type=int, default=1, help=f"interpreter threads ({scope})")
    p.add_argument("--warmup", type=int, default=warmup, help=f"untimed runs first ({scope})")
    p.add_argument("--repeats", type=int, default=repeats, help=f"timed runs, median ({scope})")


def check_timing_arguments(args: argparse.Namespace) -> None:
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise ConfigError("--threads and --repeats must be >= 1, --warmup >= 0")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas deploy", allow_abbrev=False, description=__doc__)
    p.add_argument("target", help="a training folder or an exported trainable (.safetensors)")
    p.add_argument("--epoch", type=int, help="a folder's export of epoch N (default: best)")
    p.add_argument("-o", "--output", help="the .tflite to write (default: beside the exports)")
    p.add_argument(
        "--fallback",
        choices=deploy.FALLBACKS,
        help="keep k-bit convs as float convs instead of refusing",
    )
    p.add_argument("--verify", action="store_true", help="compare with PyTorch on the test split")
    p.add_argument("-c", "--config", help="config.yml for --verify's data (default: the folder's)")
    p.add_argument("--data-dir", help="override data.data_dir for --verify")
    p.add_argument("--benchmark", action="store_true", help="time it with LCE's interpreter")
    add_timing_arguments(p, warmup=5, repeats=50, scope="--benchmark")
    args = p.parse_args(argv)
    check_timing_arguments(args)
    if args.output and Path(args.output).suffix != f".{TFLITE}":
        raise ConfigError(f"--output {args.output}: give a .{TFLITE} file path")
    return args


def default_output(weights: Path) -> Path:
    """Where `export.formats: [tflite]` writes the child of `weights`."""
    name = weights.name.removesuffix(PACKED_SUFFIX).removesuffix(".safetensors")
    return format_path(weights.parent.parent, name, TFLITE)


def main(argv: list[str]) -> int:
    """`lightnas deploy ...`; bad input raises a LightNASError before anything is written."""
    args = parse_args(argv)
    with deploy.extra_imports():
        # imported here: TensorFlow, Larq and LCE are the optional `deploy` extra
        from lightnas.deploy.benchmark import time_tflite
        from lightnas.deploy.convert import (
            CHECK_IMAGES,
            compare,
            convert_child,
            file_parts,
            random_check,
        )

    weights, folder_config, _ = resolve_target(args.target, args.epoch)
    description = read_metadata(weights)
    net = load_child(weights)
    shape = description["model"]["input_shape"]
    loader = verify_loader(args, folder_config, weights) if args.verify else None
    out = Path(args.output) if args.output else default_output(weights)
    deployment = convert_child(net, shape, description, args.fallback)
    if deployment.float_fallback:
        print(
            f"warning: k-bit convs kept as float convs (recorded in the file's metadata): "
            f"{', '.join(deployment.float_fallback)}",
            file=sys.stderr,
        )
    make_folder(out.parent, "--output")
    write_atomic(out, deployment.flatbuffer)
    ops = ", ".join(f"{name} {n}" for name, n in deployment.ops.items())
    parts = file_parts(deployment.flatbuffer)
    model_bytes = count_costs(net, shape).model_bits / 8
    print(
        f"wrote {out} ({parts.total / 1e3:.1f} kB: weights {parts.weights / 1e3:.1f} kB for a "
        f"model of {model_bytes / 1e3:.1f} kB in bits / 8, graph {parts.graph / 1e3:.1f} kB, "
        f"metadata {parts.metadata / 1e3:.1f} kB)"
    )
    print(
        f"binary convs: {deployment.bconv_ops} LCE binary conv ops for the child's "
        f"{len(deployment.binary_convs)} 1-bit convs; float fallback: "
        f"{len(deployment.float_fallback)}"
    )
    if deployment.grouped:
        print(
            f"grouped binary convs: {deployment.grouped}; they run LCE's indirect BGEMM kernels "
            "(on the device: RegisterLCECustomOps(resolver, false, true))"
        )
    print(f"ops: {ops}")
    diff = random_check(net, deployment.flatbuffer, shape)
    print(f"check: {CHECK_IMAGES} random images, max |logit difference| to PyTorch {diff:.3g}")
    if loader is not None:
        print(compare(net, deployment.flatbuffer, loader).describe())
    if args.benchmark:
        timing = time_tflite(deployment.flatbuffer, args.threads, args.warmup, args.repeats)
        print(timing.describe())
    return 0


def verify_loader(args: argparse.Namespace, folder_config: Path | None, weights: Path):
    """The test split (else validation) of the child's training data, for --verify."""
    config = Path(args.config) if args.config else folder_config
    if config is None or not config.is_file():
        raise ConfigError(
            f"--verify: {weights} has no config.yml of its training folder; pass --config"
        )
    data = build_eval_data(load_data_config(config, args.data_dir), "cpu")
    return pick_split(data, "test")[0]
