"""A child of every family converted by Larq Compute Engine: the .tflite run by LCE's interpreter
gives the PyTorch child's logits, and every 1-bit conv is an LCE binary conv op."""

import json

import numpy as np
import pytest
import torch
from deploy_exactness import trained_looking_batchnorms
from helpers import ROOT
from helpers.spaces import NARROW_PARAMS
from torch import nn

from lightnas.binary import QConv2d
from lightnas.deploy.benchmark import time_tflite
from lightnas.deploy.convert import (
    BCONV_OP,
    METADATA_NAME,
    convert_child,
    file_parts,
    grouped_binary_convs,
    op_counts,
    read_metadata,
    run_tflite,
)
from lightnas.errors import DeployError
from lightnas.models import child, create_supernet
from lightnas.models.graph import space_kwargs
from lightnas.scoring.cost_metrics import count_costs
from lightnas.search.space import Architecture

# |logit difference| allowed, relative to the largest |logit|: the binary convs are exact integer
# popcounts on both sides, the float layers (stem, BatchNorm folded into multiply-add, 1x1
# transitions, classifier) differ by float32 rounding (about 1e-7 relative per op)
RELATIVE_TOLERANCE = 1e-5

MELIUS = {"block_config": [1, 1], "growth_rate": 8, "init_features": 16, "reduction": [0.5]}
RESNET = {"layers": [1, 1], "width": 8}
FAMILIES = {
    "meliusnet-thumbnail": ("meliusnet_flex", "thumbnail", MELIUS, 8),
    "meliusnet-imagenet": ("meliusnet_flex", "imagenet", MELIUS, 32),
    "meliusnet-grouped": ("meliusnet_flex", "grouped", MELIUS, 32),
    # grouped transition convs behind a channel shuffle, mean-scaled binary weights
    "meliusnet-a": (
        "meliusneta",
        "thumbnail",
        {**MELIUS, "growth_rate": 16, "init_features": 32, "scaling": "mean"},
        8,
    ),
    "resnet18-v1": ("resnet18", "thumbnail", RESNET, 8),
    "resnet18-v2-mean": ("resnet18_v2", "thumbnail", {**RESNET, "scaling": "mean"}, 8),
    "resnet18-e": ("resnet18_e", "imagenet", RESNET, 35),  # odd maps: ceil_mode average pools
    "resnet50-v1": ("resnet50", "thumbnail", RESNET, 8),
    "resnet50-v2": ("resnet50_v2", "imagenet", RESNET, 32),
}


def family_child(key: str, choices: dict | None = None) -> tuple[nn.Module, tuple[int, ...]]:
    name, stem, kwargs, size = FAMILIES[key]
    torch.manual_seed(0)
    supernet = create_supernet(name, num_classes=5, stem=stem, **kwargs)
    with torch.no_grad():
        trained_looking_batchnorms(supernet, 0)
    arch = supernet.space.default()
    if choices:
        arch = Architecture(supernet.space, {**dict(arch), **choices})
    return child(supernet, arch).eval(), (3, size, size)


def binary_convs(net: nn.Module) -> int:
    return sum(isinstance(m, QConv2d) and m.is_binary for m in net.modules())


def lce_stored_bytes(net: nn.Module, shape) -> float:
    """What the child's weights take when LCE stores them, computed from the modules: bits / 8
    (binary weights at 1 bit, the rest at 32) with every binary conv's input channels rounded up
    to LCE's bit-packing word of 32 channels."""
    padding_bits = sum(
        m.out_channels * m.kernel_size[0] * m.kernel_size[1] * (-m.in_channels % 32)
        for m in net.modules()
        if isinstance(m, QConv2d) and m.is_binary
    )
    return (count_costs(net, shape).model_bits + padding_bits) / 8


def assert_same_logits(net: nn.Module, flatbuffer: bytes, shape, images: int = 8) -> None:
    x = torch.randn(images, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x).numpy()
    got = run_tflite(flatbuffer, x.numpy())
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= RELATIVE_TOLERANCE * scale
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_converts_exactly_with_one_lce_bconv_per_binary_conv(family):
    net, shape = family_child(family)
    deployment = convert_child(net, shape)
    counted = op_counts(deployment.flatbuffer)  # parsed from the flatbuffer with TFLite's schema
    assert counted[BCONV_OP] == binary_convs(net) == len(deployment.binary_convs) > 0
    assert_same_logits(net, deployment.flatbuffer, shape)
    # the weights are stored at 1 bit (float kernels would be 32 times larger); BatchNorm
    # folded into multiply-adds and mean-scaling multipliers move them by a few percent
    weights = file_parts(deployment.flatbuffer).weights
    assert abs(weights / lce_stored_bytes(net, shape) - 1) <= 0.15


@pytest.mark.slow
def test_non_default_choices_convert_exactly():
    """Removed improvement blocks, 1x1 dense convs, full-precision and skipped ResNet blocks."""
    net, shape = family_child(
        "meliusnet-thumbnail",
        {"stage1.block1.dense": "conv1x1", "stage2.block1.improvement": "identity"},
    )
    deployment = convert_child(net, shape)
    assert op_counts(deployment.flatbuffer)[BCONV_OP] == binary_convs(net) == 3
    assert_same_logits(net, deployment.flatbuffer, shape)
    net, shape = family_child("resnet18-v1", {"stage1.block1.basic": "32bit"})
    deployment = convert_child(net, shape)
    assert op_counts(deployment.flatbuffer)[BCONV_OP] == binary_convs(net) == 2
    assert_same_logits(net, deployment.flatbuffer, shape)


def single_conv(padding: int, stride: int = 1) -> nn.Module:
    torch.manual_seed(0)
    conv = QConv2d(4, 6, 3, stride=stride, padding=padding)
    return nn.Sequential(conv).eval()


def test_binary_conv_pads_with_minus_one_like_pytorch():
    """An all-positive input: every inner window sees +1s, the border windows see the pad. The
    .tflite gives PyTorch's -1-padded result exactly, which a 0 or +1 pad would not."""
    net = single_conv(padding=1)
    deployment = convert_child(net, (4, 6, 6))
    assert op_counts(deployment.flatbuffer)[BCONV_OP] == 1
    x = torch.rand(1, 4, 6, 6) + 0.1
    with torch.no_grad():
        expected = net(x)
    got = run_tflite(deployment.flatbuffer, x.numpy())
    np.testing.assert_array_equal(got, expected.permute(0, 2, 3, 1).numpy())
    signs = torch.where(net[0].weight.detach() >= 0, 1.0, -1.0)
    for other in (0.0, 1.0):  # the test tells the pads apart
        padded = nn.functional.pad(torch.ones(1, 4, 6, 6), (1, 1, 1, 1), value=other)
        assert not torch.equal(nn.functional.conv2d(padded, signs), expected)


def test_strided_float_conv_with_symmetric_padding_is_exact():
    """LCE's converter fuses Pad + Conv2D into a 'SAME' conv without checking the kernel size:
    a 3x3/2 conv padded 1 on both sides of an even input came out shifted by a pixel."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)).eval()
    deployment = convert_child(net, (3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = net(x).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(run_tflite(deployment.flatbuffer, x.numpy()), expected, atol=1e-5)


def test_grouped_binary_conv_is_one_lce_bconv_run_by_the_indirect_kernels():
    """Groups of 32 input channels (whole bit-packing words): one grouped LceBconv2d, exact, run
    by LCE's indirect BGEMM kernels (its default ones refuse groups)."""
    torch.manual_seed(0)
    net = nn.Sequential(QConv2d(64, 32, 3, padding=1, groups=2)).eval()
    deployment = convert_child(net, (64, 5, 5), {"architecture": {}})
    assert op_counts(deployment.flatbuffer)[BCONV_OP] == 1
    assert grouped_binary_convs(deployment.flatbuffer) == deployment.grouped == 1
    assert read_metadata(deployment.flatbuffer)["grouped_binary_convs"] == 1
    x = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        expected = net(x).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(run_tflite(deployment.flatbuffer, x.numpy()), expected)
    assert "indirect BGEMM" in time_tflite(deployment.flatbuffer, warmup=0, repeats=1).describe()
    # an ungrouped conv of as many channels is not counted as grouped
    plain = convert_child(nn.Sequential(QConv2d(64, 32, 3, padding=1)).eval(), (64, 5, 5))
    assert grouped_binary_convs(plain.flatbuffer) == plain.grouped == 0


def test_grouped_binary_conv_of_partial_words_is_one_line():
    net = nn.Sequential(QConv2d(32, 32, 3, padding=1, groups=2)).eval()
    with pytest.raises(DeployError) as err:
        convert_child(net, (32, 5, 5))
    message = str(err.value)
    assert "0 (" not in message and "16 input channels per group" in message
    assert "multiple of 32" in message and "\n" not in message


def test_activations_dropout_and_pools_of_graph_spaces_convert_exactly():
    """The modules graph-file ops build beside convs: PReLU (per channel and shared), Hardtanh,
    Dropout, max pools with ceil_mode and padding, average pools with padding (counted) and
    with kernel != stride."""
    torch.manual_seed(0)
    prelu = nn.PReLU(6)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.5, 0.8, 6))
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        prelu,
        nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),  # 9 -> 5, the last window partial
        nn.Hardtanh(-0.5, 0.7),
        nn.Dropout(0.5),
        nn.AvgPool2d(3, 2, padding=1),  # zero padding counted in the average
        nn.PReLU(),  # one slope for every channel
        nn.AvgPool2d(2, 1),  # overlapping windows
        nn.MaxPool2d(2, 2, ceil_mode=True),  # 2 -> 1
    ).eval()
    deployment = convert_child(net, (3, 9, 9))
    x = torch.randn(3, 3, 9, 9)
    with torch.no_grad():
        expected = net(x).permute(0, 2, 3, 1).numpy()
    got = run_tflite(deployment.flatbuffer, x.numpy())
    assert got.shape == expected.shape == (3, 1, 1, 6)
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("pool", "words"),
    [
        (nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), "count_include_pad=False"),
        (nn.AvgPool2d(3, 2, ceil_mode=True), "kernel == stride <= 2"),
        (nn.MaxPool2d(3, 2, dilation=2), "dilation"),
    ],
)
def test_pools_without_a_mapping_are_one_line(pool, words):
    net = nn.Sequential(nn.Conv2d(3, 4, 1), pool).eval()
    with pytest.raises(DeployError) as err:
        convert_child(net, (3, 8, 8))
    assert words in str(err.value) and "\n" not in str(err.value)


def mixed_widths() -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    supernet = create_supernet(
        "resnet18", num_classes=5, stem="thumbnail", search_space={"bits": [1, 2, 4]}, **RESNET
    )
    trained_looking_batchnorms(supernet, 0)
    arch = {"stage1.block1.basic": "2bit", "stage2.block1.basic": "1bit"}
    return child(supernet, arch).eval(), (3, 8, 8)


def test_k_bit_layers_are_refused_naming_them():
    net, shape = mixed_widths()
    with pytest.raises(DeployError) as err:
        convert_child(net, shape)
    message = str(err.value)
    assert "\n" not in message and "--fallback float" in message
    assert "body.0.conv1 (2/2 bits)" in message and "body.0.conv2 (2/2 bits)" in message
    assert "body.1" not in message  # the 1-bit block is not named


@pytest.mark.slow
def test_k_bit_float_fallback_is_exact_and_recorded():
    net, shape = mixed_widths()
    deployment = convert_child(net, shape, {"architecture": {"x": 1}}, fallback="float")
    assert deployment.float_fallback == ["body.0.conv1", "body.0.conv2"]
    assert op_counts(deployment.flatbuffer)[BCONV_OP] == binary_convs(net) == 2
    metadata = read_metadata(deployment.flatbuffer, METADATA_NAME)
    assert metadata["float_fallback"] == ["body.0.conv1", "body.0.conv2"]
    assert metadata["architecture"] == {"x": 1} and json.dumps(metadata)
    assert_same_logits(net, deployment.flatbuffer, shape)


def test_an_unmapped_module_is_one_line_naming_it():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(DeployError) as err:
        convert_child(net.eval(), (3, 4, 4))
    assert "1 (GELU)" in str(err.value) and "\n" not in str(err.value)


def test_one_child_converts_to_the_same_bytes_every_time():
    net, shape = family_child("resnet18-v1")
    first = convert_child(net, shape, {"architecture": {}}).flatbuffer
    assert convert_child(net, shape, {"architecture": {}}).flatbuffer == first


@pytest.mark.slow
@pytest.mark.parametrize("space", NARROW_PARAMS)
def test_graph_file_spaces_convert_exactly_with_one_lce_bconv_per_binary_conv(space):
    kwargs = space_kwargs(ROOT / "configs" / "spaces" / f"{space}.yml")
    torch.manual_seed(0)
    supernet = create_supernet(
        "graph", num_classes=5, stem="thumbnail", params=NARROW_PARAMS[space], **kwargs
    )
    with torch.no_grad():
        trained_looking_batchnorms(supernet, 0)
    sampled = supernet.space.sample(torch.Generator().manual_seed(3))
    for arch in (supernet.space.default(), sampled):
        net = child(supernet, arch).eval()
        deployment = convert_child(net, (3, 32, 32), fallback="float")
        assert op_counts(deployment.flatbuffer)[BCONV_OP] == binary_convs(net) > 0
        assert_same_logits(net, deployment.flatbuffer, (3, 32, 32))
