"""`lightnas deploy` (a child to a Larq Compute Engine .tflite, checked, optionally verified on
the test split and timed) and `lightnas latency-table` (a per-op latency table measured on this
machine, for `search.latency_table.csv`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lightnas.config import ArgParser
from lightnas.deploy.benchmark import time_tflite
from lightnas.deploy.convert import compare, convert_child, run_tflite
from lightnas.deploy.keras_model import FALLBACKS
from lightnas.deploy.latency_table import ENGINES, measure_latency_table
from lightnas.errors import ConfigError
from lightnas.evaluate import build_eval_data, load_data_config, pick_split
from lightnas.export import (
    PACKED_SUFFIX,
    TFLITE,
    format_path,
    load_child,
    read_metadata,
    resolve_target,
)
from lightnas.fileio import make_folder, write_atomic
from lightnas.layout import TrainingFolder

CHECK_IMAGES = 2  # random images every deployment is checked on against the PyTorch child


# ---- lightnas deploy --------------------------------------------------------------------------
def parse_deploy_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas deploy", allow_abbrev=False, description=__doc__)
    p.add_argument("target", help="a training folder or an exported trainable (.safetensors)")
    p.add_argument("--epoch", type=int, help="a folder's export of epoch N (default: best)")
    p.add_argument("-o", "--output", help="the .tflite to write (default: beside the exports)")
    p.add_argument(
        "--fallback", choices=FALLBACKS, help="keep k-bit convs as float convs instead of refusing"
    )
    p.add_argument("--verify", action="store_true", help="compare with PyTorch on the test split")
    p.add_argument("-c", "--config", help="config.yml for --verify's data (default: the folder's)")
    p.add_argument("--data-dir", help="override data.data_dir for --verify")
    p.add_argument("--benchmark", action="store_true", help="time it with LCE's interpreter")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (--benchmark)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (--benchmark)")
    p.add_argument("--repeats", type=int, default=50, help="timed runs, median (--benchmark)")
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise ConfigError("--threads and --repeats must be >= 1, --warmup >= 0")
    if args.output and Path(args.output).suffix != f".{TFLITE}":
        raise ConfigError(f"--output {args.output}: give a .{TFLITE} file path")
    return args


def default_output(weights: Path) -> Path:
    """Where `export.formats: [tflite]` writes the child of `weights`."""
    name = weights.name.removesuffix(PACKED_SUFFIX).removesuffix(".safetensors")
    return format_path(weights.parent.parent, name, TFLITE)


def random_check(net: torch.nn.Module, flatbuffer: bytes, input_shape: list[int]) -> float:
    """The largest |logit difference| between the .tflite and `net` on random images."""
    images = torch.randn(CHECK_IMAGES, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(images).numpy()
    return float(abs(run_tflite(flatbuffer, images.numpy()) - expected).max())


def deploy_main(argv: list[str]) -> int:
    """`lightnas deploy ...`; bad input raises a LightNASError before anything is written."""
    args = parse_deploy_args(argv)
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
    print(f"wrote {out} ({len(deployment.flatbuffer) / 1e3:.1f} kB)")
    print(
        f"binary convs: {deployment.bconv_ops} LCE binary conv ops for the child's "
        f"{len(deployment.binary_convs)} 1-bit convs; float fallback: "
        f"{len(deployment.float_fallback)}"
    )
    print(f"ops: {ops}")
    diff = random_check(net, deployment.flatbuffer, shape)
    print(f"check: {CHECK_IMAGES} random images, max |logit difference| to PyTorch {diff:.3g}")
    if loader is not None:
        print(compare(net, deployment.flatbuffer, loader).describe())
    if args.benchmark:
        timing = time_tflite(
            deployment.flatbuffer, args.threads, args.warmup, args.repeats, reference=False
        )
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


# ---- lightnas latency-table -------------------------------------------------------------------
def parse_table_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas latency-table", allow_abbrev=False, description=__doc__)
    p.add_argument("target", help="a training folder, or a config .yml")
    p.add_argument("--engine", choices=ENGINES, default="lce", help="what runs the ops")
    p.add_argument("-o", "--output", help="CSV to write (default: <folder>/latency_table.csv)")
    p.add_argument("--data-dir", help="override data.data_dir (for the number of classes)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (lce)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per op")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per op (the median)")
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise ConfigError("--threads and --repeats must be >= 1, --warmup >= 0")
    return args


def table_paths(target: str, output: str | None) -> tuple[Path, Path]:
    """(the config to read, the CSV to write) of a training folder or a config file."""
    path = Path(target)
    if path.is_file():
        config, default = path, path.with_name("latency_table.csv")
    else:
        folder = TrainingFolder(path)
        if not folder.config.is_file():
            raise ConfigError(f"{target} is neither a training folder (config.yml) nor a config")
        config, default = folder.config, folder.latency_table
    out = Path(output) if output else default
    if out.exists() and not output:
        # a search's own table is what its resume reads back: never replaced unasked
        raise ConfigError(f"{out} exists; pass -o <new file>.csv to write the table elsewhere")
    if out.is_dir():
        raise ConfigError(f"--output {out} is a folder; give a .csv file path")
    return config, out


def latency_table_main(argv: list[str]) -> int:
    """`lightnas latency-table ...`."""
    args = parse_table_args(argv)
    config, out = table_paths(args.target, args.output)
    cfg = load_data_config(config, args.data_dir)
    table, source = measure_latency_table(
        cfg, args.engine, threads=args.threads, warmup=args.warmup, repeats=args.repeats
    )
    make_folder(out.parent, "--output")
    table.write_csv(out)
    total = table.latency(table.space.default()) * 1e3
    print(f"wrote {out}: {len(table.entries)} entries ({source})")
    print(f"base network ({table.space.name}, every first choice): {total:.4g} ms")
    print(f"use it with: search.latency_table.csv: {out}")
    return 0
