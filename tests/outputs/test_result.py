"""The result of a run (lightnas.outputs.result): what best_architecture.json holds is the final
selection's winner (without one, the last epoch's architecture), and the `done:` line, the
reader and `lightnas evaluate` say the same, checked against final_selection.json and
metrics.jsonl read here."""

import json
from pathlib import Path

import pytest

from lightnas.cli import main
from lightnas.layout import TrainingFolder
from lightnas.outputs.result import read_result

pytestmark = pytest.mark.slow


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def done_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("done: "))


def test_the_done_line_the_file_the_reader_and_evaluate_show_the_final_selections_winner(
    write_config, tmp_path, capsys
):
    cfg = write_config(epochs=3, search={"final_top_k": 3})
    assert main(["search", "-c", str(cfg)]) == 0
    folder = TrainingFolder(tmp_path / "trainings" / "tiny")
    final = load(folder.final_selection)
    w = final["candidates"][final["winner"]]
    expected = (
        f"done: architecture of epoch {w['proposed_epoch']} (final selection: val acc "
        f"{w['val_acc']:.4f}, test acc {w['test_acc']:.4f}, OPs {w['costs']['ops']:.4g}) in "
        f"{folder.best_architecture}"
    )
    assert done_line(capsys.readouterr().out) == expected
    stats = load(folder.best_architecture)["stats"]
    result = read_result(folder)
    for got in (stats, result.as_dict()):
        assert got["epoch"] == w["proposed_epoch"] and got["label"] == w["label"]
        assert got["architecture"] == w["architecture"]
        assert (got["val_acc"], got["test_acc"], got["reward"]) == (
            w["val_acc"],
            w["test_acc"],
            w["reward"],
        )
        assert got["costs"] == w["costs"] and got["selected_by"] == "final selection"
    assert main(["evaluate", str(folder.root)]) == 0
    assert load(folder.evaluation)["architecture"] == w["architecture"]


def test_without_a_final_selection_the_result_is_the_last_epoch(write_config, tmp_path, capsys):
    cfg = write_config(epochs=2, search={"final_top_k": 0})
    assert main(["search", "-c", str(cfg)]) == 0
    folder = TrainingFolder(tmp_path / "trainings" / "tiny")
    assert not folder.final_selection.exists()
    last = [json.loads(line) for line in folder.metrics.read_text().splitlines()][-1]
    result = read_result(folder)
    assert (result.epoch, result.selected_by, result.label) == (2, "latest epoch", last["chosen"])
    assert (result.val_acc, result.reward, result.test_acc) == (
        last["val_acc"],
        last["reward"],
        None,
    )
    assert result.architecture == last["architecture"]
    assert result.costs == {k: v for k, v in last["validated_costs"][last["chosen"]].items()
                            if k != "architecture"}  # fmt: skip
    assert done_line(capsys.readouterr().out).startswith(
        f"done: architecture of epoch 2 (latest epoch: val acc {last['val_acc']:.4f}, OPs "
    )
