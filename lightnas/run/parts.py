"""The parts of a run (data, supernet, strategy, teacher), built and checked before a training
folder exists, and the engine that runs them with the training folder's callbacks.

The command line, `lightnas retrain`, sweeps, the benchmarks and the tests build runs here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lightnas.config import Config, strategy_options
from lightnas.data import DataBundle, build_data
from lightnas.engine.loop import Callback, Engine
from lightnas.engine.loss import DistillationLoss, cross_entropy
from lightnas.engine.sampler import TrainingSampler
from lightnas.errors import ArchitectureError, ConfigError
from lightnas.export import model_info
from lightnas.layout import TrainingFolder
from lightnas.models import Supernet, create_supernet, space_without_weights
from lightnas.models.graph import space_kwargs
from lightnas.outputs.mlflow_tracking import MLflowLogger
from lightnas.outputs.tracking import (
    ArchitectureFiles,
    Checkpointer,
    Exporter,
    LatencyTableFile,
    MetricsFile,
    Progress,
    StatusFile,
    TensorBoard,
)
from lightnas.run.teacher import build_teacher
from lightnas.runtime.compiling import compile_supernet
from lightnas.runtime.distributed import LOCAL, Dist
from lightnas.runtime.placement import Placement, resolve_device
from lightnas.scoring.cost_metrics import COSTS, forward_runs
from lightnas.scoring.evaluator import Evaluator, ScoringOptions
from lightnas.scoring.latency import LatencyCostTable, latency_cost_table
from lightnas.search.space import Architecture, SearchSpace, load_architecture_file
from lightnas.search.strategies import STRATEGIES, FixedStrategy, Strategy

# an architecture for the fixed strategy, or how to read it once the supernet's space exists
# (e.g. `lightnas retrain` reading the search's file against the space of its one build)
GivenArchitecture = Architecture | Callable[[SearchSpace], Architecture]


@dataclass
class Parts:
    """Everything a run needs, built (and checked) before a training folder exists."""

    data: DataBundle
    supernet: Supernet
    strategy: Strategy
    info: dict  # the model description exports carry (lightnas.export.model_info)
    placement: Placement
    teacher: nn.Module | None = None  # distill.teacher, built and checked up front


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


def space_of(cfg: Config) -> SearchSpace:
    """The search space of `cfg`'s supernet, built without allocating weights."""
    return space_without_weights(lambda: build_supernet(cfg, 2))


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


def build_parts(
    cfg: Config, dist: Dist = LOCAL, architecture: GivenArchitecture | None = None
) -> Parts:
    """The parts of `cfg` for this rank of `dist` (a ConfigError if its ranks cannot share it).
    `architecture`: what strategy fixed trains (else the file `search.architecture` names),
    checked against the space of the supernet built here."""
    fixed = issubclass(STRATEGIES[cfg.search.strategy], FixedStrategy)
    if fixed and architecture is None:
        check_architecture_file(cfg.search.architecture)
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
    if fixed:
        arch = resolve_architecture(architecture or cfg.search.architecture, supernet.space)
        strategy: Strategy = FixedStrategy.from_options(supernet.space, arch, cfg.seed)
    else:
        strategy = build_strategy(cfg, supernet.space)
    return Parts(data, supernet, strategy, info, placement, teacher)


def build_strategy(cfg: Config, space: SearchSpace) -> Strategy:
    """The configured strategy, built from its own options. One without an architecture of its
    own (no favourite) needs validation candidates: `search.num_val_samples` >= 1."""
    s = cfg.search
    strategy = STRATEGIES[s.strategy].from_options(space, strategy_options(cfg), cfg.seed)
    if strategy.favourite() is None and s.num_val_samples < 1:
        raise ConfigError(
            f"search.num_val_samples={s.num_val_samples}: strategy {s.strategy} has no "
            "architecture of its own to validate, so it needs candidates; use >= 1"
        )
    return strategy


def check_architecture_file(path: str | None) -> None:
    """`search.architecture` names a file, as strategy fixed needs (checked before anything is
    built)."""
    if not path:
        raise ConfigError("search.architecture (a JSON file) is required with strategy fixed")
    if not Path(path).is_file():
        raise ConfigError(f"search.architecture={path}: no such file")


def resolve_architecture(given: GivenArchitecture | str, space: SearchSpace) -> Architecture:
    """The architecture of strategy fixed, in `space`: a JSON file's, `given`'s own, or what
    `given` reads against the space."""
    if isinstance(given, str):
        return load_architecture_file(given, space)
    arch = given if isinstance(given, Architecture) else given(space)
    if arch.space != space:
        raise ArchitectureError(
            f"the architecture is for space {arch.space!r}, not this config's {space!r}"
        )
    return arch


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
        s.reward_cache_mb,
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
    rule = parts.strategy.training_rule(s.sampling, s.inplace_distill)
    sampler = TrainingSampler(
        rule, parts.strategy, evaluator.costs, key, s.sandwich_k, cfg.seed, s.sandwich_every
    )
    return Engine(
        cfg,
        parts.supernet,
        parts.strategy,
        parts.data,
        evaluator,
        p,
        sampler,
        loss,
        callbacks,
        dist,
    )


def shared_latency_costs(
    cfg: Config, parts: Parts, folder: TrainingFolder | None, dist: Dist
) -> LatencyCostTable | None:
    """search.cost latency_table: the per-op table, measured on this device or read from the
    folder, by rank 0, whose table every rank uses (None for the other costs)."""
    saved = None if folder is None else folder.latency_table
    args = (cfg.search, parts.supernet, parts.data.input_shape, saved)
    made: list[LatencyCostTable | None] = []

    def measured():
        made.append(latency_cost_table(*args))
        return None if made[0] is None else made[0].latency

    table = dist.from_main(measured)
    if made:  # rank 0
        return made[0]
    return None if table is None else latency_cost_table(*args, table=table)


def standard_callbacks(cfg, folder: TrainingFolder, info: dict) -> list[Callback]:
    """The training folder's callbacks, in the order they must run (checkpoint last; MLflow,
    when enabled, after it: it uploads what the others wrote)."""
    callbacks = [
        Progress(cfg.progress),
        LatencyTableFile(folder.latency_table),
        ArchitectureFiles(folder, cfg.export.graph_formats, info),
        Exporter(folder, cfg.export.formats, cfg.export.every, info),
        MetricsFile(folder.metrics),
        TensorBoard(folder.tensorboard),
        Checkpointer(folder.checkpoints, cfg.checkpoint.every_minutes),
        StatusFile(folder.status),
    ]
    if cfg.tracking.mlflow:
        callbacks.append(MLflowLogger(cfg.tracking.mlflow, cfg.tracking.experiment, folder))
    return callbacks
