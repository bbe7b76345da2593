"""The README's "Extending LightNAS" examples, run as written: a dataset, a search op and a cost
metric, each in one file, used by a search through the config's `imports`."""

import json
import re

import pytest
import yaml
from helpers import ROOT
from helpers.runs import tiny_config

from lightnas.cli import search_main
from lightnas.data import DATASETS
from lightnas.models import OP_CATEGORIES
from lightnas.models.meliusnet import DENSE_OPS
from lightnas.scoring.cost_metrics import COSTS

README = ROOT / "README.md"
pytestmark = pytest.mark.e2e


def section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture
def restored_registries(monkeypatch):
    """What the examples register is gone after the test."""
    for registry in (DATASETS, DENSE_OPS, OP_CATEGORIES, COSTS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))


def test_the_readme_extension_examples_work(tmp_path, monkeypatch, restored_registries):
    monkeypatch.chdir(tmp_path)
    text = section(README.read_text(), "Extending LightNAS")
    files = code_blocks(text, "python")
    assert len(files) == 3
    for source in files:
        name = source.splitlines()[0].removeprefix("# ").strip()
        (tmp_path / name).write_text(source)
    extension = yaml.safe_load(code_blocks(text, "yaml")[0])
    cfg = tiny_config(tmp_path, name="extended")
    for key, value in extension.items():
        cfg[key] = {**cfg[key], **value} if isinstance(cfg.get(key), dict) else value
    cfg["data"].pop("num_classes")
    cfg["data"].pop("num_samples")
    (tmp_path / "extended.yml").write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(tmp_path / "extended.yml")]) == 0
    folder = tmp_path / "trainings" / "extended"
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["cost"] == rows[-1]["conv_params"] > 0
    points = json.loads((folder / "best_architecture.json").read_text())["model"]
    assert "conv5x5" in points["search_space"]["dense_block"]
    assert set(rows[-1]["blocks"]) >= {"dense_kept", "dense_replaced"}  # conv5x5 counts as kept
    assert not any("conv5x5" in key for key in rows[-1]["blocks"])
    assert search_main(["--resume", str(folder), "--epochs", "3"]) == 0  # imports again
