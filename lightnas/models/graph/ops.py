"""The ops a space file's nodes name: layers (binary / k-bit and full-precision convs, BatchNorm,
activations, pooling, merges) and the families' blocks (stems, MeliusNet dense / improvement
blocks and transitions, basic and bottleneck blocks, ResNet-E units, the head).

Each op is registered in `OPS` with its arguments (checked, with defaults) and a build function
`build(ctx) -> nn.Module`; the modules are the families' own classes, so a graph built from
them computes what the built-in family computes. A new op is one decorated function in any
module imported first (`imports:` in the config):

    @register_op("my_block", args={"channels": Arg(whole())}, doc="...")
    def my_block(ctx: Ctx) -> nn.Module:
        return MyBlock(ctx.channels, ctx.args["channels"])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from lightnas.binary import VALID_BITS, QConv2d
from lightnas.binary.quantize import WEIGHT_SCALINGS
from lightnas.models.bottleneck import EXPANSION, BottleneckChoice
from lightnas.models.graph.modules import Add, BitsChoice, Concat, ReluAt32, bits_point
from lightnas.models.layers import STEMS, make_head, make_stem
from lightnas.models.meliusnet import (
    DEFAULT_DENSE,
    DEFAULT_IMPROVEMENT,
    DENSE_OPS,
    IMPROVEMENT_OPS,
    DenseChoice,
    ImprovementChoice,
    make_transition,
)
from lightnas.models.resnet import BasicChoice, bits_choice
from lightnas.models.resnet_e import UnitChoice, resnet_e_head
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


# ---- layers -----------------------------------------------------------------------------------
def _conv_args(bits: bool) -> dict[str, Arg]:
    args = {
        "channels": Arg(optional(whole()), None, "output channels (default: the input's)"),
        "kernel": Arg(whole(), doc="kernel size"),
        "stride": Arg(whole(), 1),
        "padding": Arg(optional(whole(0)), None, "default: (kernel - 1) / 2 x dilation, 'same'"),
        "dilation": Arg(whole(), 1),
        "groups": Arg(whole(), 1),
        "bias": Arg(boolean, False),
    }
    if bits:
        args |= {
            "bits": Arg(bits_or_list, 1, "1, 2, 4, 8, 32, or a list: a bit-width decision point"),
            "scaling": Arg(one_of(WEIGHT_SCALINGS), "none", "binary weights times mean |w|"),
            "relu_at_32": Arg(boolean, False, "a ReLU on the input at 32 bits"),
        }
    return args


def _padding(args: Mapping) -> int:
    if args["padding"] is not None:
        return args["padding"]
    return (args["kernel"] - 1) // 2 * args["dilation"]


@register_op("conv", _conv_args(bits=False))
def conv(ctx: Ctx) -> nn.Module:
    """Full-precision convolution."""
    a = ctx.args
    return nn.Conv2d(
        ctx.channels,
        a["channels"] or ctx.channels,
        a["kernel"],
        a["stride"],
        _padding(a),
        a["dilation"],
        a["groups"],
        a["bias"],
    )


@register_op("qconv", _conv_args(bits=True))
def qconv(ctx: Ctx) -> nn.Module:
    """Binary / k-bit convolution (lightnas.binary.QConv2d: input and weights quantized, -1
    padding); `bits: [1, 2, 4, 32]` makes it a decision point whose widths share one weight."""
    a = ctx.args
    bits = a["bits"]
    layer = QConv2d(
        ctx.channels,
        a["channels"] or ctx.channels,
        a["kernel"],
        a["stride"],
        _padding(a),
        a["dilation"],
        a["groups"],
        a["bias"],
        scaling=a["scaling"],
    )
    if isinstance(bits, list):
        return BitsChoice(
            bits_point(ctx.name, bits, ctx.kind or default_kind(ctx.name)), layer, a["relu_at_32"]
        )
    layer.set_bits(bits)
    return ReluAt32(layer) if bits == 32 and a["relu_at_32"] else layer


@register_op(
    "bn",
    {
        "eps": Arg(number(0.0), 1e-5),
        "momentum": Arg(number(0.0, 1.0), 0.1),
        "scale": Arg(boolean, True, "false: the weight is fixed at 1 (MXNet's scale=False)"),
    },
)
def batchnorm(ctx: Ctx) -> nn.Module:
    """BatchNorm over the channels."""
    bn = nn.BatchNorm2d(ctx.channels, eps=ctx.args["eps"], momentum=ctx.args["momentum"])
    if not ctx.args["scale"]:
        bn.weight.requires_grad_(False)
    return bn


@register_op("relu")
def relu(ctx: Ctx) -> nn.Module:
    """ReLU."""
    return nn.ReLU()


@register_op("prelu")
def prelu(ctx: Ctx) -> nn.Module:
    """PReLU with one slope per channel."""
    return nn.PReLU(ctx.channels)


@register_op("hardtanh", {"min": Arg(number(-1e9), -1.0), "max": Arg(number(-1e9), 1.0)})
def hardtanh(ctx: Ctx) -> nn.Module:
    """Hardtanh (clipping to [min, max])."""
    return nn.Hardtanh(ctx.args["min"], ctx.args["max"])


@register_op("identity")
def identity(ctx: Ctx) -> nn.Module:
    """Its input unchanged."""
    return nn.Identity()


def _pool_args() -> dict[str, Arg]:
    return {
        "kernel": Arg(whole(), doc="window size"),
        "stride": Arg(optional(whole()), None, "default: the kernel size"),
        "padding": Arg(whole(0), 0),
        "ceil_mode": Arg(boolean, False),
    }


@register_op("maxpool", _pool_args())
def maxpool(ctx: Ctx) -> nn.Module:
    """Max pooling."""
    a = ctx.args
    return nn.MaxPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])


@register_op("avgpool", _pool_args())
def avgpool(ctx: Ctx) -> nn.Module:
    """Average pooling."""
    a = ctx.args
    return nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])


@register_op("global_avgpool")
def global_avgpool(ctx: Ctx) -> nn.Module:
    """Average over height and width: (C, H, W) -> (C,)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


@register_op("flatten")
def flatten(ctx: Ctx) -> nn.Module:
    """(C, H, W) -> (C * H * W,)."""
    return nn.Flatten()


@register_op("linear", {"channels": Arg(optional(whole()), None, "default: the classes")})
def linear(ctx: Ctx) -> nn.Module:
    """Full-precision linear layer on a flat input (the classifier by default)."""
    if len(ctx.in_shape) != 1:
        raise ArgError(
            f"linear needs a flat input (C,), got {ctx.in_shape}: put global_avgpool or "
            "flatten before it"
        )
    return nn.Linear(ctx.channels, ctx.args["channels"] or ctx.num_classes)


@register_op("dropout", {"p": Arg(number(0.0, 1.0), 0.5)})
def dropout(ctx: Ctx) -> nn.Module:
    """Dropout (training only)."""
    return nn.Dropout(ctx.args["p"])


@register_op("channel_shuffle", {"groups": Arg(whole(), doc="groups")})
def channel_shuffle(ctx: Ctx) -> nn.Module:
    """Channel shuffle (ShuffleNet), as before MeliusNet's grouped transitions."""
    return nn.ChannelShuffle(ctx.args["groups"])


@register_op("add", merge=True)
def add(ctx: Ctx) -> nn.Module:
    """The sum of two or more inputs of equal shape (a residual connection)."""
    return Add()


@register_op("concat", merge=True)
def concat(ctx: Ctx) -> nn.Module:
    """Two or more inputs of equal height and width, concatenated along the channels."""
    return Concat()


# ---- the families' blocks ----------------------------------------------------------------------
@register_op(
    "stem",
    {
        "type": Arg(optional(one_of(STEMS.names)), None, "default: model.stem"),
        "channels": Arg(whole(), doc="output channels"),
    },
)
def stem(ctx: Ctx) -> nn.Module:
    """A registered full-precision stem (imagenet, thumbnail, grouped)."""
    return make_stem(ctx.args["type"] or ctx.stem, ctx.channels, ctx.args["channels"])


def _block_args(choices: Mapping[str, Arg]) -> dict[str, Arg]:
    return {**choices, "scaling": Arg(one_of(WEIGHT_SCALINGS), "none")}


def _melius_block(kind: str, ops: Registry, cls: type, check_growth: bool) -> Callable:
    """The build function of a MeliusNet block op: a decision point over `ops`."""

    def build(ctx: Ctx) -> nn.Module:
        a = ctx.args
        if check_growth and a["growth"] > ctx.channels:
            raise ArgError(f"{kind}_block.growth={a['growth']} exceeds its {ctx.channels} inputs")
        point = ctx.point(a["choices"], kind)
        return cls(point, ctx.channels, a["growth"], scaling=a["scaling"])

    return build


for _kind, _ops, _default, _cls, _doc in (
    (
        "dense",
        DENSE_OPS,
        DEFAULT_DENSE,
        DenseChoice,
        "MeliusNet dense block: BN, a binary conv to `growth` channels, concatenated to the "
        "input; a decision point over its choices (conv3x3, conv1x1: DENSE_OPS).",
    ),
    (
        "improvement",
        IMPROVEMENT_OPS,
        DEFAULT_IMPROVEMENT,
        ImprovementChoice,
        "MeliusNet improvement block: BN, a binary 3x3 conv added to the newest `growth` "
        "channels; a decision point over its choices (conv3x3, identity: IMPROVEMENT_OPS).",
    ),
):
    _build = _melius_block(_kind, _ops, _cls, check_growth=_kind == "improvement")
    _build.__doc__ = _doc
    _args = {
        "growth": Arg(whole(), doc="channels added" if _kind == "dense" else "channels improved"),
        "choices": Arg(names_list(one_of(_ops.names)), list(_default)),
    }
    register_op(f"{_kind}_block", _block_args(_args), decision=True)(_build)


@register_op(
    "transition",
    {"channels": Arg(whole(), doc="output channels"), "groups": Arg(whole(), 1)},
)
def transition(ctx: Ctx) -> nn.Module:
    """MeliusNet's full-precision downsampling: BN, 2x2 max-pool, ReLU, (channel shuffle,)
    1x1 conv (grouped where groups > 1)."""
    return make_transition(ctx.channels, ctx.args["channels"], ctx.args["groups"])


def _resnet_args(width: str) -> dict[str, Arg]:
    return _block_args(
        {
            width: Arg(whole(), doc="output channels" if width == "channels" else "middle width"),
            "stride": Arg(whole(), 1),
            "bits": Arg(names_list(bit_width), [1, 32], "bit widths sharing one weight"),
            "skip": Arg(skip_mode, "auto", "auto: a skip choice where shapes allow"),
        }
    )


def _width_choices(ctx: Ctx, out_channels: int) -> list[str]:
    """Bit widths, plus `skip` where the block keeps its input's shape (`skip: auto`)."""
    a = ctx.args
    keeps = a["stride"] == 1 and ctx.channels == out_channels
    if a["skip"] is True and not keeps:
        raise ArgError(
            f"skip: true, but the block maps {ctx.channels} channels to {out_channels} with "
            f"stride {a['stride']}: a skip cannot change the shape (use skip: auto)"
        )
    return [bits_choice(b) for b in a["bits"]] + (["skip"] if a["skip"] and keeps else [])


@register_op(
    "basic_block", {**_resnet_args("channels"), "version": Arg(one_of((1, 2)), 1)}, decision=True
)
def basic_block(ctx: Ctx) -> nn.Module:
    """Binary ResNet basic block (two 3x3 convs + shortcut; v1 post-, v2 pre-activation); a
    decision point over its bit widths (shared weights, one BatchNorm per width) and skip."""
    a = ctx.args
    point = ctx.point(_width_choices(ctx, a["channels"]), "basic")
    return BasicChoice(point, ctx.channels, a["channels"], a["stride"], a["version"], a["scaling"])


@register_op(
    "bottleneck_block", {**_resnet_args("width"), "version": Arg(one_of((1, 2)), 1)}, decision=True
)
def bottleneck_block(ctx: Ctx) -> nn.Module:
    """Binary bottleneck block (1x1, 3x3, 1x1 convs to 4 x width + shortcut); a decision point
    over its bit widths and skip."""
    a = ctx.args
    point = ctx.point(_width_choices(ctx, a["width"] * EXPANSION), "bottleneck")
    return BottleneckChoice(
        point, ctx.channels, a["width"], a["stride"], a["version"], a["scaling"]
    )


@register_op("resnet_e_unit", _resnet_args("channels"), decision=True)
def resnet_e_unit(ctx: Ctx) -> nn.Module:
    """ResNet-E / Bi-Real unit: BN(binary 3x3 conv(x)) + shortcut(x) (a full-precision
    avg-pool + 1x1 conv + BN where the shape changes); a decision point over bit widths and skip."""
    a = ctx.args
    point = ctx.point(_width_choices(ctx, a["channels"]), "conv")
    return UnitChoice(point, ctx.channels, a["channels"], a["stride"], a["scaling"])


HEAD_PRE = ("bn_relu", "relu", "none")


@register_op("head", {"pre": Arg(one_of(HEAD_PRE), "bn_relu", "what precedes the pooling")})
def head(ctx: Ctx) -> nn.Module:
    """The classifier: (BN + ReLU | ReLU |) global average pool, full-precision linear layer."""
    if len(ctx.in_shape) != 3:
        raise ArgError(f"head needs a (C, H, W) input, got {ctx.in_shape}")
    pre = ctx.args["pre"]
    if pre == "relu":
        return resnet_e_head(ctx.channels, ctx.num_classes)
    return make_head(ctx.channels, ctx.num_classes, pre_bn=pre == "bn_relu")
