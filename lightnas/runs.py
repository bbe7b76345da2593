"""A run: its training folder, its parts (data, supernet, strategy, teacher) and its engine.

The command line, `lightnas retrain`, sweeps, the dashboard, the benchmarks and the tests start
and resume runs through this module; it is the only one that creates a training folder.

Under torchrun every rank parses, builds and checks the same run (every machine sees the same
config, dataset and, to resume, training folder); bad input on any rank stops them all before
anything is written, and only rank 0 writes the folder (lightnas.distributed).
"""

from __future__ import annotations

import contextlib
import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lightnas.checkpoint import has_checkpoint, load_checkpoint
from lightnas.compiling import compile_supernet
from lightnas.config import Config, parse_config, resolve_device
from lightnas.cost import COSTS, forward_runs
from lightnas.data import DataBundle, build_data
from lightnas.distill import DistillationLoss, build_teacher
from lightnas.distributed import LOCAL, Dist, session
from lightnas.engine import Callback, Engine, NonFiniteLossError, cross_entropy
from lightnas.errors import CheckpointError, ConfigError
from lightnas.evaluation import Evaluator, Placement, ScoringOptions
from lightnas.export import model_info
from lightnas.fileio import exclusive_lock, make_folder
from lightnas.latency import LatencyCostTable, latency_cost_table
from lightnas.layout import TrainingFolder
from lightnas.models import Supernet, create_supernet
from lightnas.models.graph import space_kwargs
from lightnas.sampling import TrainingSampler
from lightnas.search.strategies import STRATEGIES, Strategy
from lightnas.tracking import FAILED, INTERRUPTED, standard_callbacks, write_status

# keys that may change when resuming; everything else must match the checkpoint's config
RESUMABLE = (
    "epochs",
    "device",
    "progress",
    "export",
    "tracking",
    "data.num_workers",
    "data.data_dir",
    "distributed",
)
AUTOSAVE_DIR = Path("configs/autosaved")


# ---- the parts of a run ------------------------------------------------------------------
@dataclass
class Parts:
    """Everything a run needs, built (and checked) before a training folder exists."""

    data: DataBundle
    supernet: Supernet
    strategy: Strategy
    info: dict  # the model description exports carry (lightnas.export.model_info)
    placement: Placement
    teacher: nn.Module | None = None  # distill.teacher, built and checked up front

    @property
    def device(self) -> torch.device:
        return self.placement.device


def model_kwargs(cfg: Config) -> dict:
    """model.kwargs, plus the space file's content (`spec`) for model graph (model.file)."""
    return {**cfg.model.kwargs, **space_kwargs(cfg.model.file)}


def build_supernet(
    cfg: Config, num_classes: int, in_channels: int = 3, kwargs: dict | None = None
) -> Supernet:
    m = cfg.model
    kwargs = model_kwargs(cfg) if kwargs is None else kwargs
    return create_supernet(
        m.name, num_classes, m.stem, cfg.search_space, in_channels=in_channels, **kwargs
    )


def check_image_size(cfg: Config, net: nn.Module, input_shape: Sequence[int]) -> None:
    """Images too small for the model's downsampling are bad input, naming the smallest size
    that runs. Where no size up to 512 runs either, the failure is not the size: it is raised."""
    if forward_runs(net, input_shape):
        return
    channels, size = input_shape[0], input_shape[-1]
    smallest = next((s for s in range(size + 1, 513) if forward_runs(net, (channels, s, s))), None)
    if smallest is None:
        net.eval()(torch.zeros(1, *input_shape))  # the model's own error, with its traceback
    raise ConfigError(
        f"data.image_size={size} is too small for {cfg.model.name} with the {cfg.model.stem} "
        f"stem (its feature maps shrink to nothing); valid: >= {smallest}"
    )


def build_parts(cfg: Config, dist: Dist = LOCAL) -> Parts:
    """The parts of `cfg` for this rank of `dist` (a ConfigError if its ranks cannot share it)."""
    placement = Placement(dist.place(resolve_device(cfg.device)), cfg.bf16, cfg.channels_last)
    torch.manual_seed(cfg.seed)
    data = build_data(cfg.data, seed=cfg.seed, device=placement.device)
    dist.check(placement.device, len(data.train), cfg.distributed.sync_bn)
    kwargs = model_kwargs(cfg)
    supernet = build_supernet(cfg, data.num_classes, data.input_shape[0], kwargs)
    check_image_size(cfg, supernet, data.input_shape)
    info = model_info(
        cfg.model.name,
        data.num_classes,
        cfg.model.stem,
        cfg.search_space,
        kwargs,
        data.input_shape,
        data.mean,
        data.std,
    )
    teacher = (
        build_teacher(cfg, data.num_classes, data.input_shape) if cfg.distill.teacher else None
    )
    strategy = STRATEGIES[cfg.search.strategy].from_config(supernet.space, cfg)
    return Parts(data, supernet, strategy, info, placement, teacher)


def scoring_options(cfg: Config) -> ScoringOptions:
    s = cfg.search
    return ScoringOptions(
        s.reward_batches,
        s.bn_recalibration_batches,
        s.reward_calibration_batches,
        s.reward_bn,
        s.cost,
        s.cost_weight,
        s.target_cost,
        s.cost_budget,
    )


def build_engine(
    cfg: Config,
    parts: Parts,
    callbacks: Sequence[Callback] = (),
    folder: TrainingFolder | None = None,
    dist: Dist = LOCAL,
) -> Engine:
    """The engine of a run: evaluator, loss (distillation when a teacher is set), callbacks.
    `folder`: the run's training folder when it exists (a resumed run reads its latency table).
    With several ranks (`dist`) every rank builds it, together: this runs collectives."""
    p = parts.placement
    parts.supernet.to(device=p.device, memory_format=p.memory_format)
    costs = shared_latency_costs(cfg, parts, folder, dist)
    evaluator = Evaluator(parts.supernet, parts.data, p, scoring_options(cfg), costs, dist)
    # after the cost table: its extracted ops must count their own, uncompiled forward
    compile_supernet(parts.supernet, cfg.compile, cfg.compile_backend)
    loss = cross_entropy
    if parts.teacher is not None:
        teacher = parts.teacher.to(p.device, memory_format=p.memory_format)
        loss = DistillationLoss(teacher, cfg.distill.alpha, cfg.distill.temperature)
    s = cfg.search
    key = s.cost if COSTS[s.cost].additive else "ops"  # what "largest" and "smallest" mean
    sampler = TrainingSampler(
        s.sampling, parts.strategy, evaluator.costs, key, s.sandwich_k, cfg.seed
    )
    return Engine(
        cfg,
        parts.supernet,
        parts.strategy,
        parts.data,
        evaluator,
        p,
        loss,
        callbacks,
        sampler,
        dist,
    )


def shared_latency_costs(
    cfg: Config, parts: Parts, folder: TrainingFolder | None, dist: Dist
) -> LatencyCostTable | None:
    """search.cost latency_table: the per-op table, measured on this device or read from the
    folder, by rank 0, whose table every rank uses (None for the other costs)."""
    args = (cfg.search, parts.supernet, parts.data.input_shape, folder)
    made: list[LatencyCostTable | None] = []

    def measured():
        made.append(latency_cost_table(*args))
        return None if made[0] is None else made[0].latency

    table = dist.from_main(measured)
    if made:  # rank 0
        return made[0]
    return None if table is None else latency_cost_table(*args, table=table)


# ---- the training folder -------------------------------------------------------------------
def new_folder(cfg: Config) -> TrainingFolder:
    """trainings/<name>; a taken name gets a numeric suffix, never reusing a folder."""
    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M")
    base = Path(cfg.output_dir) / (cfg.name or f"{cfg.model.name}_{stamp}")
    folder, n = base, 1
    while True:
        try:
            make_folder(folder, "output_dir", exist_ok=False)
            return TrainingFolder(folder)
        except FileExistsError:
            n += 1
            folder = base.with_name(f"{base.name}_{n}")


def save_config(parser, ns, path: Path, overwrite: bool = False) -> None:
    """The resolved config as YAML, without the command-line-only keys."""
    ns = ns.clone()
    for key in ("resume", "force", "config", "__path__"):
        if key in ns:
            del ns[key]
    parser.save(ns, path, overwrite=overwrite)


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        name = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict) and k != "search_space":
            out += config_differences(a[k], b[k], f"{name}.")
        elif a.get(k) != b.get(k):
            out.append(name)
    return out


@dataclass
class Request:
    """A parsed search command: a new run, or the resumption of `folder` (from `state`, or from
    the start when it has no checkpoint yet)."""

    cfg: Config
    ns: object
    parser: object
    folder: TrainingFolder | None = None
    state: dict | None = None
    argv: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # config keys that differ from the checkpoint's

    @property
    def from_file_only(self) -> bool:
        """Run from one config file with no overrides (else the config is autosaved)."""
        a = self.argv
        return len(a) == 2 and a[0] in ("-c", "--config")


def parse_request(argv: Sequence[str]) -> Request:
    """Parse a search command line and resolve `--resume` (config and checkpoint)."""
    argv = ["--print_config" if a == "--print-config" else a for a in argv]
    cfg, ns, parser = parse_config(argv)
    if not ns.resume:
        return Request(cfg, ns, parser, argv=tuple(argv))
    folder = TrainingFolder(Path(ns.resume))
    if not folder.is_training():
        raise ConfigError(f"--resume {folder.root}: not a training folder (no config.yml in it)")
    # the saved config first, then whatever the command line adds on top of it
    cfg, ns, parser = parse_config(["--config", str(folder.config), *argv])
    if not has_checkpoint(folder.checkpoints):  # stopped before its first checkpoint
        return Request(cfg, ns, parser, folder, None, tuple(argv))
    state = load_checkpoint(folder.checkpoints)
    changed = tuple(
        k
        for k in config_differences(state["config"], cfg.to_dict())
        if not any(k == r or k.startswith(r + ".") for r in RESUMABLE)
    )
    if changed and not ns.force:
        raise ConfigError(
            f"--resume {folder.root}: the config differs from the checkpoint's in "
            f"{', '.join(changed)}; only {', '.join(RESUMABLE)} may change "
            "(pass --force true to resume anyway)"
        )
    chosen = state.get("final") is not None or cfg.search.final_top_k == 0
    if cfg.epochs < state["epoch"] or (cfg.epochs == state["epoch"] and chosen):
        raise ConfigError(
            f"--resume {folder.root}: {state['epoch']} of epochs={cfg.epochs} already done; "
            "raise --epochs to train longer"
        )
    return Request(cfg, ns, parser, folder, state, tuple(argv), changed)


def restore(engine: Engine, request: Request) -> None:
    """Load the request's checkpoint into `engine`; a checkpoint that does not fit the config
    (a forced resume with another model, say) is refused before the folder is touched."""
    where = f"--resume {request.folder.root}"
    differing = ", ".join(request.changed) or "no key"
    saved, expected = request.state["supernet"], engine.supernet.state_dict()
    wrong = sorted(
        k
        for k in expected.keys() | saved.keys()
        if k not in saved or k not in expected or saved[k].shape != expected[k].shape
    )
    if wrong:
        raise CheckpointError(
            f"{where}: the checkpoint's supernet does not fit this config ({len(wrong)} tensors "
            f"differ, first {wrong[0]}; the config differs in {differing}); nothing was changed"
        )
    try:
        engine.load_state_dict(request.state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{where}: the checkpoint does not fit this config ({reason}; the config differs "
            f"in {differing}); nothing was changed"
        ) from None


# ---- running -----------------------------------------------------------------------------
class StopRun(Exception):
    """Raised by a callback to end a run on purpose after a complete epoch (a sweep's pruner):
    the folder stays as that epoch left it, status.json records `state`, and the exception
    reaches the caller of `search` (or of `retrain.main`)."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state


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


def run_logged(engine: Engine, folder: TrainingFolder, info: dict, resume_command: str) -> int:
    """Run `engine` into `folder` with its callbacks, output copied to log.txt; the exit code."""
    # built before the output is teed: progress bars go to the terminal, not into log.txt
    engine.callbacks = standard_callbacks(engine.cfg, folder, info) + engine.callbacks
    with open(folder.log, "a") as log:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(stdout, log), Tee(stderr, log)
        try:
            print(f"training folder: {folder.root}", flush=True)
            if engine.epoch or engine.progress:
                print(f"resuming {folder.root} after {position(engine)}", flush=True)
            engine.run()
            return 0
        except KeyboardInterrupt:
            write_status(folder.status, INTERRUPTED)
            kept = "nothing was checkpointed yet, so it starts again"
            if has_checkpoint(folder.checkpoints):
                kept = f"its checkpoint is in {folder.checkpoints}"
            print(
                f"\ninterrupted after {position(engine)}: {kept}; continue with: {resume_command}",
                file=sys.stderr,
                flush=True,
            )
            return 130
        except NonFiniteLossError as err:
            write_status(folder.status, FAILED, error=str(err))
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
        except StopRun as stop:
            write_status(folder.status, stop.state, reason=str(stop))
            print(f"stopped after {position(engine)}: {stop}", flush=True)
            raise
        except BaseException as err:
            write_status(folder.status, FAILED, error=f"{type(err).__name__}: {err}")
            raise
        finally:
            sys.stdout, sys.stderr = stdout, stderr


def position(engine: Engine) -> str:
    """Where a run stands, e.g. `epoch 3` or `epoch 2, batch 40 of epoch 3`."""
    done = f"epoch {engine.epoch}"
    p = engine.progress
    if p is None or p.step == 0:
        return done
    return f"{done}, batch {p.step} of epoch {p.epoch + 1}"


def lock_folder(folder: TrainingFolder, held: contextlib.ExitStack) -> None:
    """Hold `folder`'s lock until `held` closes: one run writes a training folder at a time."""
    held.enter_context(exclusive_lock(folder.lock, str(folder.root)))


def prepare_folder(request: Request, held: contextlib.ExitStack) -> TrainingFolder:
    """The run's folder: a new one with its config, or the resumed one (config updated); a new
    one is locked until `held` closes (a resumed one was locked by `prepare_run`)."""
    if request.folder is None:
        folder = new_folder(request.cfg)
        lock_folder(folder, held)
        save_config(request.parser, request.ns, folder.config)
        if not request.from_file_only:
            AUTOSAVE_DIR.mkdir(parents=True, exist_ok=True)
            autosaved = AUTOSAVE_DIR / f"{folder.name}.yml"
            save_config(request.parser, request.ns, autosaved, overwrite=True)
        return folder
    save_config(request.parser, request.ns, request.folder.config, overwrite=True)
    return request.folder


def search(argv: Sequence[str], callbacks: Sequence[Callback] = ()) -> int:
    """`train_enas.py` / `lightnas search`: parse, build and check everything, then run into a
    training folder (created or resumed only once nothing can fail on bad input, on any rank).
    `callbacks` are added to the run's own (e.g. a sweep's pruning hook), on every rank."""
    with session() as dist, contextlib.ExitStack() as held:
        request, parts = dist.agree(lambda: prepare_run(argv, dist, held))
        engine = build_engine(request.cfg, parts, callbacks, request.folder, dist)
        if request.state is not None:
            dist.agree(lambda: restore(engine, request))
        if not dist.is_main:
            return run_quietly(engine)
        folder = prepare_folder(request, held)
        command = f"python train_enas.py --resume {folder.root}"
        code = run_logged(engine, folder, parts.info, command)
        if code == 0:
            print(f"done: {describe_best(engine)} in {folder.best_architecture}")
        return code


def prepare_run(
    argv: Sequence[str], dist: Dist, held: contextlib.ExitStack
) -> tuple[Request, Parts]:
    """The parsed request and its parts, checked; rank 0 prints the config's warnings and
    locks a resumed folder until `held` closes (a folder another run is writing is refused)."""
    request = parse_request(argv)
    if dist.is_main and request.folder is not None:
        lock_folder(request.folder, held)
    if dist.is_main:
        for warning in STRATEGIES[request.cfg.search.strategy].config_warnings(request.cfg):
            print(f"warning: {warning}", file=sys.stderr)
    return request, build_parts(request.cfg, dist)


def run_quietly(engine: Engine) -> int:
    """A rank other than 0: the same run without the training folder's callbacks; rank 0
    reports how it ends, and this rank exits with the same code."""
    try:
        engine.run()
    except KeyboardInterrupt:
        return 130
    except NonFiniteLossError:
        return 1
    return 0


def describe_best(engine: Engine) -> str:
    best = engine.best
    test = "" if best.test_acc is None else f", test acc {best.test_acc:.4f}"
    return (
        f"architecture of epoch {best.epoch} ({best.selected_by}: val acc {best.val_acc:.4f}{test})"
    )
