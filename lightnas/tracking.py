"""Callbacks that turn engine events into files: metrics.jsonl, TensorBoard, architecture
graphs, exports and checkpoints, plus the progress bars."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lightnas.checkpoint import save_checkpoint
from lightnas.engine import Callback, Engine
from lightnas.export import export_child, model_info
from lightnas.fileio import write_json_atomic
from lightnas.graphs import architecture_to_dot, render_png_bytes, write_architecture_files
from lightnas.models import child
from lightnas.search.space import Architecture

SCALARS = {
    "train/loss": "train_loss",
    "train/acc": "train_acc",
    "train/lr": "lr",
    "val/acc": "val_acc",
    "val/acc_greedy": "val_acc_greedy",
    "val/acc_sampled": "val_acc_sampled",
    "val/reward": "reward",
    "controller/reward": "controller_reward",
    "controller/baseline": "controller_baseline",
    "controller/entropy": "controller_entropy",
    "controller/loss": "controller_loss",
    "cost/ops": "ops",
    "cost/model_bits": "model_bits",
    "cost/params": "params",
}


def epoch_architecture(engine: Engine, result: dict) -> Architecture:
    return Architecture(engine.supernet.space, result["architecture"])


def epoch_stats(result: dict) -> dict:
    keys = ("epoch", "val_acc", "reward", "ops", "model_bits", "params")
    return {k: result[k] for k in keys if result.get(k) is not None}


class Progress(Callback):
    """tqdm bars per phase on a terminal; one line per epoch otherwise."""

    def __init__(self, enabled: bool = True, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.bars = enabled and self.stream.isatty()
        self.bar: tqdm | None = None

    def on_phase(self, engine: Engine, phase: str, total: int) -> None:
        if self.bars:
            desc = f"epoch {engine.epoch + 1}/{engine.cfg.epochs} {phase}"
            self.bar = tqdm(total=total, desc=desc, leave=False, file=self.stream, ncols=100)

    def on_step(self, engine: Engine, phase: str, stats: dict) -> None:
        if self.bar is not None:
            self.bar.update(stats["n"] - self.bar.n)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items() if k != "n"})

    def on_phase_end(self, engine: Engine, phase: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        reward = result["controller_reward"]
        print(
            f"epoch {result['epoch']}/{engine.cfg.epochs}  loss {result['train_loss']:.3f}  "
            f"train {result['train_acc']:.3f}  val {result['val_acc']:.3f} ({result['chosen']})  "
            f"reward {'-' if reward is None else f'{reward:.3f}'}  OPs {result['ops']:.3g}  "
            f"{result['time_s']:.1f}s",
            flush=True,
        )


class MetricsFile(Callback):
    """metrics.jsonl: one JSON object per epoch, rewritten from the engine's history on start."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_start(self, engine: Engine) -> None:
        self.path.write_text("".join(json.dumps(r) + "\n" for r in engine.history))

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(result) + "\n")


class TensorBoard(Callback):
    """Scalars, choice probabilities, the architecture as text and its graph as an image."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer = None

    def on_start(self, engine: Engine) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a crashed run wrote after its last checkpoint
        self.writer = SummaryWriter(str(self.log_dir), purge_step=engine.epoch + 1)

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        step = result["epoch"]
        for tag, key in SCALARS.items():
            if result.get(key) is not None:
                self.writer.add_scalar(tag, result[key], step)
        for point, probs in engine.strategy.stats().get("probabilities", {}).items():
            choices = engine.supernet.space[point].choices
            for choice, p in zip(choices, probs, strict=True):
                self.writer.add_scalar(f"probabilities/{point}/{choice}", p, step)
        arch = epoch_architecture(engine, result)
        table = "\n".join(f"    {k}: {v}" for k, v in arch.items())
        self.writer.add_text("architecture", table, step)
        png = render_png_bytes(
            architecture_to_dot(arch, f"epoch {step}", stats=epoch_stats(result))
        )
        if png is not None:
            from PIL import Image

            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            self.writer.add_image("architecture", image, step, dataformats="HWC")
        self.writer.flush()

    def on_end(self, engine: Engine) -> None:
        if self.writer is not None:
            self.writer.close()


class ArchitectureFiles(Callback):
    """logs/architectures/epoch_N.{json,txt,dot,png} and best_architecture.json."""

    def __init__(self, folder: Path, formats, info: dict) -> None:
        self.folder = folder
        self.formats = formats
        self.info = info

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        arch = epoch_architecture(engine, result)
        out = self.folder / "logs" / "architectures"
        write_architecture_files(
            arch, out, f"epoch_{result['epoch']}", epoch_stats(result), self.formats
        )
        best = engine.best
        data = {
            "architecture": {"space": arch.space.name, "choices": best["architecture"]},
            "model": self.info,
            "stats": best,
        }
        write_json_atomic(self.folder / "best_architecture.json", data)


class Exporter(Callback):
    """exported_models/: the epoch's child (pt2 / ONNX for inference, safetensors to train)."""

    def __init__(self, folder: Path, formats, every: int, info: dict) -> None:
        self.folder = folder
        self.formats = formats
        self.every = every
        self.info = info

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        epoch = result["epoch"]
        last = epoch == engine.cfg.epochs
        if not last and (self.every == 0 or epoch % self.every):
            return
        arch = epoch_architecture(engine, result)
        # the supernet's BN statistics were re-estimated for this architecture in validation
        engine.recalibrate_bn(arch, result["epoch"] - 1)
        net = child(engine.supernet, arch).cpu().eval()
        export_child(
            net, arch, self.info, self.folder, f"epoch_{epoch}", self.formats, epoch_stats(result)
        )


class Checkpointer(Callback):
    """enas_checkpoint/last.pt after every epoch (previous.pt kept); written last."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch_end(self, engine: Engine, result: dict) -> None:
        save_checkpoint(self.folder, engine.state_dict())


def standard_callbacks(engine_cfg, folder: Path, info: dict) -> list[Callback]:
    """The training folder's callbacks, in the order they must run (checkpoint last)."""
    return [
        Progress(engine_cfg.progress),
        ArchitectureFiles(folder, engine_cfg.export.graph_formats, info),
        Exporter(
            folder / "exported_models", engine_cfg.export.formats, engine_cfg.export.every, info
        ),
        MetricsFile(folder / "metrics.jsonl"),
        TensorBoard(folder / "tensorboard"),
        Checkpointer(folder / "enas_checkpoint"),
    ]


__all__ = ["model_info", "standard_callbacks"]
