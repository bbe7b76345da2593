"""`lightnas retrain trainings/<search>`: train a found architecture on its own, in a new folder.

The retrain is the search engine with `search.strategy=fixed`: the search's config.yml, then
retrain defaults (no sampled validation, no BN re-estimation: one architecture owns the BN
statistics), then `-c` files and `--key value` overrides. The folder `<search>_retrain` (never
overwritten) holds the same artefacts as a search plus `architecture.json`, the trained
architecture and where it came from; `lightnas retrain --resume <folder>` continues it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lightnas.checkpoint import load_checkpoint
from lightnas.config import ArgParser, Config, parse_config
from lightnas.distill import mismatched_keys
from lightnas.errors import CheckpointError, ConfigError
from lightnas.fileio import write_json_atomic
from lightnas.layout import TrainingFolder, epoch_name
from lightnas.runs import (
    Parts,
    build_engine,
    build_parts,
    build_supernet,
    describe_best,
    new_folder,
    run_logged,
    save_config,
)
from lightnas.runs import search as run_search
from lightnas.search.space import Architecture, SearchSpace, load_architecture_file

RETRAIN_DEFAULTS = ("--search.num_val_samples", "0", "--search.bn_recalibration_batches", "0")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Retrain options, and the rest: config overrides such as `--epochs 50`."""
    usage = "lightnas retrain SEARCH_FOLDER [options] [--key value ...] | --resume FOLDER"
    p = ArgParser(prog="lightnas retrain", usage=usage, allow_abbrev=False, description=__doc__)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--epoch", type=int, help="the architecture of epoch N of the search")
    which.add_argument("--arch", help="an architecture JSON file, or `base` (first choices)")
    p.add_argument(
        "--inherit", action="store_true", help="start from the search's last supernet weights"
    )
    p.add_argument("-c", "--config", action="append", default=[], help="retrain YAML overrides")
    p.add_argument("--resume", help="a retrain folder to continue")
    # the folder comes first: after unknown `--key value` overrides a value looks positional
    search = argv[0] if argv and not argv[0].startswith("-") else None
    args, rest = p.parse_known_args(argv[1:] if search else argv)
    args.search = search
    return args, rest


def search_folder(path: str | None) -> TrainingFolder:
    if path is None:
        raise ConfigError("lightnas retrain: give the search's training folder (or --resume)")
    folder = TrainingFolder(Path(path))
    if not folder.is_training():
        raise CheckpointError(f"{folder.root} is not a training folder (no config.yml in it)")
    return folder


def space_of(cfg: Config) -> SearchSpace:
    """The search space of `cfg`'s supernet, built without allocating weights."""
    with torch.device("meta"):
        return build_supernet(cfg, 2).space


def architecture_file(search: TrainingFolder, epoch: int | None, arch: str | None) -> Path:
    """The JSON holding the architecture to retrain (default: the search's best)."""
    if arch is not None:
        return Path(arch)
    if epoch is None:
        return search.best_architecture
    path = search.architectures / f"{epoch_name(epoch)}.json"
    if not path.is_file():
        logged = sorted(p.stem for p in path.parent.glob("epoch_*.json"))
        raise CheckpointError(f"{path} does not exist; logged: {', '.join(logged) or 'none'}")
    return path


def load_arch(
    space: SearchSpace, search: TrainingFolder, epoch: int | None, arch: str | None
) -> tuple[Architecture, str]:
    """(architecture, where it came from) for the retrain."""
    if arch == "base":
        return space.default(), "base network (first choice everywhere)"
    path = architecture_file(search, epoch, arch)
    return load_architecture_file(path, space), str(path)


def inherit_weights(parts: Parts, search: TrainingFolder) -> None:
    """Load the search's last supernet weights (its checkpoint) into the retrain's supernet."""
    state = load_checkpoint(search.checkpoints)["supernet"]
    wrong = mismatched_keys(parts.supernet.state_dict(), state)
    if wrong:
        raise CheckpointError(
            f"--inherit: the supernet of {search} does not fit this config (first mismatch "
            f"{wrong[0]}, {len(wrong)} in all); keep model, search_space and data as searched"
        )
    parts.supernet.load_state_dict(state)


def prepare(args: argparse.Namespace, rest: list[str]) -> tuple[Config, Parts, TrainingFolder]:
    """Config, parts (inherited weights loaded) and the new folder; nothing written on error."""
    search = search_folder(args.search)
    name = f"{search.name}_{'base' if args.arch == 'base' else 'retrain'}"
    configs = [a for c in args.config for a in ("--config", c)]
    head = ["--config", str(search.config), *RETRAIN_DEFAULTS, "--name", name]
    head += ["--output_dir", str(search.root.parent)]
    argv = [*head, *configs, *rest, "--search.strategy", "fixed"]
    with tempfile.TemporaryDirectory() as tmp:
        # validate the architecture against the configured space before building anything
        cfg = parse_config([*argv, "--search.architecture", "-"])[0]
        arch, source = load_arch(space_of(cfg), search, args.epoch, args.arch)
        arch_file = Path(tmp) / "architecture.json"
        arch_file.write_text(arch.to_json())
        cfg, ns, parser = parse_config([*argv, "--search.architecture", str(arch_file)])
        parts = build_parts(cfg)
    if args.inherit:
        inherit_weights(parts, search)
    folder = new_folder(cfg)
    copy = folder.architecture
    origin = {"search": str(search.root), "architecture": source, "inherit": args.inherit}
    write_json_atomic(copy, {**arch.to_dict(), "source": origin})
    cfg.search.architecture = str(copy)
    ns["search.architecture"] = str(copy)
    save_config(parser, ns, folder.config)
    return cfg, parts, folder


def run(cfg: Config, parts: Parts, folder: TrainingFolder) -> int:
    """Train into `folder`, logging to its log.txt, as a search does."""
    engine = build_engine(cfg, parts)
    code = run_logged(engine, folder, parts.info, f"lightnas retrain --resume {folder.root}")
    if code:
        return code
    print(f"done: {describe_best(engine)}; evaluate with: lightnas evaluate {folder.root}")
    return 0


def main(argv: list[str]) -> int:
    """`lightnas retrain ...`; bad input raises a LightNASError (one line, exit 2 in the CLI)."""
    args, rest = parse_args(argv)
    if args.resume:
        if args.search or args.epoch is not None or args.arch or args.inherit:
            raise ConfigError("--resume takes only config overrides (-c, --key value)")
        configs = [a for c in args.config for a in ("--config", c)]
        return run_search(["--resume", args.resume, *configs, *rest])
    cfg, parts, folder = prepare(args, rest)
    return run(cfg, parts, folder)
