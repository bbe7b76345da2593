"""Tiny runs that take seconds on a CPU: configs as YAML-ready dicts (`tiny_config`) and as
Config objects (`tiny_cfg`), and their engines."""

from pathlib import Path

from lightnas.config import Config, ModelConfig, SearchConfig
from lightnas.data import DataOptions
from lightnas.run.parts import build_engine, build_parts
from lightnas.search.strategies import ControllerOptions

TINY_MELIUS = {
    "name": "meliusnet_flex",
    "stem": "thumbnail",
    "kwargs": {"block_config": [1, 1], "growth_rate": 8, "init_features": 16, "reduction": [0.5]},
}


def tiny_config(tmp_path: Path, **overrides) -> dict:
    cfg = {
        "model": TINY_MELIUS,
        "data": {
            "dataset": "mock",
            "image_size": 8,
            "num_samples": 96,
            "num_classes": 4,
            "val_size": 32,
            "batch_size": 16,
        },
        "search": {
            "strategy": "enas",
            "warmup_epochs": 1,
            "controller_steps": 3,
            "num_val_samples": 2,
            "bn_recalibration_batches": 2,
            "cost_weight": -0.1,
        },
        "controller": {"lr": 0.01},
        "export": {"formats": [], "every": 1},
        "epochs": 2,
        "seed": 0,
        "device": "cpu",
        "name": "tiny",
        "output_dir": str(tmp_path / "trainings"),
        "progress": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def tiny_cfg(**kw) -> Config:
    cfg = Config(
        model=ModelConfig(
            "meliusnet_flex",
            "thumbnail",
            {"block_config": [1, 1], "growth_rate": 8, "init_features": 16, "reduction": [0.5]},
        ),
        data=DataOptions(
            dataset="mock", image_size=8, num_samples=64, num_classes=4, val_size=16, batch_size=16
        ),
        search=SearchConfig(controller_steps=2, num_val_samples=2, bn_recalibration_batches=1),
        controller=ControllerOptions(lr=0.01),
        epochs=1,
        device="cpu",
        progress=False,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def make_engine(cfg, callbacks=()):
    return build_engine(cfg, build_parts(cfg), callbacks)
