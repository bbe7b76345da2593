"""Starting, stopping and resuming searches from the dashboard.

A search runs as its own process (`python -m lightnas search ...`, a new session: it survives the
dashboard and never gets its Ctrl-C), writing into the dashboard's root. Before anything starts,
the config (a file from configs/ or an uploaded YAML) and the overrides are validated exactly as
the command line validates them (`lightnas.config.parse_config`). What the process prints goes to
`.dashboard/launches/<name>.log` under the root (and, once its folder exists, to its log.txt).
Stop is Ctrl-C: SIGINT to the pid in status.json; the run stops at a safe point, checkpoint kept.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from lightnas.config import Config, parse_config
from lightnas.dashboard.folders import config_of, parse_json, rows_of, status_of, tail
from lightnas.dashboard.paths import PRIVATE, private_dir
from lightnas.errors import ConfigError
from lightnas.layout import TrainingFolder
from lightnas.outputs.status import FINISHED, RUNNING, process_alive

MAX_CONFIG_BYTES = 256 * 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# keys the dashboard sets itself, or that would make the process do something else
FORBIDDEN = {"output_dir", "name", "resume", "force", "config", "c", "print_config", "help"}


# ---- the config ------------------------------------------------------------------------------
def list_configs(configs_dir: Path | None) -> list[str]:
    """The YAML files in the configs folder (its top level), by name."""
    if configs_dir is None or not configs_dir.is_dir():
        return []
    return sorted(p.name for p in configs_dir.iterdir() if p.suffix in (".yml", ".yaml"))


def check_yaml(text: str) -> dict:
    """An uploaded config: at most MAX_CONFIG_BYTES of YAML (safely loaded) holding a mapping."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"the config is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys such as `epochs: 10`")
    return data


def parse_overrides(text: str) -> list[str]:
    """`key=value` (or `--key value`) lines -> command-line overrides `--key value`; only keys
    of the config, and none that the dashboard sets itself."""
    argv = []
    top = {f.name for f in fields(Config)}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("--").partition("=" if "=" in line else " ")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"override {line!r}: write it as key=value, e.g. epochs=20")
        if key.split(".")[0] not in top or key in FORBIDDEN:
            raise ConfigError(f"override {line!r}: {key} is not a config key you can set here")
        argv += [f"--{key}", value]
    return argv


@dataclass(frozen=True)
class Launch:
    """A validated search: its command-line arguments and the folder name it will write."""

    name: str
    argv: tuple[str, ...]


def free_name(root: Path, base: str) -> str:
    """`base`, or `base_2`, `base_3`, ... : the first that is not taken under the root."""
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}_{n}"
    return name


def validate(root: Path, config_file: Path, overrides: Sequence[str], name: str = "") -> Launch:
    """Check the config and overrides as the CLI does and pick the training folder's name."""
    if name and not NAME.fullmatch(name):
        raise ConfigError(f"name {name!r}: use letters, digits, '_', '-' and '.'")
    argv = ["--config", str(config_file), *overrides, "--output_dir", str(root)]
    cfg, _, _ = parse_config(argv)
    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M")
    chosen = free_name(root, name or cfg.name or f"{cfg.model.name}_{stamp}")
    argv += ["--name", chosen]
    parse_config(argv)
    return Launch(chosen, tuple(argv))


def store_upload(root: Path, text: str, filename: str) -> Path:
    """Keep an uploaded config under .dashboard/uploads (the process reads it when it starts)."""
    check_yaml(text)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(filename or "upload").stem)[:60] or "upload"
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"{stamp}_{stem}_", suffix=".yml", dir=uploads_dir(root))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def uploads_dir(root: Path) -> Path:
    return private_dir(root, "uploads")


def launches_dir(root: Path) -> Path:
    return private_dir(root, "launches")


# ---- processes -------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """The environment of a search process: this one's, importing the same lightnas."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, path) if p)}


def _record_stem(path: str) -> str:
    """Launch records are named after the run's path under the root (`a/b` -> `a__b`)."""
    return path.replace("/", "__")


def spawn(root: Path, path: str, argv: Sequence[str], cwd: Path) -> int:
    """Start `python -m lightnas search ARGV` for the run at `path` (under the root) in a new
    session; its pid."""
    log_path = launches_dir(root) / f"{_record_stem(path)}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lightnas", "search", *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,
        )
    # reap it when it ends (a zombie would still look alive to read_status)
    threading.Thread(target=proc.wait, daemon=True).start()
    record = {"pid": proc.pid, "argv": list(argv), "started": _now(), "host": _host()}
    (launches_dir(root) / f"{_record_stem(path)}.json").write_text(json.dumps(record))
    return proc.pid


def start(root: Path, launch: Launch, cwd: Path) -> int:
    return spawn(root, launch.name, launch.argv, cwd)


def stop(folder: TrainingFolder) -> int:
    """Ctrl-C for a running search: SIGINT to its process (it checkpoints and exits)."""
    status = status_of(folder, len(rows_of(folder)), None)
    if status.get("state") != RUNNING:
        raise ConfigError(f"{folder.name} is not running ({status.get('state')})")
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or host != _host():
        raise ConfigError(f"{folder.name} runs on {host or 'an unknown host'}: stop it there")
    os.kill(pid, signal.SIGINT)
    return pid


def resume_argv(folder: TrainingFolder, epochs: int | None) -> list[str]:
    """`--resume folder [--epochs N]`, checked: not while it runs; a finished run needs more
    epochs."""
    rows, config = rows_of(folder), config_of(folder)
    status = status_of(folder, len(rows), config.get("epochs"))
    if status["state"] == RUNNING:
        raise ConfigError(f"{folder.name} is running")
    done = max(len(rows), int(status.get("epoch") or 0))
    if status["state"] == FINISHED and (epochs is None or epochs <= done):
        raise ConfigError(f"{folder.name} finished {done} epochs: raise epochs to train longer")
    argv = ["--resume", str(folder.root)]
    argv += [] if epochs is None else ["--epochs", str(epochs)]
    parse_config(["--config", str(folder.config), *argv[2:]])
    return argv


def resume(root: Path, folder: TrainingFolder, path: str, epochs: int | None, cwd: Path) -> int:
    return spawn(root, path, resume_argv(folder, epochs), cwd)


def launch_record(root: Path, path: str) -> dict | None:
    """What the dashboard last started for the run at `path` (pid, argv, started, alive) and the
    last lines it printed, or None."""
    stem = root / PRIVATE / "launches" / _record_stem(path)
    record = parse_json(stem.with_name(stem.name + ".json"))
    if not record:
        return None
    log = stem.with_name(stem.name + ".log")
    return {**record, "alive": process_alive(record.get("pid")), "log": tail(log, 40)}


def starting(record: dict | None, status_pid: object) -> bool:
    """Whether a process the dashboard started for a run is alive but has not yet written the
    run's status.json (importing, building the data and the supernet)."""
    return bool(record and record["alive"] and record.get("pid") != status_pid)
    return True


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _host() -> str:
    return socket.gethostname()
