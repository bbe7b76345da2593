"""A PyTorch child rebuilt as a Larq/Keras model (NHWC) that computes what the child computes.

Each module type of the families maps to Keras layers through `KERAS_OPS` (`@keras_op(cls)`):
a function `(builder, module, x, name) -> y` on Keras tensors, with the module's weights copied
(conv kernels OIHW -> HWIO, BatchNorm statistics, linear weights transposed).

1-bit convs (`QConv2d` at 1 bit) become Larq `QuantConv2D`s with the `ste_sign` input quantizer
and the already quantized kernel (+-1, or +-scale per output channel with `scaling: mean`), which
LCE's converter turns into its binary conv op (`LceBconv2d`), the scale becoming the op's output
multiplier. LightNAS pads binary inputs with -1 (lightnas/binary/layers.py); LCE's fused binary
conv pads with 0 or +1 only. The exact mapping used here: an explicit pad with -1 of the float
input *before* the sign quantizer (sign(-1) = -1, so the quantized, padded input is the one
PyTorch convolves), then the binary conv with `valid` padding. It costs one float Pad op per
padded binary conv and no accuracy.

k-bit convs (2/4/8 bits) have no LCE kernel: they are refused (`DeployError` naming them) unless
`fallback="float"`, which keeps them as float convs over the quantized values (exactly what
PyTorch computes, at float cost) and records them in `KerasBuild.float_fallback`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lightnas.binary import PAD_VALUE, QConv2d, quantize_weight
from lightnas.deploy.backend import keras, larq, tf
from lightnas.deploy.keras_layers import ChannelPermute, ChannelSlice, ConstantPad, KBitActivation
from lightnas.errors import DeployError
from lightnas.models.bottleneck import Bottleneck
from lightnas.models.meliusnet import DenseLayer, ImprovementBlock
from lightnas.models.resnet import BasicBlock
from lightnas.models.resnet_e import Unit
from lightnas.models.supernet import Network

FALLBACKS = ("float",)
# LCE packs sign bits in 32-bit words along the input channels; a grouped binary conv's groups
# must each fill whole words (its converter refuses other group sizes)
BITPACK_WORD = 32

KerasOp = Callable[["KerasBuilder", nn.Module, tf.Tensor, str], tf.Tensor]
KERAS_OPS: dict[type, KerasOp] = {}


def keras_op(*classes: type) -> Callable[[KerasOp], KerasOp]:
    """Decorator registering the Keras mapping of module `classes` (subclasses included)."""

    def register(fn: KerasOp) -> KerasOp:
        for cls in classes:
            KERAS_OPS[cls] = fn
        return fn

    return register


@dataclass
class KerasBuild:
    """The rebuilt model and what it holds."""

    model: keras.Model
    binary_convs: list[str] = field(default_factory=list)
    """The child's 1-bit convs (module names), each an LCE binary conv once converted."""
    float_fallback: list[str] = field(default_factory=list)
    """k-bit convs kept as float convs over quantized values (`fallback="float"`)."""


class KerasBuilder:
    """Walks a child's modules, emitting the Keras layers of each (`KERAS_OPS`)."""

    def __init__(self, fallback: str | None = None) -> None:
        if fallback is not None and fallback not in FALLBACKS:
            raise DeployError(f"--fallback {fallback!r} is not valid; valid: {FALLBACKS[0]}")
        self.fallback = fallback
        self.binary_convs: list[str] = []
        self.float_fallback: list[str] = []

    def __call__(self, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
        for cls in type(module).__mro__:
            if cls in KERAS_OPS:
                return KERAS_OPS[cls](self, module, x, name)
        raise DeployError(
            f"cannot convert {name or 'the model'} ({type(module).__name__}) to a .tflite: no "
            f"Larq/Keras mapping for it; convertible: {', '.join(supported_modules())}"
        )

    def children(self, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
        for child_name, child in module.named_children():
            x = self(child, x, qualified(name, child_name))
        return x


def supported_modules() -> list[str]:
    return sorted(cls.__name__ for cls in KERAS_OPS)


def build_keras_model(
    net: nn.Module, input_shape: Sequence[int], fallback: str | None = None
) -> KerasBuild:
    """The Keras twin of `net` (eval mode) for (C, H, W) inputs, taking NHWC batches of one."""
    channels, height, width = input_shape
    builder = KerasBuilder(fallback)
    kbit = kbit_convs(net)
    if kbit and fallback != "float":
        raise DeployError(
            f"k-bit layers have no Larq Compute Engine kernel: {', '.join(kbit)}; pass "
            "--fallback float to keep them as float convs"
        )
    # Keras numbers its auto-named ops per session (ste_sign_3): a fresh session names them the
    # same way every time, so that one child always converts to the same bytes
    keras.backend.clear_session()
    inputs = keras.Input((height, width, channels), batch_size=1, name="input")
    net = net.eval()
    with torch.no_grad():
        outputs = builder(net, inputs, "")
    model = keras.Model(inputs, outputs, name="lightnas_child")
    return KerasBuild(model, builder.binary_convs, builder.float_fallback)


def qualified(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def layer_name(name: str, suffix: str = "") -> str:
    """A Keras layer name for the module `name` (Keras names take no dots)."""
    base = name.replace(".", "_") or "model"
    return f"{base}_{suffix}" if suffix else base


def numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def hwio(weight: Tensor) -> np.ndarray:
    """A PyTorch conv kernel (out, in / groups, kh, kw) as TensorFlow's (kh, kw, in / g, out)."""
    return np.ascontiguousarray(numpy(weight).transpose(2, 3, 1, 0))


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def check_spatial(x: tf.Tensor, name: str) -> None:
    if None in x.shape[1:3]:
        raise DeployError(f"{name}: needs a fixed input size to convert")


# ---- containers and the network ---------------------------------------------------------------
@keras_op(nn.Sequential, Network)
def _sequence(build: KerasBuilder, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    return build.children(module, x, name)


@keras_op(nn.Identity)
def _identity(build: KerasBuilder, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    return x


# ---- convolutions --------------------------------------------------------------------------------
def conv_layer(
    conv: nn.Conv2d, x: tf.Tensor, name: str, kernel: Tensor, pad_value: float, quantized: bool
) -> tf.Tensor:
    """`conv` with the (already quantized) `kernel`, its padding made explicit with
    `pad_value`; `quantized`: a Larq conv whose input quantizer is the sign (LCE's binary conv)."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise DeployError(
            f"{name}: padding {conv.padding!r} / {conv.padding_mode!r} has no mapping; "
            "convertible: integer padding with zeros"
        )
    pads = used_padding(x, conv)
    if any(any(p) for p in pads):
        x = ConstantPad(pads, pad_value, name=layer_name(name, "pad"))(x)
    common = {
        "filters": conv.out_channels,
        "kernel_size": pair(conv.kernel_size),
        "strides": pair(conv.stride),
        "padding": "valid",
        "dilation_rate": pair(conv.dilation),
        "use_bias": conv.bias is not None,
        "name": layer_name(name),
    }
    if quantized:
        layer = larq.layers.QuantConv2D(
            input_quantizer="ste_sign",
            kernel_quantizer=None,
            kernel_constraint=None,
            groups=conv.groups,
            **common,
        )
    else:
        layer = keras.layers.Conv2D(groups=conv.groups, **common)
    y = layer(x)
    weights = [hwio(kernel)] + ([numpy(conv.bias)] if conv.bias is not None else [])
    layer.set_weights(weights)
    return y


def used_padding(x: tf.Tensor, conv: nn.Conv2d) -> list[tuple[int, int]]:
    """The conv's symmetric padding less the rows and columns after the input that no window
    reaches (a stride-2 conv of an even input never reads its last padded row).

    Exact either way, but needed: LCE's converter fuses a Pad before a Conv2D into the conv's
    'SAME' padding whenever the pad is split as 'SAME' splits it and the output is ceil(input /
    stride), without checking the pad's total against the kernel size: a 3x3/2 conv padded 1 on
    both sides of an even input became a 'SAME' conv padded 0 before and 1 after, and computed
    something else. Trimmed, a pad that fuses is the conv's 'SAME' padding exactly."""
    check_spatial(x, "a padded conv")
    pads = []
    for i, (size, pad) in enumerate(zip(x.shape[1:3], pair(conv.padding), strict=True)):
        span = conv.dilation[i] * (conv.kernel_size[i] - 1) + 1
        out = (int(size) + 2 * pad - span) // conv.stride[i] + 1
        reached = (out - 1) * conv.stride[i] + span - int(size) - pad
        pads.append((pad, max(0, min(pad, reached))))
    return pads


@keras_op(nn.Conv2d)
def _conv(build: KerasBuilder, conv: nn.Conv2d, x: tf.Tensor, name: str) -> tf.Tensor:
    return conv_layer(conv, x, name, conv.weight, 0.0, quantized=False)


@keras_op(QConv2d)
def _qconv(build: KerasBuilder, conv: QConv2d, x: tf.Tensor, name: str) -> tf.Tensor:
    kernel = quantize_weight(conv.weight, conv.w_bits, conv.scaling)
    if conv.w_bits == 32 and conv.a_bits == 32:
        return conv_layer(conv, x, name, kernel, 0.0, quantized=False)
    if conv.is_binary:
        group = conv.in_channels // conv.groups
        if conv.groups != 1 and group % BITPACK_WORD:
            raise DeployError(
                f"{name}: a grouped binary conv of {group} input channels per group; LCE's "
                f"grouped binary convs need a multiple of {BITPACK_WORD}"
            )
        build.binary_convs.append(name)
        # the -1 pad before the sign: see the module's docstring
        return conv_layer(conv, x, name, kernel, PAD_VALUE, quantized=True)
    # a k-bit conv: build_keras_model refused it unless the fallback is float
    build.float_fallback.append(name)
    if conv.a_bits == 1:
        sign = larq.layers.QuantIdentity(input_quantizer="ste_sign", name=layer_name(name, "q"))
        x = sign(x)
    elif conv.a_bits != 32:
        x = KBitActivation(conv.a_bits, name=layer_name(name, "q"))(x)
    pad = PAD_VALUE if conv.a_bits != 32 else 0.0
    return conv_layer(conv, x, name, kernel, pad, quantized=False)


def kbit_convs(net: nn.Module) -> list[str]:
    """The convs of `net` quantized to neither 1 nor 32 bits, as 'name (w/a bits)'."""
    return [
        f"{name} ({m.w_bits}/{m.a_bits} bits)"
        for name, m in net.named_modules()
        if isinstance(m, QConv2d) and not m.is_binary and (m.w_bits, m.a_bits) != (32, 32)
    ]


# ---- normalisation, activations, pooling, head ------------------------------------------------
@keras_op(nn.BatchNorm2d)
def _batchnorm(build: KerasBuilder, bn: nn.BatchNorm2d, x: tf.Tensor, name: str) -> tf.Tensor:
    if bn.running_mean is None:
        raise DeployError(f"{name}: a BatchNorm without running statistics cannot be exported")
    layer = keras.layers.BatchNormalization(
        epsilon=bn.eps, center=bn.affine, scale=bn.affine, name=layer_name(name)
    )
    y = layer(x)
    stats = [numpy(bn.running_mean), numpy(bn.running_var)]
    layer.set_weights(([numpy(bn.weight), numpy(bn.bias)] if bn.affine else []) + stats)
    return y


@keras_op(nn.ReLU)
def _relu(build: KerasBuilder, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    return keras.layers.ReLU(name=layer_name(name))(x)


@keras_op(nn.AdaptiveAvgPool2d)
def _global_pool(build: KerasBuilder, pool: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    if pair(pool.output_size) != (1, 1):
        raise DeployError(f"{name}: adaptive pooling to {pool.output_size}; convertible: 1")
    return keras.layers.GlobalAveragePooling2D(keepdims=True, name=layer_name(name))(x)


@keras_op(nn.Flatten)
def _flatten(build: KerasBuilder, module: nn.Flatten, x: tf.Tensor, name: str) -> tf.Tensor:
    if len(x.shape) == 4 and tuple(x.shape[1:3]) != (1, 1):
        # NHWC and NCHW flatten in different orders unless the map is 1 x 1
        raise DeployError(f"{name}: flattening a {tuple(x.shape[1:3])} map has no mapping")
    return keras.layers.Flatten(name=layer_name(name))(x)


@keras_op(nn.Linear)
def _linear(build: KerasBuilder, linear: nn.Linear, x: tf.Tensor, name: str) -> tf.Tensor:
    layer = keras.layers.Dense(
        linear.out_features, use_bias=linear.bias is not None, name=layer_name(name)
    )
    y = layer(x)
    layer.set_weights(
        [numpy(linear.weight).T] + ([numpy(linear.bias)] if linear.bias is not None else [])
    )
    return y


@keras_op(nn.ChannelShuffle)
def _shuffle(build: KerasBuilder, module: nn.ChannelShuffle, x: tf.Tensor, name: str) -> tf.Tensor:
    channels = int(x.shape[-1])
    # torch: channels viewed as (groups, channels / groups), transposed, flattened
    order = torch.arange(channels).view(module.groups, -1).t().flatten()
    return ChannelPermute(order.tolist(), name=layer_name(name))(x)


# ---- MeliusNet blocks ---------------------------------------------------------------------------
@keras_op(DenseLayer)
def _dense_layer(build: KerasBuilder, block: DenseLayer, x: tf.Tensor, name: str) -> tf.Tensor:
    new = build(block.conv, build(block.bn, x, qualified(name, "bn")), qualified(name, "conv"))
    return keras.layers.Concatenate(axis=-1, name=layer_name(name, "cat"))([x, new])


@keras_op(ImprovementBlock)
def _improvement(build: KerasBuilder, block: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    residual = build(block.conv, build(block.bn, x, qualified(name, "bn")), qualified(name, "conv"))
    channels, growth = int(x.shape[-1]), int(residual.shape[-1])
    keep = channels - growth
    if keep == 0:
        return keras.layers.Add(name=layer_name(name, "add"))([x, residual])
    kept = ChannelSlice(0, keep, name=layer_name(name, "keep"))(x)
    newest = ChannelSlice(keep, channels, name=layer_name(name, "newest"))(x)
    improved = keras.layers.Add(name=layer_name(name, "add"))([newest, residual])
    return keras.layers.Concatenate(axis=-1, name=layer_name(name, "cat"))([kept, improved])


# ---- ResNet blocks (lightnas.models.resnet / resnet_e / bottleneck) ---------------------------
def bit_activation(x: tf.Tensor, bits: int, name: str) -> tf.Tensor:
    """`lightnas.models.resnet.bit_activation`: a ReLU at 32 bits, none below."""
    return keras.layers.ReLU(name=layer_name(name))(x) if bits == 32 else x


def add(a: tf.Tensor, b: tf.Tensor, name: str) -> tf.Tensor:
    return keras.layers.Add(name=layer_name(name))([a, b])


def shortcut(build: KerasBuilder, block: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    if block.shortcut is None:
        return x
    return build(block.shortcut, x, qualified(name, "shortcut"))


@keras_op(BasicBlock)
def _basic(build: KerasBuilder, block: BasicBlock, x: tf.Tensor, name: str) -> tf.Tensor:
    """`lightnas.models.resnet.basic_forward`."""
    bits, short = block.bits, shortcut(build, block, x, name)

    def part(attr: str, y: tf.Tensor) -> tf.Tensor:
        return build(getattr(block, attr), y, qualified(name, attr))

    def act(y: tf.Tensor, i: int) -> tf.Tensor:
        return bit_activation(y, bits, qualified(name, f"act{i}"))

    if block.version == 1:
        out = act(part("bn1", part("conv1", x)), 1)
        return act(add(part("bn2", part("conv2", out)), short, qualified(name, "add")), 2)
    out = act(part("bn2", part("conv1", act(part("bn1", x), 1))), 2)
    return add(part("conv2", out), short, qualified(name, "add"))


@keras_op(Unit)
def _unit(build: KerasBuilder, unit: Unit, x: tf.Tensor, name: str) -> tf.Tensor:
    """`lightnas.models.resnet_e.unit_forward`."""
    short = shortcut(build, unit, x, name)
    out = bit_activation(x, unit.conv.w_bits, qualified(name, "act"))
    out = build(unit.bn, build(unit.conv, out, qualified(name, "conv")), qualified(name, "bn"))
    return add(out, short, qualified(name, "add"))


@keras_op(Bottleneck)
def _bottleneck(build: KerasBuilder, block: Bottleneck, x: tf.Tensor, name: str) -> tf.Tensor:
    """`lightnas.models.bottleneck.bottleneck_forward`."""
    bits, short = block.convs[0].w_bits, shortcut(build, block, x, name)
    out, last = x, len(block.convs) - 1
    for i, (conv, bn) in enumerate(zip(block.convs, block.bns, strict=True)):
        conv_name, bn_name = qualified(name, f"convs.{i}"), qualified(name, f"bns.{i}")
        if block.version == 1:
            out = build(bn, build(conv, out, conv_name), bn_name)
            if i < last:
                out = bit_activation(out, bits, qualified(name, f"act{i}"))
        else:
            out = bit_activation(build(bn, out, bn_name), bits, qualified(name, f"act{i}"))
            out = build(conv, out, conv_name)
    if block.version == 1:
        return bit_activation(add(out, short, qualified(name, "add")), bits, qualified(name, "act"))
    return add(out, short, qualified(name, "add"))
