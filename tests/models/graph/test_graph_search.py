"""The two new spaces, from their files alone: each searched end to end on digits, resumed
exactly after a SIGKILL, its exports (pt2, ONNX, packed, trainable) computing what the
supernet computes with their architecture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
import yaml
from helpers.spaces import NARROW_PARAMS
from torch import nn

from lightnas.cli import search_main
from lightnas.export import load_architecture, load_child
from lightnas.models import create_supernet
from lightnas.outputs.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[3]
SPACES = ROOT / "configs" / "spaces"
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARAMS = NARROW_PARAMS  # the shipped files at digits' size: narrower, the same graph


def config(root: Path, space: str, name: str) -> Path:
    cfg = {
        "model": {
            "name": "graph",
            "stem": "thumbnail",
            "file": str(SPACES / f"{space}.yml"),
            "kwargs": {"params": PARAMS[space]},
        },
        "data": {
            "dataset": "digits",
            "image_size": 8,
            "num_samples": 128,
            "val_size": 48,
            "batch_size": 32,
        },
        "search": {
            "strategy": "enas",
            "warmup_epochs": 1,
            "update_arch_frequency": 3,
            "controller_steps": 2,
            "num_val_samples": 2,
            "bn_recalibration_batches": 1,
            "final_top_k": 2,
            "cost_weight": -0.1,
        },
        "export": {"formats": ["pt2", "onnx", "packed"], "every": 0},
        "epochs": 2,
        "seed": 0,
        "device": "cpu",
        "name": name,
        "output_dir": str(root / "trainings"),
        "progress": False,
    }
    path = root / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def rows(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


@pytest.fixture(scope="module", params=list(PARAMS))
def searched(request, tmp_path_factory) -> tuple[str, Path, Path]:
    root = tmp_path_factory.mktemp(request.param)
    assert search_main(["-c", str(config(root, request.param, "straight"))]) == 0
    return request.param, root, root / "trainings" / "straight"


def test_the_search_runs_on_the_files_space(searched):
    space, _, folder = searched
    lines = rows(folder)
    assert len(lines) == 2
    best = json.loads((folder / "best_architecture.json").read_text())
    assert best["architecture"]["space"] == space
    supernet = create_supernet(
        "graph",
        10,
        "thumbnail",
        None,
        **json.loads((folder / "exported_models" / "trainables" / "final.json").read_text())[
            "model"
        ]["kwargs"],
    )
    assert set(best["architecture"]["choices"]) == set(supernet.space.names)


def test_a_killed_search_resumes_exactly(searched):
    space, root, straight = searched
    folder = root / "trainings" / "killed"
    args = [sys.executable, str(ROOT / "train_enas.py"), "-c", str(config(root, space, "killed"))]
    proc = subprocess.Popen(args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and len(rows(folder)) < 1:
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert len(rows(folder)) < 2
    assert search_main(["--resume", str(folder)]) == 0
    assert rows(folder) == rows(straight)
    a, b = (load_checkpoint(f / "enas_checkpoint") for f in (straight, folder))
    assert list(a["supernet"]) == list(b["supernet"])
    for key, value in a["supernet"].items():
        assert torch.equal(value, b["supernet"][key]), key
    ctrl_a, ctrl_b = a["strategy"]["controller"], b["strategy"]["controller"]
    assert all(torch.equal(ctrl_a[k], ctrl_b[k]) for k in ctrl_a)


def batchnorms_called(net: nn.Module, x: torch.Tensor) -> list[nn.BatchNorm2d]:
    called: list[nn.BatchNorm2d] = []
    hooks = [
        m.register_forward_hook(lambda m, *_: called.append(m))
        for m in net.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    with torch.no_grad():
        net.eval()(x)
    for h in hooks:
        h.remove()
    return called


def test_exports_compute_what_the_supernet_computes_with_their_architecture(searched):
    _, _, folder = searched
    exports = folder / "exported_models"
    description = json.loads((exports / "trainables" / "final.json").read_text())
    info, arch = description["model"], load_architecture(exports / "trainables" / "final.json")
    # the supernet rebuilt from the export's description, with the run's trained weights
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    supernet.load_state_dict(load_checkpoint(folder / "enas_checkpoint")["supernet"])
    supernet.set_architecture(arch)
    exported = load_child(exports / "trainables" / "final.safetensors")
    x = torch.randn(5, *info["input_shape"], generator=torch.Generator().manual_seed(0))
    # an export's BatchNorm statistics were re-estimated for its architecture: give the
    # supernet's active BatchNorms the same, in the order the forward pass uses them
    ours, theirs = batchnorms_called(supernet, x), batchnorms_called(exported, x)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        a.running_mean.copy_(b.running_mean)
        a.running_var.copy_(b.running_var)
    with torch.no_grad():
        expected = supernet.eval()(x)
        assert torch.equal(exported(x), expected)
        assert torch.equal(load_child(exports / "deploy" / "final.packed.safetensors")(x), expected)
        pt2 = torch.export.load(exports / "inference_only" / "final.pt2").module()(x)
    session = ort.InferenceSession(
        exports / "inference_only" / "final.onnx", providers=["CPUExecutionProvider"]
    )
    (onnx_out,) = session.run(None, {"input": x.numpy()})
    torch.testing.assert_close(pt2, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(onnx_out), expected, atol=1e-4, rtol=1e-4)
