"""Callbacks that turn engine events into files: metrics.jsonl, TensorBoard, architecture
graphs, exports and checkpoints, plus the progress bars."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lightnas.engine.loop import Callback, Engine
from lightnas.engine.records import CONTROLLER_KEYS, EpochResult
from lightnas.engine.selection import FinalSelection
from lightnas.export import export_child
from lightnas.layout import FINAL_NAME, TrainingFolder, epoch_name
from lightnas.outputs.checkpoint import save_checkpoint
from lightnas.outputs.graphs import (
    architecture_to_dot,
    blocks_summary,
    render_dot,
    render_png_bytes,
    write_architecture_files,
)
from lightnas.outputs.status import FINISHED, HEARTBEAT_S, RUNNING, beat_status, write_status
from lightnas.runtime.fileio import write_json_atomic
from lightnas.scoring.latency import latency_table_of
from lightnas.search.space import Architecture


def scalars(result: EpochResult) -> dict[str, float]:
    """TensorBoard's scalars of an epoch, by tag."""
    out = {
        "train/loss": result.train_loss,
        "train/acc": result.train_acc,
        "train/lr": result.lr,
        "val/acc": result.val_acc,
        "val/reward": result.reward,
    }
    out.update({f"val/acc_{label}": v["acc"] for label, v in result.validated.items()})
    out.update({f"controller/{k}": result.controller.get(k) for k in CONTROLLER_KEYS})
    out.update({f"cost/{k}": v for k, v in result.costs.items()})
    return {tag: v for tag, v in out.items() if v is not None}


def epoch_architecture(engine: Engine, result: EpochResult) -> Architecture:
    return Architecture(engine.supernet.space, result.architecture)


def epoch_stats(result: EpochResult) -> dict:
    """What an epoch's graph and export are annotated with."""
    stats = {"epoch": result.epoch, "val_acc": result.val_acc, "reward": result.reward}
    costs = {k: result.costs[k] for k in ("ops", "model_bits", "params") if k in result.costs}
    return stats | costs


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

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        reward = result.controller.get("reward")
        print(
            f"epoch {result.epoch}/{engine.cfg.epochs}  loss {result.train_loss:.3f}  "
            f"train {result.train_acc:.3f}  val {result.val_acc:.3f} ({result.chosen})  "
            f"reward {'-' if reward is None else f'{reward:.3f}'}  "
            f"OPs {result.costs.get('ops', float('nan')):.3g}  {result.time_s:.1f}s",
            flush=True,
        )

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        print(final_table(final), flush=True)


def final_table(final: FinalSelection) -> str:
    """A narrow table of the final selection, the winner marked."""
    lines = [
        "final selection (re-scored with the final weights):",
        "   epoch  label     val acc  reward  test acc       OPs",
    ]
    for i, c in enumerate(final.candidates):
        test = "-" if c.test_acc is None else f"{c.test_acc:.4f}"
        mark = "*" if i == final.winner else " "
        lines.append(
            f"{mark}  {c.proposed_epoch:>5}  {c.label:<8} {c.val_acc:>7.4f}  {c.reward:>6.4f}  "
            f"{test:>8}  {c.costs.get('ops', float('nan')):>8.3g}"
        )
    return "\n".join(lines)


def metrics_row(engine: Engine, result: EpochResult) -> dict:
    """An epoch's line in metrics.jsonl: the engine's row plus the blocks summary of its
    architecture (computed here from the architecture, so the engine's state stays as it was)."""
    return {**result.to_row(), "blocks": blocks_summary(epoch_architecture(engine, result))}


class MetricsFile(Callback):
    """metrics.jsonl: one JSON object per epoch, rewritten from the engine's history on start."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_start(self, engine: Engine) -> None:
        rows = [metrics_row(engine, r) for r in engine.history]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics_row(engine, result)) + "\n")


class TensorBoard(Callback):
    """Scalars, choice probabilities, the architecture as text and its graph as an image."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer = None

    def on_start(self, engine: Engine) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a crashed run wrote after its last checkpoint
        self.writer = SummaryWriter(str(self.log_dir), purge_step=engine.epoch + 1)

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        step = result.epoch
        for tag, value in scalars(result).items():
            self.writer.add_scalar(tag, value, step)
        for point, probs in engine.strategy.stats().get("probabilities", {}).items():
            choices = engine.supernet.space[point].choices
            for choice, p in zip(choices, probs, strict=True):
                self.writer.add_scalar(f"probabilities/{point}/{choice}", p, step)
        arch = epoch_architecture(engine, result)
        table = "\n".join(f"    {k}: {v}" for k, v in arch.items())
        self.writer.add_text("architecture", table, step)
        self.write_blocks(engine, arch, step)
        self.writer.flush()

    def on_epoch_decorate(self, engine: Engine, result: EpochResult) -> None:
        """The architecture's graph as an image, rendered after the epoch's checkpoint."""
        arch = epoch_architecture(engine, result)
        dot = architecture_to_dot(arch, f"epoch {result.epoch}", stats=epoch_stats(result))
        png = render_png_bytes(dot)
        if png is not None:
            from PIL import Image

            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            self.writer.add_image("architecture", image, result.epoch, dataformats="HWC")
            self.writer.flush()

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        table = "\n".join(f"    {line}" for line in final_table(final).splitlines())
        self.writer.add_text("final_selection", table, engine.epoch)
        if final.best.test_acc is not None:
            self.writer.add_scalar("final/test_acc", final.best.test_acc, engine.epoch)
        self.writer.add_scalar("final/val_acc", final.best.val_acc, engine.epoch)
        self.writer.flush()

    def write_blocks(self, engine: Engine, arch: Architecture, step: int) -> None:
        """The blocks summary (counts as scalars, per-block bits as text) and the latency
        table with the epoch's choices, when the run has one."""
        summary = blocks_summary(arch)
        for key, value in summary.items():
            if isinstance(value, int):
                self.writer.add_scalar(f"blocks/{key}", value, step)
        if "bits" in summary:
            self.writer.add_text("blocks/bits", " ".join(map(str, summary["bits"])), step)
        latency = latency_table_of(engine.evaluator)
        if latency is not None:
            self.writer.add_text("latency_table", latency.markdown(arch), step)

    def on_end(self, engine: Engine) -> None:
        if self.writer is not None:
            self.writer.close()


class LatencyTableFile(Callback):
    """latency_table.csv: the per-op latency table a `search.cost: latency_table` run measured
    (a resumed run reads it back instead of measuring again)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_start(self, engine: Engine) -> None:
        latency = latency_table_of(engine.evaluator)
        if latency is not None and not self.path.is_file():
            latency.write_csv(self.path)


class ArchitectureFiles(Callback):
    """logs/architectures/epoch_N.{json,txt,dot} and best_architecture.json (with the base
    network's costs) with the epoch's files; epoch_N.png (the graph formats) rendered after the
    epoch's checkpoint, so that a failing Graphviz never costs the epoch."""

    def __init__(self, folder: TrainingFolder, formats, info: dict) -> None:
        self.folder = folder
        self.formats = formats
        self.info = info

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        arch = epoch_architecture(engine, result)
        out = self.folder.architectures
        write_architecture_files(arch, out, epoch_name(result.epoch), epoch_stats(result), ())
        self.write_best(engine)

    def on_epoch_decorate(self, engine: Engine, result: EpochResult) -> None:
        stem = self.folder.architectures / epoch_name(result.epoch)
        render_dot(stem.with_suffix(".dot").read_text(), stem, self.formats)

    def write_best(self, engine: Engine) -> None:
        best = engine.best
        base = engine.supernet.space.default()  # the published network, for comparison
        data = {
            "architecture": {"space": engine.supernet.space.name, "choices": best.architecture},
            "model": self.info,
            "stats": best.as_dict(),
            "base": {"architecture": dict(base), **engine.evaluator.costs.costs(base)},
        }
        write_json_atomic(self.folder.best_architecture, data)

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        write_json_atomic(self.folder.final_selection, final.to_dict())
        self.write_best(engine)


class Exporter(Callback):
    """exported_models/: the epoch's child (pt2 / ONNX for inference, safetensors to train)."""

    def __init__(self, folder: TrainingFolder, formats, every: int, info: dict) -> None:
        self.folder = folder
        self.formats = formats
        self.every = every
        self.info = info

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        epoch = result.epoch
        last = epoch == engine.cfg.epochs
        if not last and (self.every == 0 or epoch % self.every):
            return
        arch = epoch_architecture(engine, result)
        self.export(engine, arch, epoch_name(epoch), epoch_stats(result))

    def export(self, engine: Engine, arch: Architecture, name: str, stats: dict) -> None:
        net = engine.evaluator.trained_child(arch, engine.epoch - 1)
        export_child(net, arch, self.info, self.folder.exports, name, self.formats, stats)

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        arch = Architecture(engine.supernet.space, final.best.architecture)
        self.export(engine, arch, FINAL_NAME, engine.best.as_dict())


class Checkpointer(Callback):
    """enas_checkpoint/last.pt after every epoch (previous.pt kept), written last; inside an
    epoch every `every_minutes` of training, and when a stop is requested."""

    def __init__(self, folder: Path, every_minutes: float = 10.0) -> None:
        self.folder = folder
        self.every_s = every_minutes * 60
        self.last = time.monotonic()

    def save(self, engine: Engine) -> None:
        save_checkpoint(self.folder, engine.state_dict())
        self.last = time.monotonic()

    def on_start(self, engine: Engine) -> None:
        self.last = time.monotonic()

    def on_batch_end(self, engine: Engine) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.save(engine)

    def on_interrupt(self, engine: Engine) -> None:
        self.save(engine)

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        self.save(engine)

    def on_final(self, engine: Engine, final: FinalSelection) -> None:
        self.save(engine)


class StatusFile(Callback):
    """status.json: what the run is doing, so that a reader (the dashboard) can tell a running
    search from a killed one. Written at the run's start, epoch ends and end; its heartbeat beats
    from a timer meanwhile (`heartbeat`, around the whole run), whatever phase the run is in."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, engine: Engine, state: str) -> None:
        write_status(self.path, state, **progress_fields(engine))

    def on_start(self, engine: Engine) -> None:
        self.write(engine, RUNNING)

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        self.write(engine, RUNNING)

    def on_end(self, engine: Engine) -> None:
        self.write(engine, FINISHED)


def progress_fields(engine: Engine) -> dict:
    """Where the run stands, for status.json: epochs done and the epoch's batches done."""
    progress = engine.progress  # read from the heartbeat's thread too: one attribute read
    return {
        "epoch": engine.epoch,
        "epochs": engine.cfg.epochs,
        "step": 0 if progress is None else progress.step,
        "steps": len(engine.data.train),
    }


@contextlib.contextmanager
def heartbeat(path: Path, engine: Engine) -> Iterator[None]:
    """Beat status.json's heartbeat every HEARTBEAT_S seconds from a daemon thread while the
    block runs, whatever the engine is doing (training, the controller phase, validation, the
    final selection, an export); stopped, and joined, when the block ends, however it ends,
    before the caller records how the run ended. Only rank 0 runs it
    (lightnas.run.folder.run_logged)."""
    stop = threading.Event()
    every = HEARTBEAT_S

    def beat() -> None:
        warned = False
        while not stop.wait(every):
            try:
                beat_status(path, **progress_fields(engine))
            except OSError as err:  # a full disk: the run goes on, a reader sees it go stale
                if not warned:
                    print(f"warning: cannot write {path}: {err}", file=sys.stderr, flush=True)
                warned = True

    thread = threading.Thread(target=beat, name="lightnas-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
