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
from typing import IO

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


def read_text(path: Path, what: str) -> str:
    """The text of the UTF-8 file `path`; one in another encoding is bad input naming `what`."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}); "
            "valid: UTF-8, so save it as UTF-8"
        ) from None


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created with the holder's pid in it) while the
    block runs, and remove the file when the block ends; the system drops the lock when the
    process ends, however it ends, so a lock left by a killed run holds nothing. A lock held by
    another process is bad input naming `what` and that process's pid."""
    with _locked(path, what) as file:
        try:
            file.seek(0)
            file.truncate()
            file.write(f"{os.getpid()}\n")
            file.flush()
            yield
        finally:
            Path(path).unlink(missing_ok=True)  # still locked: no other run holds this file


@contextlib.contextmanager
def _locked(path: Path, what: str) -> Iterator[IO[str]]:
    """The file `path`, opened and locked. The holder removes the file when done, so a lock
    taken on a file that is no longer at `path` (removed meanwhile) is retried on the new one."""
    while True:
        with open(path, "a+") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                pid = file.read().strip() or "?"
                raise ConfigError(
                    f"{what} is in use by another run (pid {pid}): wait for it to end, or stop "
                    f"it (Ctrl-C in its terminal, or kill -INT {pid})"
                ) from None
            if _same_file(file, path):
                yield file
                return


def _same_file(file: IO[str], path: Path) -> bool:
    """Whether the open `file` is still the file at `path`."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(file.fileno())
    return (mine.st_dev, mine.st_ino) == (at_path.st_dev, at_path.st_ino)
