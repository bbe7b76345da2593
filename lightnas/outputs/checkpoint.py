"""Atomic save / fallback load of the whole search state (`enas_checkpoint/`)."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from lightnas.errors import CheckpointError
from lightnas.runtime.fileio import write_atomic

LAST = "last.pt"
PREVIOUS = "previous.pt"
# what every checkpoint holds (lightnas.engine.loop.Engine.state_dict)
REQUIRED = ("epoch", "global_step", "history", "supernet", "optimizer", "strategy", "rng", "config")


def save_checkpoint(folder: Path, state: dict) -> Path:
    """Write `state` to folder/last.pt atomically, keeping the former one as previous.pt."""
    last = folder / LAST

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the one a resume would read
        if last.exists():  # only once the new one is complete: a crash keeps a loadable one
            os.replace(last, folder / PREVIOUS)

    write_atomic(last, write)
    return last


def has_checkpoint(folder: Path) -> bool:
    return any((folder / name).exists() for name in (LAST, PREVIOUS))


def _read(path: Path) -> dict:
    """One checkpoint file, checked to be a LightNAS state; CheckpointError says what is wrong."""
    try:
        with warnings.catch_warnings():  # torch warns before refusing a pickle we report anyway
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a loadable checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds a {type(state).__name__}, not a LightNAS checkpoint (a dict)"
        )
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a LightNAS checkpoint: it lacks {', '.join(missing)}")
    return state


def load_checkpoint(folder: Path) -> dict:
    """The newest loadable checkpoint in `folder`; falls back to previous.pt with a warning."""
    errors = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.exists():
            errors.append(f"{path} missing")
            continue
        try:
            state = _read(path)
        except CheckpointError as err:  # a truncated or corrupt file: try the previous one
            errors.append(str(err))
            continue
        if name == PREVIOUS:
            warnings.warn(
                f"checkpoint {folder / LAST} is unreadable ({errors[-1]}); resuming from "
                f"{path} (epoch {state.get('epoch')})",
                stacklevel=2,
            )
        return state
    raise CheckpointError(f"no loadable checkpoint in {folder}: {'; '.join(errors)}")
