"""`lightnas retrain trainings/<search>`: train a found architecture on its own, in a new folder.

The retrain is the search engine with `search.strategy=fixed`: the search's config.yml, then
retrain defaults (no sampled validation, no BN re-estimation: one architecture owns the BN
statistics; the search's sampling rule dropped: the fixed strategy trains its architecture alone
every step), then `-c` files and `--key value` overrides (a sampling rule among them is refused).
The folder `<search>_retrain` (never overwritten) holds the same artefacts as a search plus
`architecture.json`, the trained architecture and where it came from; `lightnas retrain --resume
<folder>` continues it. Under torchrun the ranks train it together, as a search
(lightnas.runtime.distributed).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightnas.config import ArgParser, Config, parse_config
from lightnas.engine.loop import Callback
from lightnas.errors import CheckpointError, ConfigError
from lightnas.layout import TrainingFolder, epoch_name
from lightnas.models import state_mismatch
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.run.folder import lock_folder, new_folder, run_logged, save_config
from lightnas.run.parts import GivenArchitecture, Parts, build_engine, build_parts
from lightnas.run.search import describe_best, run_quietly
from lightnas.run.search import search as run_search
from lightnas.runtime.distributed import LOCAL, Dist, session
from lightnas.runtime.fileio import write_json_atomic
from lightnas.search.space import Architecture, SearchSpace, load_architecture_file

# what a search's config.yml says that a retrain does not inherit; search.sampling and
# search.inplace_distill back to null (the strategy's rule) because a search's sandwich or
# in-place distillation would be refused with strategy fixed, which trains only its architecture
RETRAIN_DEFAULTS = (
    "--search.num_val_samples",
    "0",
    "--search.bn_recalibration_batches",
    "0",
    "--search.sampling",
    "null",
    "--search.inplace_distill",
    "null",
)


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
    if args.resume and (args.search or args.epoch is not None or args.arch or args.inherit):
        raise ConfigError("--resume takes only config overrides (-c, --key value)")
    return args, rest


def search_folder(path: str | None) -> TrainingFolder:
    if path is None:
        raise ConfigError("lightnas retrain: give the search's training folder (or --resume)")
    return TrainingFolder(Path(path)).checked()


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


def given_architecture(
    search: TrainingFolder, epoch: int | None, arch: str | None
) -> tuple[GivenArchitecture, str]:
    """(how to read the architecture to retrain against the supernet's space, where it comes
    from); a missing epoch file is refused here, before anything is built."""
    if arch == "base":
        return SearchSpace.default, "base network (first choice everywhere)"
    path = architecture_file(search, epoch, arch)
    return functools.partial(load_architecture_file, path), str(path)


def inherit_weights(parts: Parts, search: TrainingFolder) -> None:
    """Load the search's last supernet weights (its checkpoint) into the retrain's supernet."""
    state = load_checkpoint(search.checkpoints)["supernet"]
    wrong = state_mismatch(parts.supernet.state_dict(), state)
    if wrong:
        raise CheckpointError(
            f"--inherit: the supernet of {search} does not fit this config ({wrong}); "
            "keep model, search_space and data as searched"
        )
    parts.supernet.load_state_dict(state)


@dataclass
class Plan:
    """A checked retrain, before its folder exists."""

    cfg: Config
    ns: object
    parser: object
    parts: Parts
    arch: Architecture
    origin: dict  # where the architecture came from


def config_argv(
    search: TrainingFolder, configs: Sequence[str], rest: Sequence[str], name: str
) -> list[str]:
    """The config arguments of a retrain of `search`: its config.yml, the retrain defaults, the
    retrain's `configs` files and `rest` overrides. No `search.architecture`: the retrain hands
    its architecture to the fixed strategy (it names the retrain folder's copy once written)."""
    head = ["--config", str(search.config), *RETRAIN_DEFAULTS, "--name", name]
    head += ["--output_dir", str(search.root.parent)]
    files = [a for c in configs for a in ("--config", c)]
    return [*head, *files, *rest, "--search.strategy", "fixed", "--search.architecture", "null"]


def check_config(search: TrainingFolder, configs: Sequence[str]) -> None:
    """Parse the config a retrain of `search` with `configs` would get (a ConfigError if bad),
    building and writing nothing."""
    parse_config(config_argv(search, configs, [], search.name))


def plan(args: argparse.Namespace, rest: list[str], dist: Dist = LOCAL) -> Plan:
    """Config and parts (inherited weights loaded) of the retrain, writing nothing."""
    search = search_folder(args.search)
    name = f"{search.name}_{'base' if args.arch == 'base' else 'retrain'}"
    cfg, ns, parser = parse_config(config_argv(search, args.config, rest, name))
    given, source = given_architecture(search, args.epoch, args.arch)
    parts = build_parts(cfg, dist, given)  # the architecture checked against its space
    if args.inherit:
        inherit_weights(parts, search)
    origin = {"search": str(search.root), "architecture": source, "inherit": args.inherit}
    return Plan(cfg, ns, parser, parts, parts.strategy.architecture, origin)


def create_folder(plan: Plan, held: contextlib.ExitStack) -> TrainingFolder:
    """The retrain's new folder with its architecture.json and config.yml, locked until `held`
    closes."""
    folder = new_folder(plan.cfg)
    lock_folder(folder, held)
    copy = folder.architecture
    write_json_atomic(copy, {**plan.arch.to_dict(), "source": plan.origin})
    plan.cfg.search.architecture = str(copy)
    plan.ns["search.architecture"] = str(copy)
    save_config(plan.parser, plan.ns, folder.config)
    return folder


def prepare(
    args: argparse.Namespace, rest: list[str], dist: Dist, held: contextlib.ExitStack
) -> tuple[Config, Parts, TrainingFolder | None]:
    """Config, parts (inherited weights loaded) and the new folder (rank 0's, locked until
    `held` closes; None on the other ranks); nothing is written when any rank fails on bad
    input."""
    checked = dist.agree(lambda: plan(args, rest, dist))
    folder = create_folder(checked, held) if dist.is_main else None
    return checked.cfg, checked.parts, folder


def run(
    cfg: Config,
    parts: Parts,
    folder: TrainingFolder | None,
    dist: Dist = LOCAL,
    callbacks: Sequence[Callback] = (),
) -> int:
    """Train into `folder`, logging to its log.txt, as a search does (rank 0; the other ranks
    train along). `callbacks` are added to the run's own (e.g. a sweep's pruning hook)."""
    engine = build_engine(cfg, parts, callbacks, dist=dist)
    if folder is None:
        return run_quietly(engine)
    code = run_logged(engine, folder, parts.info, f"lightnas retrain --resume {folder.root}")
    if code:
        return code
    print(f"done: {describe_best(engine)}; evaluate with: lightnas evaluate {folder.root}")
    return 0


def retrain(argv: list[str], callbacks: Sequence[Callback] = ()) -> int:
    """`lightnas retrain ...`; bad input raises a LightNASError (one line, exit 2 in the CLI).
    `callbacks` are added to the run's own (e.g. a sweep's pruning hook)."""
    with session() as dist, contextlib.ExitStack() as held:
        args, rest = dist.agree(lambda: parse_args(argv))
        if args.resume:
            configs = [a for c in args.config for a in ("--config", c)]
            return run_search(["--resume", args.resume, *configs, *rest], callbacks)
        cfg, parts, folder = prepare(args, rest, dist, held)
        return run(cfg, parts, folder, dist, callbacks)
