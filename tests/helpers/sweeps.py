"""Helpers of the sweep tests: a tiny base config and sweep files beside it."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import yaml

from helpers.runs import tiny_config


def write_base(folder: Path, **overrides) -> Path:
    """The tiny LightNAS config every test trial starts from (seconds on a CPU)."""
    path = folder / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny_config(folder, **overrides)))
    return path


def write_sweep(folder: Path, filename: str = "sweep.yml", **fields) -> Path:
    """A sweep file in `folder` (next to tiny.yml); `output_dir` inside `folder`."""
    data = {"base": "tiny.yml", "output_dir": str(folder / "sweeps")} | fields
    path = folder / filename
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load(folder: Path, name: str) -> optuna.Study:
    url = f"sqlite:///{folder / 'sweeps' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())
