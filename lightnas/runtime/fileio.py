"""Atomic file writes (a temporary file next to the target, then `os.replace`), the folders a
user names, reading the text and YAML files a user names, and file locks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import yaml

from lightnas.errors import ConfigError


def write_atomic(path: Path, content: str | bytes | Callable[[Path], object]) -> None:
    """Write `content` (text, bytes, or a function that writes the file it is given) to a
    temporary file next to `path`, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer creates the file (not mkstemp, whose 0600 mode would survive the rename)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        if callable(content):
            content(tmp)
        else:
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> dict:
    """A JSON object file; {} when it is missing, unreadable or not an object (a reader of
    another process's files never fails on them: they are written atomically, or not yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


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


LOCK_WAIT_S = 0.5  # how long a lock is retried: `lock_held` takes it for a moment to test it


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
            deadline = time.monotonic() + LOCK_WAIT_S
            while not _try_flock(file.fileno(), fcntl.LOCK_EX):
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                file.seek(0)
                pid = file.read().strip() or "?"
                raise ConfigError(
                    f"{what} is in use by another run (pid {pid}): wait for it to end, or stop "
                    f"it (Ctrl-C in its terminal, or kill -INT {pid})"
                )
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


def read_yaml_mapping(path: str | Path, what: str, example: str) -> dict:
    """The mapping of keys in the YAML file `path`. A folder, a missing, empty or malformed
    file, or one holding anything but a mapping is a one-line ConfigError naming `what` (e.g.
    "config file") and `path`, with `example`, a key it should hold (e.g. `epochs: 10`)."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a YAML file")
    if not file.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(read_text(file, what))
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())
        raise ConfigError(f"{what} {path} is not valid YAML: {reason}") from None
    if data is None:
        raise ConfigError(f"{what} {path} is empty; it must hold keys such as `{example}`")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path} holds a {type(data).__name__}, not a mapping of keys such as "
            f"`{example}`"
        )
    return data


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


def _try_flock(fd: int, kind: int) -> bool:
    """Take the lock `kind` on `fd` if no other holder is in the way."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_held(path: Path) -> bool | None:
    """Whether a process holds the `exclusive_lock` of `path` (this one included, through
    another open file), tested without writing: a shared lock taken and dropped at once. None
    when there is no such file or its file system has no locks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not _try_flock(fd, fcntl.LOCK_SH):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: no locks here
        return None
    finally:
        os.close(fd)
