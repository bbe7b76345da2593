"""A run killed (SIGKILL) at any moment resumes with `--resume` and ends exactly as the
uninterrupted run: the same metrics rows and the same weights."""

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

from lightnas.cli import search_main
from lightnas.outputs.checkpoint import load_checkpoint

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# kills itself with SIGKILL half-way through writing its third checkpoint
DIE_IN_CHECKPOINT_WRITE = """
import os, signal, sys, torch
real, calls = torch.save, []
def dying_save(obj, f):
    calls.append(1)
    if len(calls) == 3:
        f.write(b"partial")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f)
torch.save = dying_save
from lightnas.cli import search_main
sys.exit(search_main(sys.argv[1:]))
"""


def rows(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def metrics_lines(folder: Path) -> int:
    return len(rows(folder))


def run_until(args: list[str], cwd: Path, ready, timeout: float = 120) -> int:
    """Start a search, SIGKILL it once `ready()` holds (or let it die by itself)."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline and not ready():
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=60)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every killed run must reproduce."""
    from helpers.runs import tiny_config

    root = tmp_path_factory.mktemp("straight")
    cfg = tiny_config(root, epochs=3, name="straight", data={"num_samples": 160})
    cfg["search"]["update_arch_frequency"] = 3
    path = root / "straight.yml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(path)]) == 0
    return root / "trainings" / "straight"


def killed_config(write_config, every_minutes: float) -> Path:
    return write_config(
        epochs=3,
        name="killed",
        data={"num_samples": 160},
        search={"update_arch_frequency": 3},
        checkpoint={"every_minutes": every_minutes},
    )


def assert_resumes_like(straight: Path, folder: Path) -> None:
    assert search_main(["--resume", str(folder)]) == 0
    assert rows(folder) == rows(straight)
    a, b = (
        load_checkpoint(straight / "enas_checkpoint"),
        load_checkpoint(folder / "enas_checkpoint"),
    )
    for key in ("supernet", "optimizer"):
        assert str(a[key].keys()) == str(b[key].keys())
    for k, v in a["supernet"].items():
        assert torch.equal(v, b["supernet"][k]), k
    ctrl_a, ctrl_b = a["strategy"]["controller"], b["strategy"]["controller"]
    assert all(torch.equal(ctrl_a[k], ctrl_b[k]) for k in ctrl_a)


def test_killed_in_epoch_1_before_any_checkpoint(straight, write_config, tmp_path):
    cfg = killed_config(write_config, every_minutes=10)
    folder = tmp_path / "trainings" / "killed"
    code = run_until(
        [sys.executable, str(ROOT / "train_enas.py"), "-c", str(cfg)],
        tmp_path,
        lambda: (folder / "status.json").exists(),
    )
    assert code == -signal.SIGKILL
    assert not (folder / "enas_checkpoint" / "last.pt").exists()
    assert_resumes_like(straight, folder)


def test_killed_in_epoch_1_after_a_checkpoint_inside_it(straight, write_config, tmp_path):
    cfg = killed_config(write_config, every_minutes=0)  # a checkpoint after every batch
    folder = tmp_path / "trainings" / "killed"
    last = folder / "enas_checkpoint" / "last.pt"
    code = run_until(
        [sys.executable, str(ROOT / "train_enas.py"), "-c", str(cfg)],
        tmp_path,
        lambda: last.exists() and metrics_lines(folder) == 0,
    )
    assert code == -signal.SIGKILL
    state = load_checkpoint(folder / "enas_checkpoint")
    assert state["epoch"] == 0 and state["progress"]["step"] >= 1
    assert_resumes_like(straight, folder)


def test_killed_inside_a_checkpoint_write(straight, write_config, tmp_path):
    cfg = killed_config(write_config, every_minutes=0)
    folder = tmp_path / "trainings" / "killed"
    args = [sys.executable, "-c", DIE_IN_CHECKPOINT_WRITE, "-c", str(cfg)]
    env_path = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": env_path}, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (folder / "enas_checkpoint").iterdir()]
    # the half-written temporary file (fileio.write_atomic's) never replaced last.pt
    assert any(n.startswith(".last.") and n.endswith(".tmp.pt") for n in leftovers), leftovers
    assert load_checkpoint(folder / "enas_checkpoint")["progress"]["step"] == 2
    assert_resumes_like(straight, folder)


def test_killed_in_a_later_epoch(straight, write_config, tmp_path):
    cfg = killed_config(write_config, every_minutes=10)
    folder = tmp_path / "trainings" / "killed"
    code = run_until(
        [sys.executable, str(ROOT / "train_enas.py"), "-c", str(cfg)],
        tmp_path,
        lambda: metrics_lines(folder) >= 1,
    )
    assert code == -signal.SIGKILL
    assert_resumes_like(straight, folder)


def test_a_run_in_progress_refuses_a_second_writer_until_it_is_gone(write_config, tmp_path, capsys):
    cfg = write_config(epochs=50, name="busy", data={"num_samples": 160})
    folder = tmp_path / "trainings" / "busy"
    args = [sys.executable, str(ROOT / "train_enas.py"), "-c", str(cfg)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(args, cwd=tmp_path, **quiet)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and metrics_lines(folder) == 0:
        time.sleep(0.02)
    config = (folder / "config.yml").read_text()
    # a second resume of the folder while the run writes it: refused, nothing touched
    assert search_main(["--resume", str(folder), "--epochs", "60"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"is in use by another run (pid {proc.pid})" in err and len(err.splitlines()) == 1
    assert (folder / "config.yml").read_text() == config
    os.kill(proc.pid, signal.SIGKILL)  # the system drops the lock of a killed run
    proc.wait(timeout=60)
    done = load_checkpoint(folder / "enas_checkpoint")["epoch"]
    assert search_main(["--resume", str(folder), "--epochs", str(done + 1)]) == 0
    assert load_checkpoint(folder / "enas_checkpoint")["epoch"] == done + 1
