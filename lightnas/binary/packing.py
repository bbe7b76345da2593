"""1-bit deployment: binary conv weights packed eight to a byte, and the conv that runs from them.

A binary weight is stored as its sign bit (1 = +1, 0 = -1; sign(0) = +1 as everywhere in
LightNAS), in little bit order: bit i of byte j is element 8j + i of the flattened weight. With
`scaling: mean`, the per-output-channel scale (mean |w|) is stored beside it as float32. The
latent full-precision weights are gone, so a packed network is for inference, not training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightnas.binary.layers import QConv2d

_BIT_VALUES = 2 ** torch.arange(8, dtype=torch.uint8)  # little bit order


def pack_signs(weight: Tensor) -> Tensor:
    """The signs of `weight` as bits, eight to a byte (a 1-D uint8 tensor of ceil(n / 8))."""
    bits = (weight.detach().flatten() >= 0).to(torch.uint8)
    bits = torch.cat([bits, bits.new_zeros(-bits.numel() % 8)])
    return (bits.view(-1, 8) * _BIT_VALUES.to(bits.device)).sum(dim=1, dtype=torch.uint8)


def unpack_signs(packed: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """The +-1 float32 tensor of `shape` whose signs `pack_signs` stored."""
    numel = int(torch.Size(shape).numel())
    bits = (packed[:, None] & _BIT_VALUES.to(packed.device)) != 0
    signs = torch.where(bits.flatten()[:numel], 1.0, -1.0)
    return signs.view(*shape)


def is_packable(module: object) -> bool:
    """A conv whose weights are 1 bit: its weight packs to bits."""
    return isinstance(module, QConv2d) and module.w_bits == 1


def weight_scale(conv: QConv2d) -> Tensor | None:
    """The per-output-channel scale a binary conv multiplies its signs by (None: no scaling)."""
    if conv.scaling != "mean":
        return None
    # the very expression quantize_weight uses, so that the stored scale is bit-identical
    return conv.weight.detach().abs().mean(dim=tuple(range(1, conv.weight.dim())), keepdim=True)


class PackedConv2d(QConv2d):
    """A binary conv holding its quantized weight (+-1, or +-scale) instead of a latent one:
    it computes exactly what the trained QConv2d computed, without re-quantizing."""

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_quantized(x, self.weight)

    @classmethod
    def from_signs(cls, conv: QConv2d, signs: Tensor, scale: Tensor | None) -> PackedConv2d:
        """The deployed twin of `conv` (same shape and widths) with weight signs [* scale]."""
        packed = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            w_bits=1,
            a_bits=conv.a_bits,
            scaling=conv.scaling,
            grad_cancel=conv.grad_cancel,
        )
        with torch.no_grad():
            packed.weight.copy_(signs if scale is None else signs * scale)
            if conv.bias is not None:
                packed.bias.copy_(conv.bias)
        return packed.train(conv.training)
