"""Command line: `train_enas.py` / `lightnas search` run a search from one YAML file."""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lightnas.checkpoint import load_checkpoint
from lightnas.config import Config, ConfigError, parse_config
from lightnas.data import build_data
from lightnas.distill import build_teacher, make_engine
from lightnas.engine import Engine, NonFiniteLossError
from lightnas.errors import LightNASError
from lightnas.export import model_info
from lightnas.models import create_supernet
from lightnas.search.space import Architecture
from lightnas.search.strategies import EnasStrategy, FixedStrategy, RandomStrategy, Strategy
from lightnas.tracking import standard_callbacks

# keys that may change when resuming; everything else must match the checkpoint's config
RESUMABLE = ("epochs", "device", "progress", "export", "data.num_workers", "data.data_dir")
AUTOSAVE_DIR = Path("configs/autosaved")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available; valid here: auto, cpu")
    return device


def new_folder(cfg: Config) -> Path:
    """trainings/<name>; a taken name gets a numeric suffix, never reusing a folder."""
    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M")
    base = Path(cfg.output_dir) / (cfg.name or f"{cfg.model.name}_{stamp}")
    folder, n = base, 1
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
            folder = base.with_name(f"{base.name}_{n}")


def build_strategy(cfg: Config, supernet) -> Strategy:
    space = supernet.space
    s, c = cfg.search, cfg.controller
    if s.strategy == "random":
        return RandomStrategy(space, cfg.seed)
    if s.strategy == "fixed":
        data = json.loads(Path(s.architecture).read_text())
        data = data.get("architecture", data)  # an exported json nests it
        return FixedStrategy(space, Architecture.from_dict(space, data), cfg.seed)
    return EnasStrategy(
        space,
        cfg.seed,
        s.warmup_epochs,
        c.hidden_size,
        c.temperature,
        c.tanh_constant,
        c.lr,
        c.entropy_weight,
        c.baseline_decay,
        c.grad_clip,
    )


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        name = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict) and k != "search_space":
            out += config_differences(a[k], b[k], f"{name}.")
        elif a.get(k) != b.get(k):
            out.append(name)
    return out


class Tee:
    """Copy a stream into the training folder's log file."""

    def __init__(self, stream, log) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def save_config(parser, ns, path: Path, overwrite: bool = False) -> None:
    ns = ns.clone()
    for key in ("resume", "force", "config", "__path__"):
        if key in ns:
            del ns[key]
    parser.save(ns, path, overwrite=overwrite)


def prepare(argv: list[str]) -> tuple[Config, object, object, Path | None, dict | None]:
    """Parse and resolve --resume: (config, namespace, parser, resumed folder, checkpoint)."""
    argv = ["--print_config" if a == "--print-config" else a for a in argv]
    cfg, ns, parser = parse_config(argv)
    if not ns.resume:
        return cfg, ns, parser, None, None
    folder = Path(ns.resume)
    if not (folder / "config.yml").exists():
        raise ConfigError(f"--resume {folder}: not a training folder (no config.yml in it)")
    state = load_checkpoint(folder / "enas_checkpoint")
    # the saved config first, then whatever the command line adds on top of it
    cfg, ns, parser = parse_config(["--config", str(folder / "config.yml"), *argv])
    changed = [
        k
        for k in config_differences(state["config"], cfg.to_dict())
        if not any(k == r or k.startswith(r + ".") for r in RESUMABLE)
    ]
    if changed and not ns.force:
        raise ConfigError(
            f"--resume {folder}: the config differs from the checkpoint's in "
            f"{', '.join(changed)}; only {', '.join(RESUMABLE)} may change "
            "(pass --force true to resume anyway)"
        )
    if cfg.epochs <= state["epoch"]:
        raise ConfigError(
            f"--resume {folder}: {state['epoch']} of epochs={cfg.epochs} already done; "
            "raise --epochs to train longer"
        )
    return cfg, ns, parser, folder, state


@dataclass
class Parts:
    """Everything a run needs, built (and checked) before a training folder exists."""

    data: object
    supernet: object
    strategy: Strategy
    info: dict
    device: torch.device
    teacher: torch.nn.Module | None = None  # distill.teacher, built and checked up front


def build_parts(cfg: Config) -> Parts:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.data, seed=cfg.seed, device=device)
    try:
        supernet = create_supernet(
            cfg.model.name,
            data.num_classes,
            cfg.model.stem,
            cfg.search_space,
            in_channels=data.input_shape[0],
            **cfg.model.kwargs,
        )
    except TypeError as err:
        raise ConfigError(
            f"model.kwargs={cfg.model.kwargs} do not fit {cfg.model.name} ({err}); see the "
            "model's keyword arguments in lightnas/models/"
        ) from None
    info = model_info(
        cfg.model.name,
        data.num_classes,
        cfg.model.stem,
        cfg.search_space,
        cfg.model.kwargs,
        data.input_shape,
        data.mean,
        data.std,
    )
    teacher = (
        build_teacher(cfg, data.num_classes, data.input_shape) if cfg.distill.teacher else None
    )
    return Parts(data, supernet, build_strategy(cfg, supernet), info, device, teacher)


def run_search(cfg: Config, parts: Parts, folder: Path, state: dict | None) -> Engine:
    """Run the search of `cfg` into `folder`, resuming from `state` when given."""
    callbacks = standard_callbacks(cfg, folder, parts.info)
    engine = make_engine(
        cfg, parts.supernet, parts.strategy, parts.data, parts.device, callbacks, parts.teacher
    )
    if state is not None:
        engine.load_state_dict(state)
        print(f"resuming {folder} after epoch {engine.epoch}", flush=True)
    engine.run()
    return engine


def run_logged(
    cfg: Config, parts: Parts, folder: Path, state: dict | None, resume_command: str
) -> Engine | int:
    """Run into `folder`, output copied to its log.txt; an int is a stopped run's exit code."""
    with open(folder / "log.txt", "a") as log:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(stdout, log), Tee(stderr, log)
        try:
            print(f"training folder: {folder}", flush=True)
            return run_search(cfg, parts, folder, state)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: the checkpoint of the last completed epoch is in "
                f"{folder / 'enas_checkpoint'}; continue with: {resume_command}",
                file=sys.stderr,
                flush=True,
            )
            return 130
        except NonFiniteLossError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
        finally:
            sys.stdout, sys.stderr = stdout, stderr


def search_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, ns, parser, folder, state = prepare(argv)
        parts = build_parts(cfg)
        if folder is None:
            folder = new_folder(cfg)
            save_config(parser, ns, folder / "config.yml")
            if not any(a in ("-c", "--config") for a in argv) or len(argv) > 2:
                AUTOSAVE_DIR.mkdir(parents=True, exist_ok=True)
                save_config(parser, ns, AUTOSAVE_DIR / f"{folder.name}.yml", overwrite=True)
        else:
            save_config(parser, ns, folder / "config.yml", overwrite=True)
    except (LightNASError, ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    engine = run_logged(cfg, parts, folder, state, f"python train_enas.py --resume {folder}")
    if isinstance(engine, int):
        return engine
    best = engine.best
    print(
        f"done: best architecture (epoch {best['epoch']}, val acc {best['val_acc']:.4f}) "
        f"in {folder / 'best_architecture.json'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`lightnas search ...` (= train_enas.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from lightnas.evaluate import evaluate_main
    from lightnas.retrain import retrain_main

    commands = {"search": search_main, "retrain": retrain_main, "evaluate": evaluate_main}
    if not argv or argv[0] not in commands:
        print(f"usage: lightnas {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
