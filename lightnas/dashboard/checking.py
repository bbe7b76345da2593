"""What a launch from the browser may ask for, checked without running any of it in the
dashboard's process.

The keys of an uploaded config and of the overrides are checked here against the config's
schema (its dataclasses, nothing imported): none of the command line's own keys (`config`,
`resume`, `force`: jsonargparse would load the file a `config:` names, or resume and rewrite any
folder), no `imports` unless the dashboard was started with --allow-imports, a group of keys
(`model`, `data`, ...) only as a mapping (jsonargparse reads a string there as a file to load),
and an `output_dir` only inside the root. Then the whole config is parsed as `lightnas search`
parses it, in a process of its own (`python -m lightnas.dashboard.checking`, run by
`launch.checked`): the modules a config imports run there, never in the dashboard.
"""

from __future__ import annotations

import contextlib
import json
import sys
import typing
from dataclasses import fields, is_dataclass
from functools import cache
from pathlib import Path

import yaml

from lightnas.config import Config, parse_config
from lightnas.dashboard.paths import OutsideRoot, resolve_inside
from lightnas.errors import ConfigError, LightNASError

MAX_CONFIG_BYTES = 256 * 1024
# the whole form: the config, the other fields and the multipart framing around them
MAX_FORM_BYTES = MAX_CONFIG_BYTES + 64 * 1024
# the command line's keys: another config file, another folder to resume (and rewrite), help
COMMAND_KEYS = frozenset({"config", "c", "resume", "force", "print_config", "help"})
IMPORTS_REFUSED = (
    "imports: a launch from the dashboard may not import modules (they would run code on this "
    "machine); start the dashboard with --allow-imports to allow extensions"
)


@cache
def groups(cls: type) -> dict[str, type]:
    """The keys of the dataclass `cls` that are groups of keys themselves (dataclasses)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        found = [t for t in (hints[f.name], *typing.get_args(hints[f.name])) if is_dataclass(t)]
        if found:
            out[f.name] = found[0]
    return out


def check_key(key: str, is_mapping: bool, allow_imports: bool) -> type | None:
    """Refuse (ConfigError) a key a launch may not set; the group's dataclass when `key` names
    a group of keys, else None (a value: jsonargparse checks it)."""
    parts = key.split(".")
    if parts[0] in COMMAND_KEYS:
        raise ConfigError(f"{key}: a launch from the dashboard may not set it")
    if parts[0] == "imports" and not allow_imports:
        raise ConfigError(IMPORTS_REFUSED)
    cls: type | None = Config
    for i, part in enumerate(parts):
        if cls is None:  # below a plain value (model.kwargs.width): jsonargparse's to check
            return None
        names = [f.name for f in fields(cls)]
        if part not in names:
            where = f" in {'.'.join(parts[:i])}" if i else ""
            raise ConfigError(f"{key} is not a config key; valid{where}: {', '.join(names)}")
        cls = groups(cls).get(part)
    if cls is not None and not is_mapping:
        first = fields(cls)[0].name
        raise ConfigError(f"{key} is a group of keys: set them one by one, e.g. {key}.{first}")
    return cls


def check_upload(data: dict, allow_imports: bool, prefix: str = "") -> None:
    """Every key of an uploaded config (a mapping), groups included."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        group = check_key(name, isinstance(value, dict), allow_imports)
        if group is not None:
            check_upload(value, allow_imports, f"{name}.")


def check_yaml(text: str, allow_imports: bool) -> dict:
    """An uploaded config: at most MAX_CONFIG_BYTES of YAML (safely loaded) holding a mapping of
    keys a launch may set."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"the config is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys such as `epochs: 10`")
    check_upload(data, allow_imports)
    return data


def parse_overrides(text: str, allow_imports: bool) -> dict[str, str]:
    """`key=value` (or `--key value`) lines -> {key: value} (a later line wins, as on the
    command line); only keys a launch may set, and not `name` (the form's own field)."""
    overrides = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("--").partition("=" if "=" in line else " ")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"override {line!r}: write it as key=value, e.g. epochs=20")
        if key == "name":
            raise ConfigError(f"override {line!r}: give the name in the Name field")
        check_key(key, False, allow_imports)
        overrides[key] = value
    return overrides


def output_folder(root: Path, cwd: Path, value: object) -> Path:
    """Where a launched search writes: the root, or the folder `output_dir` names inside it
    (relative to the search's working directory, as the command line reads it)."""
    base = root.resolve()
    if value is None:
        return base
    folder = (cwd / str(value)).resolve()
    try:
        if not isinstance(value, str) or not folder.is_relative_to(base):
            raise OutsideRoot(str(value))
        return base if folder == base else resolve_inside(base, folder.relative_to(base).as_posix())
    except OutsideRoot:
        raise ConfigError(
            f"output_dir={value!r} is not a folder inside the dashboard's root {base}: leave it "
            "out (a launch writes into the root) or name a folder inside it"
        ) from None


# ---- the child process -----------------------------------------------------------------------
def main() -> int:
    """Parse the arguments (a JSON list on stdin) as `lightnas search` does; print (JSON) the
    run's name and model, or the one-line error."""
    argv = json.loads(sys.stdin.read())
    with contextlib.redirect_stdout(sys.stderr):  # what an imported module prints is no answer
        try:
            cfg, _, _ = parse_config(argv)
            answer = {"name": cfg.name, "model": cfg.model.name}
        except LightNASError as err:
            answer = {"error": str(err)}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
