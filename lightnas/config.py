"""The typed search configuration: YAML file + command-line overrides via jsonargparse.

Valid names (models, stems, datasets, strategies, cost metrics, export formats) come from the
registries where those are defined; nothing here copies them.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from lightnas.cost import COSTS
from lightnas.data import DATASETS, DataOptions
from lightnas.errors import ConfigError
from lightnas.export import EXPORT_FORMATS
from lightnas.graphs import RENDER_FORMATS
from lightnas.latency import LatencyTableOptions, check_options
from lightnas.models import MODELS, STEMS
from lightnas.search.strategies import STRATEGIES


@dataclass
class ModelConfig:
    name: str = "meliusnet22"
    """Supernet name (see `python -m lightnas.models --help`)."""
    stem: str = "thumbnail"
    kwargs: dict = field(default_factory=dict)
    """Overrides of the family's spec, e.g. {growth_rate: 32, block_config: [2, 2, 2, 2]}."""


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float | None = None
    min_lr: float = 0.0
    """Cosine schedule floor."""


@dataclass
class ControllerConfig:
    hidden_size: int = 64
    temperature: float | None = 5.0
    tanh_constant: float | None = 2.5
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.95
    lr: float = 3.5e-4
    grad_clip: float | None = None


@dataclass
class SearchConfig:
    strategy: str = "enas"
    warmup_epochs: int = 0
    """Epochs of uniformly random architectures before the controller starts."""
    update_arch_frequency: int | None = None
    """Run a controller phase every N training batches; None = once per epoch."""
    controller_steps: int = 50
    controller_batch: int = 1
    """Architectures sampled per controller step."""
    reward_batches: int = 1
    """Validation batches per reward."""
    num_val_samples: int = 10
    bn_recalibration_batches: int = 10
    """Training batches that re-estimate BatchNorm statistics before a validation."""
    cost: str = "ops"
    cost_weight: float = 0.0
    """w <= 0 in reward = accuracy * (cost / target_cost) ** w; 0 = accuracy only."""
    target_cost: float | None = None
    """None = the cost of the base network (first choice everywhere)."""
    architecture: str | None = None
    """JSON file of the architecture to train with strategy `fixed`."""
    latency_table: LatencyTableOptions = field(default_factory=LatencyTableOptions)
    """The per-op latency table of cost `latency_table` (see lightnas/latency.py)."""


@dataclass
class ExportConfig:
    formats: list[str] = field(default_factory=lambda: ["pt2", "onnx"])
    every: int = 1
    """Export every N epochs (and always the last); 0 = only the last."""
    graph_formats: list[str] = field(default_factory=lambda: ["png"])


@dataclass
class DistillConfig:
    teacher: str | None = None
    """Full-precision teacher: an exported trainable (.safetensors/.json), a training folder (its
    latest export) or a model name (its base network at 32 bits, weights from `weights`)."""
    weights: str | None = None
    """safetensors state dict of a named teacher."""
    kwargs: dict = field(default_factory=dict)
    """Spec overrides of a named teacher, as model.kwargs."""
    alpha: float = 0.9
    """loss = (1 - alpha) * CE + alpha * T^2 * KL(teacher || student)."""
    temperature: float = 4.0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    search_space: dict | None = None
    data: DataOptions = field(default_factory=DataOptions)
    optim: OptimConfig = field(default_factory=OptimConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    epochs: int = 10
    seed: int = 0
    device: str = "auto"
    """auto (cuda when available), cpu, cuda, cuda:N."""
    channels_last: bool = False
    bf16: bool = False
    """bf16 autocast for the supernet on CUDA."""
    name: str | None = None
    """Training folder name; default <model>_<YYYY_MM_DD_HH_MM>."""
    output_dir: str = "trainings"
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


SECTIONS = ("model", "data", "optim", "controller", "search", "export", "distill")


class ArgParser(argparse.ArgumentParser):
    """argparse whose errors are one-line ConfigErrors (exit 2 in the caller)."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message}")


def resolve_device(name: str) -> torch.device:
    """`auto` = CUDA when available; a CUDA device where there is none is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available; valid here: auto, cpu")
    return device


def build_parser(prog: str = "train_enas.py") -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        exit_on_error=False,
        description="ENAS search for binary neural networks. Any key can be overridden, "
        "e.g. --search.warmup_epochs 2 --data.batch_size 64.",
    )
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file")
    parser.add_argument(
        "--resume", type=str | None, default=None, help="trainings/<name> to resume"
    )
    parser.add_argument(
        "--force", type=bool, default=False, help="resume despite a config mismatch"
    )
    parser.add_class_arguments(Config, fail_untyped=False)
    return parser


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    text = re.sub(r"typing\.Literal\[(.*?)\]", r"one of [\1]", text)
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    text = text.replace("Expected a ", "expected ").replace("Got value:", "got")
    return text.replace('Parser key "', 'config key "')


def parse_config(argv: list[str] | None = None) -> tuple[Config, Namespace, ArgumentParser]:
    """Parse a YAML file and overrides into a Config; raises ConfigError (one line) when bad."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        init = getattr(parser, "instantiate", None) or parser.instantiate_classes
        init = init(ns)
    except Exception as err:  # jsonargparse raises ArgumentError/TypeError with multi-line text
        raise ConfigError(_one_line(err)) from None
    cfg = Config(**{k: getattr(init, k) for k in Config.__dataclass_fields__})
    validate(cfg)
    return cfg, ns, parser


def config_from_dict(data: dict) -> Config:
    """Rebuild a Config from `Config.to_dict()` output (e.g. a checkpoint's copy)."""
    sections = {
        "model": ModelConfig,
        "data": DataOptions,
        "optim": OptimConfig,
        "controller": ControllerConfig,
        "search": SearchConfig,
        "export": ExportConfig,
        "distill": DistillConfig,
    }
    kwargs = {k: (sections[k](**v) if k in sections else v) for k, v in data.items()}
    return Config(**kwargs)


def _known(registry, value: str) -> tuple[bool, str]:
    return value in registry, f"{registry.key}={value!r} is not known; valid: {registry.valid()}"


def _all_known(registry, values: list[str]) -> tuple[bool, str]:
    bad = [v for v in values if v not in registry] or [""]
    return bad == [""], f"{registry.key}: {bad[0]!r} is not known; valid: {registry.valid()}"


def validate(cfg: Config) -> None:
    """Checks that need more than types; every message names the key and the valid values."""
    graph_bad = [f for f in cfg.export.graph_formats if f not in RENDER_FORMATS] or [""]
    checks = [
        _known(MODELS, cfg.model.name),
        _known(STEMS, cfg.model.stem),
        _known(STRATEGIES, cfg.search.strategy),
        _known(COSTS, cfg.search.cost),
        _all_known(EXPORT_FORMATS, cfg.export.formats),
        (
            graph_bad == [""],
            f"export.graph_formats: {graph_bad[0]!r} is not known; valid: "
            f"{', '.join(RENDER_FORMATS)}",
        ),
        (
            cfg.data.dataset in DATASETS,
            f"data.dataset={cfg.data.dataset!r} is not known; valid: {DATASETS.valid()}",
        ),
        (cfg.epochs >= 1, f"epochs={cfg.epochs} must be >= 1"),
        (cfg.search.cost_weight <= 0, f"search.cost_weight={cfg.search.cost_weight} must be <= 0"),
        (cfg.search.controller_steps >= 0, "search.controller_steps must be >= 0"),
        (cfg.search.controller_batch >= 1, "search.controller_batch must be >= 1"),
        (cfg.search.reward_batches >= 1, "search.reward_batches must be >= 1"),
        (cfg.search.num_val_samples >= 0, "search.num_val_samples must be >= 0"),
        (cfg.search.warmup_epochs >= 0, "search.warmup_epochs must be >= 0"),
        (
            cfg.search.update_arch_frequency is None or cfg.search.update_arch_frequency >= 1,
            "search.update_arch_frequency must be >= 1 or null (once per epoch)",
        ),
        (
            cfg.search.strategy != "fixed" or cfg.search.architecture,
            "search.architecture (a JSON file) is required with search.strategy=fixed",
        ),
        (cfg.export.every >= 0, "export.every must be >= 0"),
        (0 <= cfg.distill.alpha <= 1, f"distill.alpha={cfg.distill.alpha} must be in [0, 1]"),
        (cfg.distill.temperature > 0, "distill.temperature must be > 0"),
        (
            cfg.distill.teacher is None
            or cfg.distill.teacher in MODELS
            or any(Path(cfg.distill.teacher + s).exists() for s in ("", ".safetensors")),
            f"distill.teacher={cfg.distill.teacher!r} is neither a file or folder nor a model "
            f"name; valid models: {MODELS.valid()}",
        ),
        (cfg.optim.lr > 0, f"optim.lr={cfg.optim.lr} must be > 0"),
        (
            re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device) is not None,
            f"device={cfg.device!r} is not valid; valid: auto, cpu, cuda, cuda:N",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_options(cfg.search.latency_table)
