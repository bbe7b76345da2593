"""Atomic file writes (a temporary file next to the target, then `os.replace`) and the folders a
user names."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from lightnas.errors import ConfigError


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


def make_folder(path: Path, key: str, exist_ok: bool = True) -> None:
    """`mkdir -p path`; a folder that cannot be made (no permission, a file in the way, a
    read-only disk) is bad input naming the option `key` that chose it. A taken folder with
    `exist_ok=False` still raises FileExistsError."""
    try:
        Path(path).mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        if not exist_ok:
            raise  # taken: the caller picks another name
        raise ConfigError(f"{key}: {path} is a file, not a folder") from None
    except OSError as err:
        raise ConfigError(f"{key}: cannot create the folder {path}: {err.strerror}") from None


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) while the block runs; the
    system drops it when the process ends, however it ends, so no lock goes stale. A lock held
    by another process is bad input naming `what` and that process's pid."""
    with open(path, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            pid = file.read().strip() or "?"
            raise ConfigError(
                f"{what} is in use by another run (pid {pid}): wait for it to end, or stop it "
                f"(Ctrl-C in its terminal, or kill -INT {pid})"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        yield


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding `exclusive_lock` on `path`: the pid written in the file,
    when that process has the file open (Linux /proc); None when the lock is free, or where
    that cannot be seen. The written pid alone proves nothing: it stays after the run ends,
    and the pid may have been reused since."""
    try:
        pid = int(Path(path).read_text().strip())
        lock = os.stat(path)
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except (OSError, ValueError):
        return None
    for fd in descriptors:
        with contextlib.suppress(OSError):
            opened = fd.stat()
            if (opened.st_dev, opened.st_ino) == (lock.st_dev, lock.st_ino):
                return pid
    return None
