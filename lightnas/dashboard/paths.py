"""Paths a request names, resolved inside the dashboard's root or refused.

A request names a run or a file by its path relative to the root (`tiny`, `sweeps/s/trials/3`,
`tiny/config.yml`). Anything that leaves the root is refused: absolute paths, `..`, hidden parts
(the dashboard's own `.dashboard/` folder included) and symbolic links that point outside it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lightnas.errors import LightNASError

PRIVATE = ".dashboard"  # the dashboard's own files under the root: launch logs, uploads


class OutsideRoot(LightNASError):
    """A requested path is not inside the dashboard's root (or is hidden)."""


def resolve_inside(root: Path, relative: str) -> Path:
    """`root / relative`, resolved; OutsideRoot when it escapes the root or names a hidden part."""
    parts = PurePosixPath(relative).parts
    bad = (
        not parts
        or "\\" in relative
        or "\x00" in relative
        or PurePosixPath(relative).is_absolute()
        or any(p in ("..", ".") or p.startswith(".") for p in parts)
    )
    if bad:
        raise OutsideRoot(f"{relative!r} is not a path inside the dashboard's root")
    base = root.resolve()
    full = (base / relative).resolve()
    if not full.is_relative_to(base):
        raise OutsideRoot(f"{relative!r} leads outside the dashboard's root")
    return full


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, its symbolic links followed, is the root or below it: the only files the
    dashboard reads, lists or serves."""
    return path.resolve().is_relative_to(root.resolve())


def relative_to_root(root: Path, path: Path) -> str:
    """The posix path of `path` below `root` (both resolved): how URLs name it."""
    return path.resolve().relative_to(root.resolve()).as_posix()


def private_dir(root: Path, *parts: str) -> Path:
    """A folder of the dashboard's own files under the root (created)."""
    folder = root.joinpath(PRIVATE, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
