"""The checks of a parsed config that need more than types (closed sets of names are `Literal`
types: the parser refuses the rest); every message names the key and the valid values."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from lightnas.config.schema import REGISTRY_KEYS, Config, ModelConfig, strategy_options
from lightnas.errors import ConfigError
from lightnas.export import check_formats_installed
from lightnas.models import MODELS
from lightnas.models.graph import MODEL as GRAPH_MODEL
from lightnas.models.graph import check_space_file
from lightnas.outputs.graphs import RENDER_FORMATS
from lightnas.registry import Registry
from lightnas.runtime.placement import check_device_name
from lightnas.scoring.latency import check_options
from lightnas.search.strategies import STRATEGIES

# every seed torch, NumPy and Python take (a run derives others from it by small offsets)
MAX_SEED = 2**63 - 1


def _registered(cfg: Config) -> Iterator[tuple[bool, str]]:
    """Every key whose values are a registry's names (one name, or a list of them) checked."""
    for key, registry in REGISTRY_KEYS.items():
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if isinstance(value, list):
            yield _all_known(key, value, registry)
        else:
            yield value in registry, f"{key}={value!r} is not known; valid: {registry.valid()}"


def _all_known(key: str, values: list[str], valid) -> tuple[bool, str]:
    bad = [v for v in values if v not in valid] or [""]
    names = valid.valid() if isinstance(valid, Registry) else ", ".join(valid)
    return bad == [""], f"{key}: {bad[0]!r} is not known; valid: {names}"


def _floats(obj: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every float in a config."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _floats(value, f"{prefix}{f.name}.")
        elif isinstance(value, float):
            yield f"{prefix}{f.name}", value


def _optional_positive(key: str, value: float | None) -> tuple[bool, str]:
    return value is None or value > 0, f"{key}={value} must be > 0 or null"


def check_model_file(model: ModelConfig) -> None:
    """model.file goes with model.name graph (and only with it), and must be a usable space."""
    if model.name != GRAPH_MODEL:
        if model.file is not None:
            raise ConfigError(
                f"model.file is read by model.name=graph only (got model.name={model.name!r}): "
                "set model.name: graph, or remove model.file"
            )
        return
    if model.file is None:
        raise ConfigError(
            "model.name=graph needs model.file: a space file, e.g. configs/spaces/meliusnet22.yml"
        )
    check_space_file(model.file, stem=model.stem, params=model.kwargs.get("params"))


def validate(cfg: Config) -> None:
    """Checks that need more than types; every message names the key and the valid values."""
    s, c = cfg.search, cfg.controller
    name_ok = cfg.name is None or (
        cfg.name not in ("", ".", "..") and "/" not in cfg.name and "\\" not in cfg.name
    )
    checks = [(math.isfinite(v), f"{k}={v} must be a finite number") for k, v in _floats(cfg)]
    checks += _registered(cfg)
    checks += [
        _all_known("export.graph_formats", cfg.export.graph_formats, RENDER_FORMATS),
        (cfg.epochs >= 1, f"epochs={cfg.epochs} must be >= 1"),
        (0 <= cfg.seed <= MAX_SEED, f"seed={cfg.seed} is out of range; valid: 0 to {MAX_SEED}"),
        (name_ok, f"name={cfg.name!r} must be a plain folder name (no '/', not '..')"),
        (s.cost_weight <= 0, f"search.cost_weight={s.cost_weight} must be <= 0"),
        _optional_positive("search.target_cost", s.target_cost),
        (s.controller_steps >= 0, f"search.controller_steps={s.controller_steps} must be >= 0"),
        (s.controller_batch >= 1, f"search.controller_batch={s.controller_batch} must be >= 1"),
        (
            s.reward_batches is None or s.reward_batches >= 1,
            f"search.reward_batches={s.reward_batches} must be >= 1 or null (all)",
        ),
        (
            s.reward_calibration_batches is None or s.reward_calibration_batches >= 1,
            f"search.reward_calibration_batches={s.reward_calibration_batches} must be >= 1 "
            "or null",
        ),
        (s.sandwich_k >= 0, f"search.sandwich_k={s.sandwich_k} must be >= 0"),
        (s.sandwich_every >= 1, f"search.sandwich_every={s.sandwich_every} must be >= 1"),
        (
            s.sandwich_every == 1 or s.sandwich_k >= 1,
            f"search.sandwich_every={s.sandwich_every} needs search.sandwich_k >= 1 (the steps "
            "between whole sandwiches train the uniform architectures alone)",
        ),
        (s.final_top_k >= 0, f"search.final_top_k={s.final_top_k} must be >= 0"),
        _optional_positive("search.cost_budget", s.cost_budget),
        (s.num_val_samples >= 0, f"search.num_val_samples={s.num_val_samples} must be >= 0"),
        (s.warmup_epochs >= 0, f"search.warmup_epochs={s.warmup_epochs} must be >= 0"),
        (
            s.bn_recalibration_batches >= 0,
            f"search.bn_recalibration_batches={s.bn_recalibration_batches} must be >= 0",
        ),
        (
            s.update_arch_frequency is None or s.update_arch_frequency >= 1,
            "search.update_arch_frequency must be >= 1 or null (once per epoch)",
        ),
        (c.hidden_size >= 1, f"controller.hidden_size={c.hidden_size} must be >= 1"),
        _optional_positive("controller.temperature", c.temperature),
        _optional_positive("controller.tanh_constant", c.tanh_constant),
        (c.lr > 0, f"controller.lr={c.lr} must be > 0"),
        (c.entropy_weight >= 0, f"controller.entropy_weight={c.entropy_weight} must be >= 0"),
        (
            0 <= c.baseline_decay < 1,
            f"controller.baseline_decay={c.baseline_decay} must be in [0, 1)",
        ),
        _optional_positive("controller.grad_clip", c.grad_clip),
        (cfg.optim.lr > 0, f"optim.lr={cfg.optim.lr} must be > 0"),
        (cfg.optim.min_lr >= 0, f"optim.min_lr={cfg.optim.min_lr} must be >= 0"),
        (cfg.optim.weight_decay >= 0, f"optim.weight_decay={cfg.optim.weight_decay} must be >= 0"),
        (cfg.optim.momentum >= 0, f"optim.momentum={cfg.optim.momentum} must be >= 0"),
        _optional_positive("optim.grad_clip", cfg.optim.grad_clip),
        (cfg.export.every >= 0, f"export.every={cfg.export.every} must be >= 0"),
        (
            cfg.checkpoint.every_minutes >= 0,
            f"checkpoint.every_minutes={cfg.checkpoint.every_minutes} must be >= 0",
        ),
        (0 <= cfg.distill.alpha <= 1, f"distill.alpha={cfg.distill.alpha} must be in [0, 1]"),
        (cfg.distill.temperature > 0, "distill.temperature must be > 0"),
        (cfg.tracking.mlflow != "", "tracking.mlflow must be a tracking URI or null (off)"),
        (
            cfg.distill.teacher is None
            or cfg.distill.teacher in MODELS
            or any(Path(cfg.distill.teacher + s).exists() for s in ("", ".safetensors")),
            f"distill.teacher={cfg.distill.teacher!r} is neither a file or folder nor a model "
            f"name; valid models: {MODELS.valid()}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_model_file(cfg.model)
    check_device_name(cfg.device)
    check_formats_installed(cfg.export.formats)
    cfg.data.check()
    strategy = STRATEGIES[s.strategy]
    strategy.check_rule(s.strategy, s.sampling, s.inplace_distill)
    strategy.check_options(strategy_options(cfg))
    check_options(cfg.search.latency_table)
