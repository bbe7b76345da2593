"""Binary / k-bit layers: a conv whose bit widths switch at run time on one weight tensor."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.binary.quantize import (
    FULL_BITS,
    WEIGHT_SCALINGS,
    check_bits,
    quantize_activation,
    quantize_weight,
    sign_pad_ste,
)
from lightnas.errors import ConfigError

# Quantized activations are padded with -1, not 0: -1 is a level of every quantizer here
# (sign, and the 2^k uniform levels on [-1, 1]), so a padded binary input stays strictly {-1, +1}
# and the conv remains an XNOR-popcount. Zero padding would make the input ternary.
PAD_VALUE = -1.0


class QConv2d(nn.Conv2d):
    """Conv2d quantizing its input to `a_bits` and its weight to `w_bits`; 32 = full precision.

    `set_bits` changes the widths in place: the weight Parameter stays the same object, which is how
    bit-width choices share weights in a supernet.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        w_bits: int = 1,
        a_bits: int = 1,
        scaling: str = "none",
        grad_cancel: float = 1.0,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        )
        if scaling not in WEIGHT_SCALINGS:
            valid = ", ".join(WEIGHT_SCALINGS)
            raise ConfigError(f"model.kwargs.scaling={scaling!r} is not valid; valid: {valid}")
        self.scaling = scaling
        self.grad_cancel = grad_cancel
        self.set_bits(w_bits, a_bits)

    def set_bits(self, w_bits: int, a_bits: int | None = None) -> None:
        self.w_bits = check_bits(w_bits)
        self.a_bits = check_bits(w_bits if a_bits is None else a_bits)

    @property
    def is_binary(self) -> bool:
        return self.w_bits == 1 and self.a_bits == 1

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_quantized(x, quantize_weight(self.weight, self.w_bits, self.scaling))

    def conv_quantized(self, x: Tensor, w: Tensor) -> Tensor:
        """The conv of `x` (quantized here to `a_bits`) with the already quantized weight `w`."""
        if self.a_bits == FULL_BITS:
            return self._conv_forward(x, w, self.bias)
        ph, pw = self.padding
        if self.a_bits == 1 and (ph or pw):
            x = sign_pad_ste(x, self.grad_cancel, ph, pw)  # one pass instead of sign, then pad
        else:
            x = quantize_activation(x, self.a_bits, self.grad_cancel)
            if ph or pw:
                x = F.pad(x, (pw, pw, ph, ph), value=PAD_VALUE)
        return F.conv2d(x, w, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", w_bits={self.w_bits}, a_bits={self.a_bits}"


def activated_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    bits: int = 1,
    **kwargs,
) -> QConv2d:
    """BMXNet's `activated_conv`: quantize the input, then a `bits`-bit conv with 'same' padding."""
    padding = kwargs.pop("padding", (kernel_size - 1) // 2 * kwargs.get("dilation", 1))
    return QConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        w_bits=bits,
        a_bits=bits,
        **kwargs,
    )
