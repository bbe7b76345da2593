"""lightnas.binary.layers: QConv2d at every bit width, -1 padding, shared weights across widths,
its backward."""

import pytest
import torch
from helpers.binary import reference_sign_pad
from torch import nn

from lightnas.binary import PAD_VALUE, QConv2d, activated_conv
from lightnas.binary.quantize import quantize_weight


def test_32_bit_qconv_equals_conv2d():
    torch.manual_seed(0)
    q = QConv2d(4, 6, 3, stride=2, padding=1, bias=True, w_bits=32, a_bits=32)
    ref = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True)
    ref.load_state_dict(q.state_dict())
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(q(x), ref(x), atol=1e-6)


def test_binary_conv_equals_conv_of_signs_padded_with_minus_one():
    torch.manual_seed(0)
    q = QConv2d(3, 5, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    xs = nn.functional.pad(torch.where(x >= 0, 1.0, -1.0), (1, 1, 1, 1), value=PAD_VALUE)
    ws = torch.where(q.weight >= 0, 1.0, -1.0)
    assert torch.equal(q(x), nn.functional.conv2d(xs, ws))


def test_binary_conv_outputs_take_only_expected_values():
    torch.manual_seed(1)
    q = QConv2d(4, 8, 3, padding=1)
    out = q(torch.randn(3, 4, 5, 5))
    # 4*3*3 = 36 products of +-1 (padding is -1, so every tap is +-1): even values in [-36, 36]
    assert set(out.unique().tolist()) <= set(range(-36, 37, 2))
    assert out.abs().max() <= 36


def test_switching_bits_keeps_the_same_parameter_object():
    q = QConv2d(4, 4, 3, padding=1)
    weight = q.weight
    x = torch.randn(1, 4, 5, 5)
    outs = {}
    for bits in (1, 2, 4, 8, 32):
        q.set_bits(bits)
        assert q.weight is weight
        outs[bits] = q(x)
    assert not torch.equal(outs[1], outs[32])
    assert [n for n, _ in q.named_parameters()] == ["weight"]


def test_gradients_reach_latent_weights_and_input():
    q = QConv2d(2, 3, 3, padding=1)
    x = (torch.rand(1, 2, 4, 4) - 0.5).requires_grad_()
    q(x).sum().backward()
    assert q.weight.grad is not None and q.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_bad_bits_and_scaling_are_rejected():
    with pytest.raises(ValueError, match="valid: \\[1, 2, 4, 8, 32\\]"):
        QConv2d(2, 2, 3, w_bits=3)
    with pytest.raises(ValueError, match="scaling"):
        QConv2d(2, 2, 3, scaling="max")


def test_activated_conv_keeps_spatial_size():
    conv = activated_conv(4, 8, kernel_size=3, stride=1)
    assert conv.is_binary
    assert conv(torch.randn(1, 4, 7, 7)).shape == (1, 8, 7, 7)
    assert activated_conv(4, 8, 3, stride=2)(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)


# ---- the fused quantizer against the reference implementation ---------------------------------


def test_binary_conv_keeps_only_a_one_byte_mask_for_its_backward():
    conv = QConv2d(4, 4, 3, padding=1)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        conv(x).sum().backward()
    masks = [t for t in saved if t.dtype == torch.bool]
    assert masks and masks[0].shape == x.shape
    assert not any(t.shape == x.shape and t.dtype == x.dtype for t in saved)  # no float copy


@pytest.mark.parametrize("scaling", ["none", "mean"])
def test_binary_conv_equals_the_reference_path(scaling):
    torch.manual_seed(1)
    conv = QConv2d(3, 5, 3, padding=1, scaling=scaling, grad_cancel=1.3)
    x = torch.randn(2, 3, 7, 7, requires_grad=True)
    out = conv(x)
    out.square().sum().backward()
    grad_x, grad_w = x.grad.clone(), conv.weight.grad.clone()
    x.grad, conv.weight.grad = None, None
    w = quantize_weight(conv.weight, 1, scaling)
    ref = torch.nn.functional.conv2d(reference_sign_pad(x, 1.3, 1, 1), w)
    ref.square().sum().backward()
    assert torch.equal(out, ref)
    assert torch.equal(grad_x, x.grad) and torch.equal(grad_w, conv.weight.grad)
