"""The op registry of space files: `OPS`, each op's arguments (checked, with defaults) and its
build function `build(ctx) -> nn.Module`, and the argument checks ops share. The ops themselves
are registered in `layer_ops` (layers and merges) and `block_ops` (the families' blocks), which
the package imports.

A new op is one decorated function in any module imported first (`imports:` in the config):

    @register_op("my_block", args={"channels": Arg(whole())})
    def my_block(ctx: Ctx) -> nn.Module:
        '''What it computes (its description in `lightnas space --ops`).'''
        return MyBlock(ctx.channels, ctx.args["channels"])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from lightnas.binary import VALID_BITS
from lightnas.registry import Registry
from lightnas.search.space import DecisionPoint

REQUIRED = object()


class ArgError(ValueError):
    """An argument that does not fit its op (the analysis adds the node and the line)."""


# ---- argument checks: value -> value, or ValueError naming what is valid --------------------
Check = Callable[[object], object]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(least: int = 1) -> Check:
    def check(value: object) -> int:
        if not _is_int(value) or value < least:
            raise ValueError(f"a whole number >= {least}")
        return value

    return check


def number(low: float, high: float | None = None) -> Check:
    def check(value: object) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            raise ValueError(f"a number in [{low}, {high}]" if high else f"a number >= {low}")
        return float(value)

    return check


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def one_of(valid: Sequence[str] | Callable[[], Sequence[str]]) -> Check:
    def check(value: object) -> str:
        names = list(valid() if callable(valid) else valid)
        if value not in names:
            raise ValueError(f"one of {', '.join(map(str, names))}")
        return value

    return check


def optional(inner: Check) -> Check:
    def check(value: object) -> object:
        return None if value is None else inner(value)

    return check


def bit_width(value: object) -> int:
    if not _is_int(value) or value not in VALID_BITS:
        raise ValueError(f"a bit width: {', '.join(map(str, VALID_BITS))}")
    return value


def bits_or_list(value: object) -> int | list[int]:
    """One bit width, or a list of them: a decision point whose choices share one weight."""
    if isinstance(value, list):
        return names_list(bit_width)(value)
    return bit_width(value)


def names_list(item: Check) -> Check:
    def check(value: object) -> list:
        if not isinstance(value, list) or not value:
            raise ValueError("a non-empty list")
        items = [item(v) for v in value]
        if len(set(items)) != len(items):
            raise ValueError(f"a list without repeats, got {value}")
        return items

    return check


def skip_mode(value: object) -> bool | str:
    if value not in (True, False, "auto"):
        raise ValueError("auto (where shapes allow), true or false")
    return value


# ---- ops ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arg:
    check: Check
    default: object = REQUIRED
    doc: str = ""


@dataclass
class Ctx:
    """What a build function is given about its node."""

    name: str  # the node's full name (a decision point's name)
    args: dict  # checked arguments, defaults filled in
    in_shapes: list[tuple[int, ...]]  # (C, H, W) or (C,) of each input, batch excluded
    num_classes: int
    stem: str  # model.stem: the stem of a `stem` node that names no type
    kind: str | None = None  # the decision-point kind the file gives

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.in_shapes[0]

    @property
    def channels(self) -> int:
        return self.in_shape[0]

    def point(self, choices: Sequence[str], default_kind: str) -> DecisionPoint:
        return DecisionPoint(self.name, tuple(choices), self.kind or default_kind)


@dataclass(frozen=True)
class Op:
    name: str
    build: Callable[[Ctx], nn.Module]
    args: Mapping[str, Arg] = field(default_factory=dict)
    merge: bool = False  # reads two or more inputs; else exactly one
    decision: bool = False  # always a decision point (a family's block)
    doc: str = ""

    def check_args(self, given: Mapping) -> dict:
        """The checked arguments with defaults filled in; ArgError names the bad one."""
        for key in given:
            if key not in self.args:
                valid = ", ".join(self.args) or "none"
                raise ArgError(f"op {self.name} takes no argument {key!r}; valid: {valid}")
        out = {}
        for key, arg in self.args.items():
            if key not in given:
                if arg.default is REQUIRED:
                    raise ArgError(f"op {self.name} needs `{key}:` ({arg.doc})")
                out[key] = arg.default
                continue
            try:
                out[key] = arg.check(given[key])
            except ValueError as err:
                message = f"{self.name}.{key}: {given[key]!r} is not valid; valid: {err}"
                raise ArgError(message) from None
        return out

    def is_decision(self, args: Mapping) -> bool:
        return self.decision or isinstance(args.get("bits"), list)


OPS: Registry[Op] = Registry("op", "op")


def register_op(
    name: str,
    args: Mapping[str, Arg] | None = None,
    merge: bool = False,
    decision: bool = False,
) -> Callable[[Callable[[Ctx], nn.Module]], Callable[[Ctx], nn.Module]]:
    """Decorator registering `build(ctx) -> nn.Module` as the op `name`; its docstring is the
    op's description (`lightnas space --ops`, docs/spaces.md)."""

    def add(build: Callable[[Ctx], nn.Module]) -> Callable[[Ctx], nn.Module]:
        doc = " ".join((build.__doc__ or "").split())
        OPS.add(name, Op(name, build, dict(args or {}), merge, decision, doc))
        return build

    return add


def default_kind(name: str) -> str:
    """The kind of a decision point the file gives none: its last name part without digits
    (`stage2.block1.conv1` -> conv)."""
    return re.sub(r"\d+$", "", name.rsplit(".", 1)[-1]) or name
