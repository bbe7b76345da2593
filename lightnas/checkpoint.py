"""Atomic save / fallback load of the whole search state (`enas_checkpoint/`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

LAST = "last.pt"
PREVIOUS = "previous.pt"


def save_checkpoint(folder: Path, state: dict) -> Path:
    """Write `state` to folder/last.pt atomically, keeping the former one as previous.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    last, tmp = folder / LAST, folder / f".{LAST}.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    if last.exists():
        os.replace(last, folder / PREVIOUS)
    os.replace(tmp, last)
    return last


def load_checkpoint(folder: Path) -> dict:
    """The newest loadable checkpoint in `folder`; falls back to previous.pt with a warning."""
    errors = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.exists():
            errors.append(f"{path} missing")
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or corrupt file: try the previous one
            errors.append(f"{path}: {type(err).__name__}")
            continue
        if name == PREVIOUS:
            warnings.warn(
                f"checkpoint {folder / LAST} is unreadable ({errors[-1]}); resuming from "
                f"{path} (epoch {state.get('epoch')})",
                stacklevel=2,
            )
        return state
    raise FileNotFoundError(f"no loadable checkpoint in {folder}: {'; '.join(errors)}")
