"""`lightnas latency-table [--engine lce|torch] <training folder | config.yml> [-o CSV]`: the
per-op latency table of a search space measured on this machine, in the `latency_table.csv`
format that `search.latency_table.csv` reads (lightnas.scoring.latency).

Every (decision point, choice) is extracted and timed alone at the input shape it sees in the
network. `--engine lce` (the `deploy` extra) converts each into a .tflite and times it with Larq
Compute Engine's interpreter at batch 1 (lightnas.deploy.latency): a k-bit choice, which has no
LCE kernel, is timed as `lightnas deploy --fallback float` would run it. `--engine torch` times
the PyTorch op, its binary convs emulated in float, as a search does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightnas import deploy
from lightnas.commands.deploy import add_timing_arguments, check_timing_arguments
from lightnas.commands.evaluate import build_eval_data, load_data_config
from lightnas.config import ArgParser, Config
from lightnas.errors import ConfigError
from lightnas.layout import TrainingFolder
from lightnas.run.parts import build_supernet
from lightnas.runtime.fileio import make_folder
from lightnas.scoring.latency import LatencyCostTable, LatencyTable, LatencyTableOptions

ENGINES = ("lce", "torch")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ArgParser(prog="lightnas latency-table", allow_abbrev=False, description=__doc__)
    p.add_argument("target", help="a training folder, or a config .yml")
    p.add_argument("--engine", choices=ENGINES, default="lce", help="what runs the ops")
    p.add_argument("-o", "--output", help="CSV to write (default: <folder>/latency_table.csv)")
    p.add_argument("--data-dir", help="override data.data_dir (for the number of classes)")
    add_timing_arguments(p, warmup=3, repeats=20, scope="per op")
    args = p.parse_args(argv)
    check_timing_arguments(args)
    return args


def table_paths(target: str, output: str | None) -> tuple[Path, Path]:
    """(the config to read, the CSV to write) of a training folder or a config file."""
    path = Path(target)
    if path.is_file():
        # beside the config, named as a training folder's own table
        config, default = path, TrainingFolder(path.parent).latency_table
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


def measure_latency_table(
    cfg: Config, engine: str, threads: int = 1, warmup: int = 3, repeats: int = 20
) -> tuple[LatencyTable, str]:
    """(the latency table of `cfg`'s supernet measured by `engine`, where its entries come from)."""
    base = cfg.search.latency_table
    options = LatencyTableOptions(repeats, warmup, 1 if engine == "lce" else base.batch_size)
    if engine == "lce":
        with deploy.extra_imports():
            # imported here: TensorFlow, Larq and LCE are the optional `deploy` extra
            from lightnas.deploy.latency import lce_measure

        measure, source = lce_measure(threads, warmup, repeats)
    else:
        options.functions = dict(base.functions)
        measure, source = None, "PyTorch on cpu (binary convs emulated in float)"
    data = build_eval_data(cfg, "cpu")
    supernet = build_supernet(cfg, data.num_classes, data.input_shape[0]).eval()
    costs = LatencyCostTable(supernet, data.input_shape, options, measure=measure)
    return costs.latency, source


def main(argv: list[str]) -> int:
    """`lightnas latency-table ...`."""
    args = parse_args(argv)
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
