"""What each op (a decision point's choice, by name) is, for drawing and summarising
architectures: its category and, for a bit-width choice, its width.

An op registers its category where it is defined (`register_category("conv1x1", "replaced")`
beside the op), so lightnas.outputs.graphs colours, tabulates and summarises a new op without
knowing its name. An op that registered none is "other".
"""

from __future__ import annotations

from dataclasses import dataclass

from lightnas.registry import Registry

# the categories an op may register, and "other" (what an unregistered op is)
CATEGORIES = ("binary", "replaced", "higher_precision", "skipped", "other")


@dataclass(frozen=True)
class OpCategory:
    category: str
    bits: int | None = None  # the width of a bit-width choice ("4bit"): its blocks' convs' bits


OTHER = OpCategory("other")
OP_CATEGORIES: Registry[OpCategory] = Registry("op category", "op")


def register_category(op: str, category: str, bits: int | None = None) -> None:
    """Declare the category of the op named `op` (binary, replaced, higher_precision, skipped);
    `bits` for an op that is a bit width of its block."""
    if category not in CATEGORIES[:-1]:
        raise ValueError(f"category {category!r} is not valid; valid: {', '.join(CATEGORIES[:-1])}")
    OP_CATEGORIES.add(op, OpCategory(category, bits))


def op_category(op: str) -> OpCategory:
    """The registered category of the op named `op`; OTHER where it registered none."""
    return OP_CATEGORIES.get(op, OTHER)
