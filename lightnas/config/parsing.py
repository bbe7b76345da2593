"""Parsing a run's config: YAML files and command-line overrides through jsonargparse, one-line
errors, and the user's extension modules (`imports:`) imported before the values are checked."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, set_parsing_settings

from lightnas.config.schema import REGISTRY_KEYS, Config
from lightnas.config.validation import validate
from lightnas.errors import ConfigError
from lightnas.runtime.fileio import read_yaml_mapping

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
    literal = _not_one_of(text)
    if literal is not None:
        return literal
    text = re.sub(r"typing\.Literal\[(.*?)\]", r"one of [\1]", text)
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    text = text.replace("Expected a ", "expected ").replace("Got value:", "got")
    text = text.replace('Parser key "', 'config key "')
    section = re.search(r'config key "([\w.]+)": Unable to load config \'(.*?)\'', text)
    if section and _section_fields(section[1]) is not None:  # `--model 5`
        return not_a_mapping(section[1], section[2])
    # jsonargparse refuses nan and inf as floats with a message that hides why
    infinite = re.search(r'config key "([\w.]+)".*got (-?(?:nan|inf))\b', text, re.IGNORECASE)
    if infinite:
        return f"{infinite[1]}={infinite[2]} must be a finite number"
    return text


def _field_type(key: str) -> Any:
    """The annotation of the config key `key` (e.g. search.reward_bn); None if there is none."""
    hint: Any = Config
    for part in key.split("."):
        if not is_dataclass(hint):
            return None
        hint = get_type_hints(hint).get(part)
    return hint


def _literal_values(hint: Any) -> list[str] | None:
    """The values a `Literal` key takes (null first when it may be null); None for other types."""
    args = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    literals = [a for a in args if get_origin(a) is Literal]
    if len(literals) != 1:
        return None
    return ["null"] * (type(None) in args) + [str(v) for v in get_args(literals[0])]


def _not_one_of(text: str) -> str | None:
    """jsonargparse's refusal of a value outside a `Literal` key's set, as the project's one
    line naming the valid values; None for any other error."""
    key = re.search(r'Parser key "([\w.]+)"', text)
    value = re.search(r"(?:Got|Given) value: (.*)$", text)
    valid = _literal_values(_field_type(key[1])) if key and value else None
    if valid is None:
        return None
    return f"{key[1]}={value[1]!r} is not valid; valid: {', '.join(valid)}"


def config_files(argv: list[str]) -> Iterator[str]:
    """The values of every -c / --config in `argv`."""
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            yield argv[i + 1]
        elif arg.startswith("--config="):
            yield arg.split("=", 1)[1]


def _section_fields(key: str) -> list[str] | None:
    """The keys of the config section `key` (e.g. model, search.latency_table); None when
    `key` is not a section."""
    node: Any = Config()
    for part in key.split("."):
        node = getattr(node, part, None)
    return [f.name for f in fields(node)] if is_dataclass(node) else None


def not_a_mapping(key: str, value: object) -> str:
    """The message for a section given as something else than a mapping (`model: 5`)."""
    names = ", ".join(_section_fields(key) or ())
    message = f"{key}={value!r} must be a mapping of its keys ({names})"
    inside = [(k, r) for k, r in REGISTRY_KEYS.items() if k.rpartition(".")[0] == key]
    return "; ".join([message, *(f"valid {k}: {r.valid()}" for k, r in inside)])


def check_sections(data: dict, prefix: str = "") -> None:
    """Each section of a config file (model:, search:, search.latency_table:, ...) holds a
    mapping of its keys: anything else is a ConfigError naming it (and its valid names)."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if _section_fields(name) is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(not_a_mapping(name, value))
        check_sections(value, f"{name}.")


def read_config_file(path: str | Path) -> dict:
    """The keys of a config file, which must exist and hold a YAML mapping of keys (sections:
    mappings too); anything else is a one-line ConfigError naming the file."""
    data = read_yaml_mapping(path, "config file", "epochs: 10")
    try:
        check_sections(data)
    except ConfigError as err:
        raise ConfigError(f"config file {path}: {err}") from None
    return data


def parse_config(argv: list[str] | None = None) -> tuple[Config, Namespace, ArgumentParser]:
    """Parse a YAML file and overrides into a Config; raises ConfigError (one line) when bad."""
    for path in config_files(list(argv or [])):
        read_config_file(path)
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
