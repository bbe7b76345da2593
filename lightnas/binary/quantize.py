"""Quantizers with straight-through estimators: sign, k-bit (DoReFa-style) and weights."""

from __future__ import annotations

import torch
from torch import Tensor

VALID_BITS = (1, 2, 4, 8, 32)
WEIGHT_SCALINGS = ("none", "mean")


def check_bits(bits: int) -> int:
    if bits not in VALID_BITS:
        raise ValueError(f"bits={bits!r} is not supported; valid: {list(VALID_BITS)}")
    return int(bits)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, grad_cancel: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.grad_cancel = grad_cancel
        # sign(0) = +1 so that every output is exactly +-1
        # scalar constants: ones_like would be baked into an ONNX export as a full-size tensor
        return torch.where(x >= 0, x.new_tensor(1.0), x.new_tensor(-1.0))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.grad_cancel).to(grad.dtype), None


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


def sign_ste(x: Tensor, grad_cancel: float = 1.0) -> Tensor:
    """sign(x) in {-1, +1}; gradient passes where |x| <= grad_cancel and is cancelled elsewhere."""
    return _SignSTE.apply(x, grad_cancel)


def quantize_activation(x: Tensor, bits: int, grad_cancel: float = 1.0) -> Tensor:
    """Activations to `bits`: 1 = sign, 2/4/8 = uniform levels on [-1, 1], 32 = unchanged."""
    if bits == 32:
        return x
    if bits == 1:
        return sign_ste(x, grad_cancel)
    levels = 2**bits - 1
    # clamp gives the same gradient cancellation outside [-1, 1] as the sign's STE
    unit = (torch.clamp(x, -1.0, 1.0) + 1.0) / 2.0
    return _RoundSTE.apply(unit * levels) / levels * 2.0 - 1.0


def quantize_weight(w: Tensor, bits: int, scaling: str = "none") -> Tensor:
    """Weights to `bits`: 1 = sign (optionally times mean |w| per channel), 2/4/8 = DoReFa."""
    if bits == 32:
        return w
    if bits == 1:
        # weights use a plain STE (no cancellation): latent weights stay small through weight decay
        wb = sign_ste(w, float("inf"))
        if scaling == "mean":
            wb = wb * w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True).detach()
        return wb
    levels = 2**bits - 1
    t = torch.tanh(w)
    unit = t / (2 * t.abs().max().detach().clamp_min(1e-8)) + 0.5
    return _RoundSTE.apply(unit * levels) / levels * 2.0 - 1.0
