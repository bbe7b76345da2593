"""Named registries for LightNAS's extension points (models, datasets, search ops, costs, ...).

Each registry is declared where its kind is defined and filled where each thing is defined, as
timm's `@register_model`. A user's model, dataset, op or cost metric is one module of their own,
listed under `imports:` in the config. A built-in one also needs its module imported by its
package (e.g. lightnas/models/__init__.py), and a strategy with options of its own needs its
section in the config schema (lightnas/config/schema.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lightnas.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object; an unknown name is a `ConfigError` naming `key` and the valid names."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind  # what is registered, e.g. "model"
        self.key = key  # the config key that selects one, e.g. "model.name"
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@MODELS.register("meliusnet22")`."""
        return lambda obj: self.add(name, obj)

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(f"{self.key}={name!r} is not known; valid: {self.valid()}")
        return self._items[name]

    def get(self, name: str, default: T) -> T:
        """The object registered as `name`, or `default` where there is none."""
        return self._items.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return sorted(self._items)

    def valid(self) -> str:
        return ", ".join(self.names())
