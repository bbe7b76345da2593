"""Shared fixtures: tiny search configs that run in seconds on a CPU."""

import contextlib
from pathlib import Path

import pytest
import yaml

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


@pytest.fixture
def write_config(tmp_path):
    """Write a tiny YAML config (with overrides) and return its path."""

    def write(filename: str = "tiny.yml", **overrides) -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(tiny_config(tmp_path, **overrides)))
        return path

    return write


@pytest.fixture
def interrupt_after_first_checkpoint(monkeypatch):
    """A context in which a run raises KeyboardInterrupt right after its epoch-1 checkpoint."""
    from lightnas import tracking

    save = tracking.Checkpointer.on_epoch_end

    def save_then_interrupt(self, engine, result):
        save(self, engine, result)
        if engine.epoch == 1:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interrupting():
        with monkeypatch.context() as m:
            m.setattr(tracking.Checkpointer, "on_epoch_end", save_then_interrupt)
            yield

    return interrupting
