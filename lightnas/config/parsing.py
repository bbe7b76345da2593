"""Parsing a run's config: YAML files and command-line overrides through jsonargparse, one-line
errors, and the user's extension modules (`imports:`) imported before the values are checked."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, set_parsing_settings

from lightnas.config.schema import REGISTRY_KEYS, Config
from lightnas.config.validation import validate
from lightnas.errors import ConfigError

# --help shows each field's docstring
set_parsing_settings(docstring_parse_attribute_docstrings=True)


class ArgParser(argparse.ArgumentParser):
    """argparse whose errors are one-line ConfigErrors (exit 2 in the caller)."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message}")


def build_parser(prog: str = "train_enas.py") -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        exit_on_error=False,
        description="ENAS search for binary neural networks. Any key can be overridden, "
        "e.g. --search.warmup_epochs 2 --data.batch_size 64.",
    )
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file")
    parser.add_argument(
        "--resume", type=str | None, default=None, help="trainings/<name> to resume"
    )
    parser.add_argument(
        "--force", type=bool, default=False, help="resume despite a config mismatch"
    )
    parser.add_class_arguments(Config, fail_untyped=False)
    for action in parser._actions:
        registry = REGISTRY_KEYS.get(action.dest)
        if registry is not None:
            action.help = f"{action.help or ''} Valid: {registry.valid()}.".strip()
    return parser


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    text = re.sub(r"typing\.Literal\[(.*?)\]", r"one of [\1]", text)
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    text = text.replace("Expected a ", "expected ").replace("Got value:", "got")
    text = text.replace('Parser key "', 'config key "')
    # jsonargparse refuses nan and inf as floats with a message that hides why
    infinite = re.search(r'config key "([\w.]+)".*got (-?(?:nan|inf))\b', text, re.IGNORECASE)
    if infinite:
        return f"{infinite[1]}={infinite[2]} must be a finite number"
    return text


def config_files(argv: list[str]) -> Iterator[str]:
    """The values of every -c / --config in `argv`."""
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            yield argv[i + 1]
        elif arg.startswith("--config="):
            yield arg.split("=", 1)[1]


def check_config_file(path: str) -> None:
    """A config file must exist and hold a YAML mapping of keys."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a YAML file")
    if not file.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_one_line(err)}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty; it must hold keys such as `epochs: 10`")
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} holds a {type(data).__name__}, not a mapping of keys such as "
            "`epochs: 10`"
        )


def parse_config(argv: list[str] | None = None) -> tuple[Config, Namespace, ArgumentParser]:
    """Parse a YAML file and overrides into a Config; raises ConfigError (one line) when bad."""
    for path in config_files(list(argv or [])):
        check_config_file(path)
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        init = getattr(parser, "instantiate", None) or parser.instantiate_classes
        init = init(ns)
    except Exception as err:  # jsonargparse raises ArgumentError/TypeError with multi-line text
        raise ConfigError(_one_line(err)) from None
    cfg = Config(**{k: getattr(init, k) for k in Config.__dataclass_fields__})
    import_extensions(cfg.imports)
    validate(cfg)
    return cfg, ns, parser


def import_extensions(modules: list[str]) -> None:
    """Import the user's extension modules (a dotted name, or a path to a .py file)."""
    for name in modules:
        try:
            if name.endswith(".py"):
                path = Path(name).resolve()
                if not path.is_file():
                    raise ConfigError(f"imports: {name} does not exist")
                load_module_file(path)
            else:
                importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise ConfigError(f"imports: no module named {err.name!r} (importing {name})") from None


def load_module_file(path: Path) -> None:
    """Run a .py file once as the module named after it (imported again: nothing happens)."""
    name = f"lightnas_ext_{path.stem}_{abs(hash(str(path)))}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
