"""The block ops of space files: the built-in families' own modules (stems, MeliusNet dense /
improvement blocks and transitions, basic and bottleneck blocks, ResNet-E units, the head), so a
graph built from them computes what the built-in family computes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from lightnas.binary.quantize import WEIGHT_SCALINGS
from lightnas.models.bottleneck import EXPANSION, BottleneckChoice
from lightnas.models.graph.ops import (
    Arg,
    ArgError,
    Ctx,
    bit_width,
    names_list,
    one_of,
    optional,
    register_op,
    skip_mode,
    whole,
)
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
