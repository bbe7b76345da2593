"""Shared fixtures: tiny search configs that run in seconds on a CPU."""

import contextlib
from pathlib import Path

import pytest
import yaml
from helpers.runs import tiny_config


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
    from lightnas.outputs import tracking

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
