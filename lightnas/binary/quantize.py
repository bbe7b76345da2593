"""Quantizers with straight-through estimators: sign, k-bit (DoReFa-style) and weights."""

from __future__ import annotations

import torch
from torch import Tensor

FULL_BITS = 32  # full precision: the quantizers are the identity
VALID_BITS = (1, 2, 4, 8, FULL_BITS)
WEIGHT_SCALINGS = ("none", "mean")


def check_bits(bits: int) -> int:
    if bits not in VALID_BITS:
        raise ValueError(f"bits={bits!r} is not supported; valid: {list(VALID_BITS)}")
    return int(bits)


def _sign(x: Tensor) -> Tensor:
    # sign(0) = +1 so that every output is exactly +-1
    # scalar constants: ones_like would be baked into an ONNX export as a full-size tensor
    return torch.where(x >= 0, x.new_tensor(1.0), x.new_tensor(-1.0))


class _SignSTE(torch.autograd.Function):
    """sign with the straight-through estimator; saves a 1-byte mask, not its float input."""

    @staticmethod
    def forward(ctx, x: Tensor, grad_cancel: float) -> Tensor:
        if grad_cancel == float("inf"):
            ctx.mask = None  # a plain STE: the gradient passes everywhere, nothing to keep
        else:
            ctx.save_for_backward(x.abs() <= grad_cancel)
            ctx.mask = True
        return _sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        if ctx.mask is None:
            return grad, None
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class _SignPadSTE(torch.autograd.Function):
    """sign, then padding with -1 around the last two dimensions, in one pass: the padded
    output is allocated once and the sign written into its interior (what a binary conv's input
    is), and the backward reads the interior of the gradient through the saved 1-byte mask."""

    @staticmethod
    def forward(ctx, x: Tensor, grad_cancel: float, ph: int, pw: int) -> Tensor:
        *lead, h, w = x.shape
        out = x.new_full((*lead, h + 2 * ph, w + 2 * pw), -1.0)
        out[..., ph : ph + h, pw : pw + w] = _sign(x)
        ctx.save_for_backward(x.abs() <= grad_cancel)
        ctx.pad = (ph, pw, h, w)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (mask,) = ctx.saved_tensors
        ph, pw, h, w = ctx.pad
        return grad[..., ph : ph + h, pw : pw + w] * mask, None, None, None


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


def sign_pad_ste(x: Tensor, grad_cancel: float, ph: int, pw: int) -> Tensor:
    """`sign_ste(x)` padded with -1 by (ph, pw) on each side of its last two dimensions."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        # exporters and compilers see the plain ops (sign, pad) and fuse them themselves
        return torch.nn.functional.pad(sign_ste(x, grad_cancel), (pw, pw, ph, ph), value=-1.0)
    return _SignPadSTE.apply(x, grad_cancel, ph, pw)


def quantize_activation(x: Tensor, bits: int, grad_cancel: float = 1.0) -> Tensor:
    """Activations to `bits`: 1 = sign, 2/4/8 = uniform levels on [-1, 1], 32 = unchanged."""
    if bits == FULL_BITS:
        return x
    if bits == 1:
        return sign_ste(x, grad_cancel)
    levels = 2**bits - 1
    # clamp gives the same gradient cancellation outside [-1, 1] as the sign's STE
    unit = (torch.clamp(x, -1.0, 1.0) + 1.0) / 2.0
    return _RoundSTE.apply(unit * levels) / levels * 2.0 - 1.0


def quantize_weight(w: Tensor, bits: int, scaling: str = "none") -> Tensor:
    """Weights to `bits`: 1 = sign (optionally times mean |w| per channel), 2/4/8 = DoReFa."""
    if bits == FULL_BITS:
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
