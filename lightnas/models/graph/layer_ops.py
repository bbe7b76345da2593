"""The layer ops of space files: binary / k-bit and full-precision convs, BatchNorm,
activations, pooling, the classifier's linear layer and the `add` / `concat` merges."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from lightnas.binary import QConv2d
from lightnas.binary.quantize import WEIGHT_SCALINGS
from lightnas.models.graph.modules import Add, BitsChoice, Concat, ReluAt32, bits_point
from lightnas.models.graph.ops import (
    Arg,
    ArgError,
    Ctx,
    bits_or_list,
    boolean,
    default_kind,
    number,
    one_of,
    optional,
    register_op,
    whole,
)


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


def _conv_shape(ctx: Ctx) -> tuple:
    """The positional arguments every conv op shares (nn.Conv2d's order, which QConv2d keeps):
    in and out channels, kernel, stride, padding, dilation, groups, bias."""
    a = ctx.args
    out = a["channels"] or ctx.channels
    return (
        ctx.channels,
        out,
        a["kernel"],
        a["stride"],
        _padding(a),
        a["dilation"],
        a["groups"],
        a["bias"],
    )


@register_op("conv", _conv_args(bits=False))
def conv(ctx: Ctx) -> nn.Module:
    """Full-precision convolution."""
    return nn.Conv2d(*_conv_shape(ctx))


@register_op("qconv", _conv_args(bits=True))
def qconv(ctx: Ctx) -> nn.Module:
    """Binary / k-bit convolution (lightnas.binary.QConv2d: input and weights quantized, -1
    padding); `bits: [1, 2, 4, 32]` makes it a decision point whose widths share one weight."""
    a = ctx.args
    bits = a["bits"]
    layer = QConv2d(*_conv_shape(ctx), scaling=a["scaling"])
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
