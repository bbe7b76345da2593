"""lightnas.binary.quantize: sign with a straight-through estimator and gradient cancellation,
k-bit activations and weights, the fused sign-and-pad."""

import pytest
import torch
from helpers.binary import reference_sign_pad

from lightnas.binary import quantize_activation, sign_ste
from lightnas.binary.quantize import quantize_weight, sign_pad_ste


def test_sign_values_and_zero_maps_to_plus_one():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 4.0])
    assert sign_ste(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]


def test_sign_gradient_passes_inside_and_is_cancelled_outside():
    x = torch.tensor([-1.5, -1.0, -0.2, 0.0, 0.7, 1.0, 1.01, 3.0], requires_grad=True)
    sign_ste(x, grad_cancel=1.0).backward(torch.full_like(x, 2.0))
    assert x.grad.tolist() == [0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0]


def test_grad_cancel_threshold_is_configurable():
    x = torch.tensor([0.4, 0.6], requires_grad=True)
    sign_ste(x, grad_cancel=0.5).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_kbit_activation_levels(bits):
    x = torch.linspace(-2, 2, 1001)
    q = quantize_activation(x, bits)
    levels = torch.linspace(-1, 1, 2**bits)
    assert len(torch.unique(q)) == 2**bits
    assert torch.allclose(torch.unique(q), levels, atol=1e-6)
    assert (q - x.clamp(-1, 1)).abs().max() <= 1 / (2**bits - 1) + 1e-6


def test_kbit_activation_straight_through_inside_clip_range():
    x = torch.tensor([-1.5, -0.3, 0.2, 1.2], requires_grad=True)
    quantize_activation(x, 4).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_weight_binarization_with_mean_scaling():
    w = torch.tensor([[[[1.0, -3.0]]], [[[0.5, 0.5]]]])
    assert quantize_weight(w, 1, "none").flatten().tolist() == [1, -1, 1, 1]
    assert quantize_weight(w, 1, "mean").flatten().tolist() == [2.0, -2.0, 0.5, 0.5]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_kbit_weights_take_at_most_2_to_the_k_values_in_unit_range(bits):
    w = torch.randn(64, 8, 3, 3)
    q = quantize_weight(w, bits)
    assert len(torch.unique(q)) <= 2**bits
    assert q.abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize("grad_cancel", [1.0, 1.3])
@pytest.mark.parametrize("pad", [(1, 1), (2, 1), (0, 0)])
def test_fused_sign_and_pad_equal_the_reference(grad_cancel, pad):

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6) * 1.5
    x[0, 0, 0, :4] = torch.tensor([0.0, grad_cancel, -grad_cancel, 1.0])  # edges of both rules
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    fused, ref = sign_pad_ste(a, grad_cancel, *pad), reference_sign_pad(b, grad_cancel, *pad)
    assert torch.equal(fused, ref) and set(fused.unique().tolist()) <= {-1.0, 1.0}
    upstream = torch.randn_like(fused)
    (fused * upstream).sum().backward()
    (ref * upstream).sum().backward()
    assert torch.equal(a.grad, b.grad)
