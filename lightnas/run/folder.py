"""A run's training folder: a new one (never reusing a name), its config and lock, and the run
itself with its output copied into the folder's log."""

from __future__ import annotations

import contextlib
import datetime
import sys
from pathlib import Path

from lightnas.config import Config
from lightnas.engine.loop import Engine
from lightnas.engine.loss import NonFiniteLossError
from lightnas.layout import TrainingFolder
from lightnas.outputs.checkpoint import has_checkpoint
from lightnas.outputs.status import FAILED, INTERRUPTED, write_status
from lightnas.outputs.tracking import heartbeat
from lightnas.run.parts import standard_callbacks
from lightnas.run.resume import Request
from lightnas.runtime.fileio import exclusive_lock, make_folder

AUTOSAVE_DIR = Path("configs/autosaved")


def new_folder(cfg: Config) -> TrainingFolder:
    """trainings/<name>; a taken name gets a numeric suffix, never reusing a folder."""
    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M")
    base = Path(cfg.output_dir) / (cfg.name or f"{cfg.model.name}_{stamp}")
    folder, n = base, 1
    while True:
        try:
            make_folder(folder, "output_dir", exist_ok=False)
            return TrainingFolder(folder)
        except FileExistsError:
            n += 1
            folder = base.with_name(f"{base.name}_{n}")


def save_config(parser, ns, path: Path, overwrite: bool = False) -> None:
    """The resolved config as YAML, without the command-line-only keys."""
    ns = ns.clone()
    for key in ("resume", "force", "config", "__path__"):
        if key in ns:
            del ns[key]
    parser.save(ns, path, overwrite=overwrite)


class StopRun(Exception):
    """Raised by a callback to end a run on purpose after a complete epoch (a sweep's pruner):
    the folder stays as that epoch left it, status.json records `state`, and the exception
    reaches the caller of `search` (or of `retrain.main`)."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state


class Tee:
    """Copy a stream into the training folder's log file."""

    def __init__(self, stream, log) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run_logged(engine: Engine, folder: TrainingFolder, info: dict, resume_command: str) -> int:
    """Run `engine` into `folder` with its callbacks, output copied to log.txt; the exit code."""
    # built before the output is teed: progress bars go to the terminal, not into log.txt
    engine.callbacks = standard_callbacks(engine.cfg, folder, info) + engine.callbacks
    with open(folder.log, "a") as log:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(stdout, log), Tee(stderr, log)
        try:
            print(f"training folder: {folder.root}", flush=True)
            if engine.epoch or engine.progress:
                print(f"resuming {folder.root} after {position(engine)}", flush=True)
            with heartbeat(folder.status, engine):
                engine.run()
            return 0
        except KeyboardInterrupt:
            write_status(folder.status, INTERRUPTED)
            kept = "nothing was checkpointed yet, so it starts again"
            if has_checkpoint(folder.checkpoints):
                kept = f"its checkpoint is in {folder.checkpoints}"
            print(
                f"\ninterrupted after {position(engine)}: {kept}; continue with: {resume_command}",
                file=sys.stderr,
                flush=True,
            )
            return 130
        except NonFiniteLossError as err:
            write_status(folder.status, FAILED, error=str(err))
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
        except StopRun as stop:
            write_status(folder.status, stop.state, reason=str(stop))
            print(f"stopped after {position(engine)}: {stop}", flush=True)
            raise
        except BaseException as err:
            write_status(folder.status, FAILED, error=f"{type(err).__name__}: {err}")
            raise
        finally:
            sys.stdout, sys.stderr = stdout, stderr


def position(engine: Engine) -> str:
    """Where a run stands, e.g. `epoch 3` or `epoch 2, batch 40 of epoch 3`."""
    done = f"epoch {engine.epoch}"
    p = engine.progress
    if p is None or p.step == 0:
        return done
    return f"{done}, batch {p.step} of epoch {p.epoch + 1}"


def lock_folder(folder: TrainingFolder, held: contextlib.ExitStack) -> None:
    """Hold `folder`'s lock until `held` closes: one run writes a training folder at a time."""
    held.enter_context(exclusive_lock(folder.lock, str(folder.root)))


def prepare_folder(request: Request, held: contextlib.ExitStack) -> TrainingFolder:
    """The run's folder: a new one with its config, or the resumed one (config updated); a new
    one is locked until `held` closes (a resumed one was locked by `prepare_run`)."""
    if request.folder is None:
        folder = new_folder(request.cfg)
        lock_folder(folder, held)
        save_config(request.parser, request.ns, folder.config)
        if not request.from_file_only:
            AUTOSAVE_DIR.mkdir(parents=True, exist_ok=True)
            autosaved = AUTOSAVE_DIR / f"{folder.name}.yml"
            save_config(request.parser, request.ns, autosaved, overwrite=True)
        return folder
    save_config(request.parser, request.ns, request.folder.config, overwrite=True)
    return request.folder
