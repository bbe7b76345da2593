"""Space files as YAML text: mappings that remember their line (`Located`), a key given twice
refused, the size bounded (aliases expanded), and `SpaceError`, the one-line error naming the file
and the line that every check of a space file raises."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from lightnas.errors import ConfigError

MAX_VALUES = 1_000_000  # YAML values with aliases expanded (aliases of aliases grow fast)


class SpaceError(ConfigError):
    """A space file that cannot be built: one line naming the file, the line and what is wrong."""

    def __init__(self, detail: str, line: int | None = None, source: str | None = None) -> None:
        self.detail, self.line, self.source = detail, line, source
        where = ", ".join(p for p in (source, None if line is None else f"line {line}") if p)
        super().__init__(f"{where}: {detail}" if where else detail)

    def with_source(self, source: str) -> SpaceError:
        return SpaceError(self.detail, self.line, source)


class Located(dict):
    """A YAML mapping that remembers the line it starts on (1-based; None when not from YAML)."""

    line: int | None = None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, whose mappings are `Located` and refuse a key given twice."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode):
    data = Located()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in data:
            raise SpaceError(f"key {key!r} appears twice", key_node.start_mark.line + 1)
        data[key] = loader.construct_object(value_node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def parse_yaml(text: str) -> object:
    """The YAML document `text` (mappings are `Located`); a SpaceError names the bad line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = " ".join(str(err.problem or err.context or "bad YAML").split())
        raise SpaceError(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise SpaceError(f"not valid YAML: {' '.join(str(err).split())}") from None
    _check_size(data)
    return data


def _check_size(data: object) -> None:
    """At most MAX_VALUES values, aliases expanded: the walks below stay bounded."""
    budget, stack = MAX_VALUES, [data]
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpaceError(f"the file expands to more than {MAX_VALUES} values (YAML aliases)")
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def line_of(data: object) -> int | None:
    return getattr(data, "line", None)


def parse_or_raise(text: str, source: str) -> object:
    try:
        return parse_yaml(text)
    except SpaceError as err:
        raise err.with_source(source) from None


def plain(value: object) -> object:
    """`Located` mappings as plain dicts (what JSON and the export metadata hold)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
