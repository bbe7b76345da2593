"""Atomic file writes: a temporary file next to the target, then `os.replace`."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """`write` to a temporary file next to `path`, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer creates the file (not mkstemp, whose 0600 mode would survive the rename)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Text or bytes to `path`, atomically."""
    atomic_write(
        path, lambda tmp: tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    )


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")
