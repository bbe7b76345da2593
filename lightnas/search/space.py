"""Decision points, search spaces and architectures (one choice per decision point)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lightnas.errors import ArchitectureError


@dataclass(frozen=True)
class DecisionPoint:
    """A named place in a supernet with its list of choices (ops); `kind` groups similar points."""

    name: str
    choices: tuple[str, ...]
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"decision point {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"decision point {self.name!r} has duplicate choices {self.choices}")


class SearchSpace:
    """The ordered decision points of a supernet."""

    def __init__(self, name: str, points: Sequence[DecisionPoint]) -> None:
        self.name = name
        self.points = tuple(points)
        self._by_name = {p.name: p for p in self.points}
        if len(self._by_name) != len(self.points):
            raise ValueError(f"search space {name!r} has duplicate decision point names")

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[DecisionPoint]:
        return iter(self.points)

    def __getitem__(self, name: str) -> DecisionPoint:
        return self._by_name[name]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SearchSpace)
            and self.name == other.name
            and self.points == other.points
        )

    def __hash__(self) -> int:
        return hash((self.name, self.points))

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, {len(self)} decision points, size={self.size:.3g})"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.points]

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        return math.prod(len(p.choices) for p in self.points)

    def default(self) -> Architecture:
        """The first choice everywhere: the base network."""
        return Architecture(self, {p.name: p.choices[0] for p in self.points})

    def sample(self, generator: torch.Generator | None = None) -> Architecture:
        """A uniformly random architecture drawn with `generator`."""
        idx = [int(torch.randint(len(p.choices), (1,), generator=generator)) for p in self.points]
        return self.from_indices(idx)

    def from_indices(self, indices: Sequence[int]) -> Architecture:
        if len(indices) != len(self.points):
            raise ValueError(f"expected {len(self.points)} choice indices, got {len(indices)}")
        return Architecture(
            self, {p.name: p.choices[int(i)] for p, i in zip(self.points, indices, strict=True)}
        )

    def describe(self) -> dict:
        return {"name": self.name, "points": {p.name: list(p.choices) for p in self.points}}


class Architecture(Mapping[str, str]):
    """One choice per decision point of `space`; validated on construction."""

    def __init__(self, space: SearchSpace, choices: Mapping[str, str]) -> None:
        unknown = [n for n in choices if n not in space._by_name]
        if unknown:
            raise ArchitectureError(
                f"unknown decision point {unknown[0]!r} for space {space.name!r}; "
                f"valid: {', '.join(space.names)}"
            )
        for point in space:
            if point.name not in choices:
                raise ArchitectureError(
                    f"architecture has no choice for decision point {point.name!r}"
                )
            if choices[point.name] not in point.choices:
                raise ArchitectureError(
                    f"unknown choice {choices[point.name]!r} at {point.name!r}; "
                    f"valid: {', '.join(point.choices)}"
                )
        self.space = space
        self._choices = {p.name: str(choices[p.name]) for p in space}

    def __getitem__(self, name: str) -> str:
        return self._choices[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return self.space == other.space and self._choices == other._choices
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.space.name, tuple(self._choices.items())))

    def __repr__(self) -> str:
        return f"Architecture({self.space.name!r}, {self._choices})"

    def indices(self) -> list[int]:
        return [p.choices.index(self._choices[p.name]) for p in self.space]

    def to_dict(self) -> dict:
        return {"space": self.space.name, "choices": dict(self._choices)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, space: SearchSpace, data: Mapping) -> Architecture:
        """From `to_dict()` output, or from a file format that nests it (see `architecture_of`)."""
        data = architecture_of(data)
        if data.get("space", space.name) != space.name:
            raise ArchitectureError(
                f"architecture is for space {data['space']!r}, not {space.name!r}"
            )
        return cls(space, data["choices"])

    @classmethod
    def from_json(cls, space: SearchSpace, text: str) -> Architecture:
        return cls.from_dict(space, json.loads(text))


# ---- the architecture JSON format -------------------------------------------------------------
# An architecture is `{"space": <name>, "choices": {<decision point>: <choice>, ...}}`. Files that
# describe more (best_architecture.json, exported trainables, a retrain's architecture.json) nest
# it under "architecture" beside their other keys; these two functions are the one reader.


def architecture_of(data: object) -> Mapping:
    """The `{"space", "choices"}` object of a parsed architecture JSON, nested or not."""
    if isinstance(data, Mapping) and isinstance(data.get("architecture"), Mapping):
        data = data["architecture"]
    if not isinstance(data, Mapping) or not isinstance(data.get("choices"), Mapping):
        raise ArchitectureError("architecture JSON needs a 'choices' object")
    return data


def read_architecture_json(path: str | Path) -> Mapping:
    """The architecture object of a JSON file; an `ArchitectureError` names the file if bad."""
    path = Path(path)
    if not path.is_file():
        raise ArchitectureError(f"architecture file {path} does not exist")
    try:
        return architecture_of(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ArchitectureError(f"{path} is not JSON: {err}") from None
    except ArchitectureError as err:
        raise ArchitectureError(f"{path}: {err}") from None


def load_architecture_file(path: str | Path, space: SearchSpace) -> Architecture:
    """The architecture in the JSON file `path`, validated against `space`."""
    data = read_architecture_json(path)
    try:
        return Architecture.from_dict(space, data)
    except ArchitectureError as err:
        raise ArchitectureError(f"{path}: {err}") from None
