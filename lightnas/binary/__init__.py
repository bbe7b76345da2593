"""Quantizers and binary layers (the BMXNet replacement)."""

from lightnas.binary.layers import PAD_VALUE, QConv2d, activated_conv
from lightnas.binary.quantize import (
    FULL_BITS,
    VALID_BITS,
    quantize_activation,
    quantize_weight,
    sign_ste,
)

__all__ = [
    "FULL_BITS",
    "PAD_VALUE",
    "QConv2d",
    "VALID_BITS",
    "activated_conv",
    "quantize_activation",
    "quantize_weight",
    "sign_ste",
]
