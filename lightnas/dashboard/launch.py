"""Starting, stopping and resuming searches from the dashboard.

A search runs as its own process (`python -m lightnas search ...`, a new session: it survives the
dashboard and never gets its Ctrl-C), writing into the dashboard's root. Before anything starts,
the config (a file from configs/ or an uploaded YAML) and the overrides are checked (what a
launch may set: lightnas.dashboard.checking) and validated exactly as the command line validates
them (`lightnas.config.parse_config`), in a process of their own. What the process prints goes to
`.dashboard/launches/<name>.log` under the root (and, once its folder exists, to its log.txt).
Stop is Ctrl-C: SIGINT to the pid in status.json, once that pid is seen holding the run folder's
lock (the run writing that folder, not whatever process a status.json names); the run stops at
a safe point, checkpoint kept.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightnas.dashboard.checking import output_folder
from lightnas.dashboard.folders import config_of, parse_json, rows_of, status_of, tail
from lightnas.dashboard.paths import PRIVATE, private_dir, relative_to_root
from lightnas.errors import ConfigError
from lightnas.layout import TrainingFolder
from lightnas.outputs.status import FINISHED, RUNNING, process_alive
from lightnas.runtime.fileio import lock_holder

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
CHECK_TIMEOUT_S = 120  # parsing a config (importing torch, a config's imports) in a process


# ---- the config ------------------------------------------------------------------------------
def list_configs(configs_dir: Path | None) -> list[str]:
    """The YAML files in the configs folder (its top level), by name."""
    if configs_dir is None or not configs_dir.is_dir():
        return []
    return sorted(p.name for p in configs_dir.iterdir() if p.suffix in (".yml", ".yaml"))


@dataclass(frozen=True)
class Launch:
    """A validated search: the training folder it will write (its path under the root) and its
    command-line arguments."""

    path: str
    argv: tuple[str, ...]


def free_name(root: Path, base: str) -> str:
    """`base`, or `base_2`, `base_3`, ... : the first that is not taken under the root."""
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}_{n}"
    return name


def validate(
    root: Path,
    cwd: Path,
    config_file: Path,
    overrides: Mapping[str, str],
    name: str = "",
    output_dir: object = None,
) -> Launch:
    """Check the config file and the (checked) overrides as the CLI does, in a process of its
    own, and pick the training folder: `name` (else the config's, else model_date) in the root or
    in the folder inside it that `output_dir` (the overrides', else the upload's) names."""
    if name and not NAME.fullmatch(name):
        raise ConfigError(f"name {name!r}: use letters, digits, '_', '-' and '.'")
    folder = output_folder(root, cwd, overrides.get("output_dir", output_dir))
    argv = ["--config", str(config_file)]
    # --key=value: a value that looks like an option (--resume) stays a value
    argv += [f"--{key}={value}" for key, value in overrides.items()]
    argv += ["--output_dir", str(folder)]
    cfg = checked(argv, cwd)
    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M")
    wanted = name or cfg["name"] or f"{cfg['model']}_{stamp}"
    if not NAME.fullmatch(wanted):
        raise ConfigError(f"name {wanted!r} (the config's): use letters, digits, '_', '-' and '.'")
    chosen = free_name(folder, wanted)
    return Launch(relative_to_root(root, folder / chosen), (*argv, "--name", chosen))


def store_upload(root: Path, text: str, filename: str) -> Path:
    """Keep an uploaded config (checked) under .dashboard/uploads: the process reads it."""
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


def checked(argv: Sequence[str], cwd: Path) -> dict:
    """`argv` parsed as `lightnas search` parses it, in a process of its own (the modules a
    config imports run there, never here): the run's `name` and `model`; ConfigError if bad."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lightnas.dashboard.checking"],
            input=json.dumps(list(argv)),
            capture_output=True,
            text=True,
            cwd=cwd,
            env=child_env(),
            timeout=CHECK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"checking the config took more than {CHECK_TIMEOUT_S} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # a bug, not bad input: its traceback
        raise RuntimeError(f"checking the config failed (exit {proc.returncode}):\n{proc.stderr}")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise ConfigError(answer["error"])
    return answer


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
    return spawn(root, launch.path, launch.argv, cwd)


def stop(folder: TrainingFolder) -> int:
    """Ctrl-C for a running search: SIGINT to its process (it checkpoints and exits), once that
    process is seen holding the folder's lock."""
    status = status_of(folder, len(rows_of(folder)), None)
    if status.get("state") != RUNNING:
        raise ConfigError(f"{folder.name} is not running ({status.get('state')})")
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or host != _host():
        raise ConfigError(f"{folder.name} runs on {host or 'an unknown host'}: stop it there")
    if lock_holder(folder.lock) != pid:
        raise ConfigError(
            f"{folder.name}: process {pid} (its status.json) is not seen holding the folder's "
            "lock, so it may not be the run writing it: nothing stopped"
        )
    try:
        os.kill(pid, signal.SIGINT)
    except OSError as err:
        raise ConfigError(f"{folder.name}: cannot stop process {pid}: {err.strerror}") from None
    return pid


def resume_argv(folder: TrainingFolder, epochs: int | None, cwd: Path) -> list[str]:
    """`--resume folder [--epochs N]`, checked (its config parsed in a process of its own): not
    while it runs; a finished run needs more epochs."""
    rows, config = rows_of(folder), config_of(folder)
    status = status_of(folder, len(rows), config.get("epochs"))
    if status["state"] == RUNNING:
        raise ConfigError(f"{folder.name} is running")
    done = max(len(rows), int(status.get("epoch") or 0))
    if status["state"] == FINISHED and (epochs is None or epochs <= done):
        raise ConfigError(f"{folder.name} finished {done} epochs: raise epochs to train longer")
    argv = ["--resume", str(folder.root)]
    argv += [] if epochs is None else ["--epochs", str(epochs)]
    checked(["--config", str(folder.config), *argv[2:]], cwd)
    return argv


def resume(root: Path, folder: TrainingFolder, path: str, epochs: int | None, cwd: Path) -> int:
    return spawn(root, path, resume_argv(folder, epochs, cwd), cwd)


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


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _host() -> str:
    return socket.gethostname()
