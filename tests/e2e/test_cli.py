"""End-to-end: train_enas.py on tiny configs, the training folder, resume and bad input."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT

from lightnas.cli import main, search_main
from lightnas.outputs.checkpoint import load_checkpoint
from lightnas.outputs.graphs import dot_available

pytestmark = pytest.mark.e2e


def metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time_s")
    return rows


def test_search_writes_the_whole_training_folder(write_config, tmp_path):
    cfg = write_config(export={"formats": ["pt2", "onnx"], "every": 0})
    assert search_main(["-c", str(cfg)]) == 0
    folder = tmp_path / "trainings" / "tiny"
    assert (folder / "config.yml").exists() and (folder / "log.txt").exists()
    assert "epoch 2/2" in (folder / "log.txt").read_text()
    rows = metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in (
        "train_loss",
        "train_acc",
        "val_acc_greedy",
        "val_acc_sampled",
        "controller_reward",
        "controller_baseline",
        "controller_entropy",
        "cost",
        "ops",
        "architecture",
        "blocks",
    ):
        assert key in rows[1]
    assert rows[1]["blocks"]["dense_kept"] + rows[1]["blocks"]["dense_replaced"] == 2
    assert rows[0]["controller_reward"] is None  # warm-up epoch: no controller phase
    assert rows[1]["controller_reward"] is not None
    arch_dir = folder / "logs" / "architectures"
    for ext in ("json", "txt", "dot"):
        assert (arch_dir / f"epoch_2.{ext}").exists()
    assert (arch_dir / "epoch_2.png").exists() == dot_available()
    exported = folder / "exported_models"
    assert (exported / "inference_only" / "epoch_2.pt2").exists()
    assert (exported / "inference_only" / "epoch_2.onnx").exists()
    assert (exported / "trainables" / "epoch_2.safetensors").exists()
    assert not (exported / "trainables" / "epoch_1.safetensors").exists()  # every: 0 = last only
    best = json.loads((folder / "best_architecture.json").read_text())
    assert best["model"]["name"] == "meliusnet_flex" and best["architecture"]["choices"]
    assert sorted(p.name for p in (folder / "enas_checkpoint").iterdir()) == [
        "last.pt",
        "previous.pt",
    ]


def test_tensorboard_has_scalars_probabilities_and_architecture(write_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert search_main(["-c", str(write_config())]) == 0
    acc = EventAccumulator(str(tmp_path / "trainings" / "tiny" / "tensorboard"))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for tag in ("train/loss", "val/acc", "controller/reward", "cost/ops"):
        assert tag in scalars
    assert any(t.startswith("probabilities/stage1.block1.dense/") for t in scalars)
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert "architecture" in str(acc.Tags()["tensors"])  # add_text stores a tensor summary
    assert bool(acc.Tags()["images"]) == dot_available()


def test_existing_folder_is_never_overwritten(write_config, tmp_path):
    cfg = write_config(epochs=1)
    assert search_main(["-c", str(cfg)]) == 0
    first = (tmp_path / "trainings" / "tiny" / "metrics.jsonl").read_text()
    assert search_main(["-c", str(cfg)]) == 0
    assert (tmp_path / "trainings" / "tiny" / "metrics.jsonl").read_text() == first
    assert (tmp_path / "trainings" / "tiny_2" / "metrics.jsonl").exists()


def test_seeded_cpu_runs_are_identical(write_config, tmp_path):
    cfg = write_config(epochs=1)
    assert search_main(["-c", str(cfg)]) == 0
    assert search_main(["-c", str(cfg)]) == 0
    assert metrics(tmp_path / "trainings" / "tiny") == metrics(tmp_path / "trainings" / "tiny_2")


def test_resume_continues_exactly(write_config, tmp_path, interrupt_after_first_checkpoint):
    cfg = write_config(epochs=3, name="straight")
    assert search_main(["-c", str(cfg)]) == 0
    cfg = write_config(epochs=3, name="resumed")
    with interrupt_after_first_checkpoint():
        assert search_main(["-c", str(cfg)]) == 130
    resumed = tmp_path / "trainings" / "resumed"
    assert load_checkpoint(resumed / "enas_checkpoint")["epoch"] == 1
    assert search_main(["--resume", str(resumed)]) == 0
    straight = tmp_path / "trainings" / "straight"
    assert metrics(resumed) == metrics(straight)
    a = load_checkpoint(straight / "enas_checkpoint")
    b = load_checkpoint(resumed / "enas_checkpoint")
    for key in ("supernet", "strategy"):
        flat_a, flat_b = _flatten(a[key]), _flatten(b[key])
        assert flat_a.keys() == flat_b.keys()
        for k in flat_a:
            assert torch.equal(flat_a[k], flat_b[k]), k
    assert a["strategy"]["trainer"]["baseline"] == b["strategy"]["trainer"]["baseline"]


def _flatten(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    else:
        return {}
    out = {}
    for k, v in items:
        out.update(_flatten(v, f"{prefix}.{k}"))
    return out


def test_resume_can_raise_epochs(write_config, tmp_path):
    assert search_main(["-c", str(write_config(epochs=1))]) == 0
    folder = tmp_path / "trainings" / "tiny"
    assert search_main(["--resume", str(folder), "--epochs", "2"]) == 0
    rows = metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["lr"] == pytest.approx(rows[0]["lr"] * 0.5)  # cosine over the new 2 epochs
    assert search_main(["--resume", str(folder)]) == 2  # already done


def test_truncated_checkpoint_falls_back_to_previous(write_config, tmp_path):
    assert search_main(["-c", str(write_config(epochs=2))]) == 0
    ckpt = tmp_path / "trainings" / "tiny" / "enas_checkpoint"
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="unreadable.*previous.pt"):
        state = load_checkpoint(ckpt)
    # the last checkpoint was the final selection's; the previous one is the last epoch's
    assert state["epoch"] == 2 and state["final"] is None
    folder = tmp_path / "trainings" / "tiny"
    (folder / "final_selection.json").unlink()
    with pytest.warns(UserWarning):
        assert search_main(["--resume", str(folder)]) == 0  # makes the final selection again
    assert [r["epoch"] for r in metrics(folder)] == [1, 2]
    assert (folder / "final_selection.json").is_file()
    assert load_checkpoint(ckpt)["final"] is not None


def test_resume_with_other_model_or_space_is_refused(write_config, tmp_path, capsys):
    assert search_main(["-c", str(write_config(epochs=1))]) == 0
    folder = str(tmp_path / "trainings" / "tiny")
    capsys.readouterr()
    assert search_main(["--resume", folder, "--epochs", "2", "--model.name", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "differs from the checkpoint's in model.name" in err and "--force" in err
    space = '{"dense_block": ["conv1x1"], "improvement_block": ["conv3x3"]}'
    assert search_main(["--resume", folder, "--epochs", "2", "--search_space", space]) == 2
    assert "search_space" in capsys.readouterr().err


def test_lightnas_search_is_train_enas(write_config, tmp_path):
    assert main(["search", "-c", str(write_config(epochs=1))]) == 0
    assert (tmp_path / "trainings" / "tiny" / "metrics.jsonl").exists()
    assert main(["nope"]) == 2


def test_random_and_fixed_strategies_share_the_engine(write_config, tmp_path):
    assert search_main(["-c", str(write_config(epochs=1, search={"strategy": "random"}))]) == 0
    arch = json.loads((tmp_path / "trainings" / "tiny" / "best_architecture.json").read_text())
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps(arch["architecture"]))
    fixed = write_config(
        epochs=1, name="fixed", search={"strategy": "fixed", "architecture": str(arch_file)}
    )
    assert search_main(["-c", str(fixed)]) == 0
    row = metrics(tmp_path / "trainings" / "fixed")[0]
    assert row["architecture"] == arch["architecture"]["choices"]
    assert row["controller_reward"] is None


def test_sigint_saves_last_completed_epoch_and_exits_with_message(write_config, tmp_path):
    cfg = write_config(epochs=50, data={"num_samples": 400})
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train_enas.py"), "-c", str(cfg)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = tmp_path / "trainings" / "tiny" / "enas_checkpoint" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists()
    time.sleep(0.5)  # now inside a later epoch
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "--resume" in err
    state = load_checkpoint(ckpt.parent)
    assert 1 <= state["epoch"] < 50
    assert len(metrics(tmp_path / "trainings" / "tiny")) == state["epoch"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_reach_the_terminal_but_not_log_txt(write_config, tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert search_main(["-c", str(write_config(epochs=1, progress=True))]) == 0
    assert "\r" in terminal.getvalue() and "epoch 1/1 train" in terminal.getvalue()
    log = (tmp_path / "trainings" / "tiny" / "log.txt").read_text()
    assert "\r" not in log and "epoch 1/1  loss" in log


def test_retrain_epoch_lines_name_the_fixed_architecture(write_config, tmp_path, capsys):
    assert search_main(["-c", str(write_config(epochs=1, search={"strategy": "random"}))]) == 0
    folder = tmp_path / "trainings" / "tiny"
    capsys.readouterr()
    assert main(["retrain", str(folder), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("epoch 1/1"))
    assert "(fixed)" in line and "greedy" not in line
