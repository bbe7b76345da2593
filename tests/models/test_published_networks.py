"""The published networks exactly: MeliusNet's table with the grouped stem, ResNet-E, bottleneck
ResNets, and the `grad_cancel` / `init` options every family takes."""

import math

import pytest
import torch
from torch import nn

from lightnas.binary import QConv2d, quantize_activation
from lightnas.errors import ConfigError
from lightnas.models import MODELS, child, create_supernet
from lightnas.models.layers import make_stem
from lightnas.scoring.cost_metrics import count_costs

IMAGENET = (3, 224, 224)
MIB = 2**20

# Model size (MiB) and OPs (FLOPs + BOPs / 64) at 224x224 with the grouped stem, from the
# MeliusNet authors' results table: hpi-xnor/BMXNet-v2-wiki, CurrentBestResults.md, "MeliusNet"
# (the runs behind Table 3/4 of Bethge et al., "MeliusNet: Can Binary Neural Networks Achieve
# MobileNet-level Accuracy?", arXiv:2001.05936). Their counter counted convolutions only, no
# classifier MACs; their model size counts binary weights as 1 bit and everything else as 32.
MELIUSNET_TABLE = {
    "meliusnet22": (3.88, 2.08e8),
    "meliusnet29": (5.07, 2.14e8),
    "meliusnet42": (10.1, 3.25e8),
    "meliusnet59": (17.39, 5.32e8),
    "meliusneta": (4.05, 1.63e8),
    "meliusnetb": (5.0, 1.96e8),
    "meliusnetc": (4.46, 1.50e8),
}
# The same table's binary ResNet-E ("e1": full-precision pooling shortcut): (stem, MiB, OPs).
RESNET_E_TABLE = {
    ("resnet18_e", "imagenet"): (4.0, 1.63e8),
    ("resnet18_e", "grouped"): (3.98, 1.14e8),
    ("resnet34_e", "imagenet"): (5.23, 1.92e8),
    ("resnet34_e", "grouped"): (5.21, 1.43e8),
}


def base_network(name: str, stem: str, classes: int = 1000, **kw) -> nn.Module:
    # the meta device: shapes and counts without allocating (or initialising) any weight
    with torch.device("meta"):
        net = create_supernet(name, classes, stem, **kw)
        return child(net, net.space.default())


def relative_error(value: float, expected: float) -> float:
    return abs(value - expected) / expected


@pytest.mark.parametrize("name", list(MELIUSNET_TABLE))
def test_meliusnets_with_the_grouped_stem_match_the_published_table(name):
    size_mib, ops = MELIUSNET_TABLE[name]
    net = base_network(name, "grouped")
    published = count_costs(net, IMAGENET, linear_macs=False)  # the authors' convention
    assert relative_error(published.model_bits / 8 / MIB, size_mib) < 0.01
    assert relative_error(published.ops, ops) < 0.01
    # LightNAS's own count adds the classifier's MACs, a fraction of a percent here
    ours = count_costs(net, IMAGENET)
    assert ours.model_bits == published.model_bits
    assert ours.flops - published.flops == net.head[-1].in_features * 1000
    assert relative_error(ours.ops, ops) < 0.01


def test_the_grouped_stem_saves_half_a_hundred_million_ops():
    imagenet = count_costs(base_network("meliusnet22", "imagenet"), IMAGENET, linear_macs=False)
    grouped = count_costs(base_network("meliusnet22", "grouped"), IMAGENET, linear_macs=False)
    # the authors' table: 2.58e8 OPs with the 7x7 stem, 2.08e8 with the grouped one
    assert relative_error(imagenet.ops, 2.58e8) < 0.01
    assert 0.45e8 < imagenet.ops - grouped.ops < 0.55e8


def test_grouped_stem_layers():
    stem = make_stem("grouped", 3, 64)
    convs = [m for m in stem if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.groups) for c in convs] == [
        (3, 32, 2, 1),
        (32, 32, 1, 4),
        (32, 64, 1, 8),
    ]
    assert all(c.kernel_size == (3, 3) for c in convs)
    kinds = [type(m).__name__ for m in stem]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 3 + ["MaxPool2d"]
    assert stem(torch.randn(1, 3, 224, 224)).shape == (1, 64, 56, 56)
    with pytest.raises(ConfigError, match="model.stem=grouped needs a multiple of 16"):
        make_stem("grouped", 3, 40)


@pytest.mark.parametrize(("name", "stem"), list(RESNET_E_TABLE))
def test_resnet_e_matches_the_published_table(name, stem):
    size_mib, ops = RESNET_E_TABLE[name, stem]
    costs = count_costs(base_network(name, stem), IMAGENET, linear_macs=False)
    assert relative_error(costs.model_bits / 8 / MIB, size_mib) < 0.01
    assert relative_error(costs.ops, ops) < 0.01


# Parameter counts at 1000 classes, derived from the published definitions:
# - torchvision's ResNet-18/34/50/101/152 (v1): 11,689,512 / 21,797,672 / 25,557,032 /
#   44,549,160 / 60,192,808 parameters.
# - ResNet-E = ResNet-v1 with one shortcut per conv (same convs and BNs, same downsampling
#   1x1 conv + BN, after a 2x2 average pool), plus a BN after the stem (+2 x 64) and a BN on the
#   image whose scale is fixed (+3 trainable shifts, +3 frozen scales): v1 + 131 trainable.
# - Bottleneck v2 (pre-activation) differs from v1 only in its BNs: each block's BNs see
#   (in, mid, mid) channels instead of (mid, mid, out), the shortcut has no BN and a BN precedes
#   the head. The first block of each stage (in -> out = 4 mid) contributes 2 (in - 2 out):
#   2 (64 - 512 + 256 - 1024 + 512 - 2048 + 1024 - 4096) = -11,648, the head BN +4,096:
#   v2 = v1 - 7,552 for every depth.
TRAINABLE_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet18_e": 11_689_512 + 131,
    "resnet34_e": 21_797_672 + 131,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet50_v2": 25_557_032 - 7_552,
    "resnet101_v2": 44_549_160 - 7_552,
    "resnet152_v2": 60_192_808 - 7_552,
}


@pytest.mark.parametrize("name", list(TRAINABLE_PARAMETERS))
def test_resnet_parameter_counts_equal_the_published_definitions(name):
    net = base_network(name, "imagenet")
    assert count_costs(net, IMAGENET).params == TRAINABLE_PARAMETERS[name]


def test_resnet_e_units_have_their_own_shortcut_and_a_pooled_full_precision_downsampling():
    net = create_supernet("resnet18_e", 10, "thumbnail", {"bits": [1, 32]}, width=8)
    space = net.space
    assert len(space) == 16  # one decision point per binary conv
    assert space.names[:3] == ["stage1.block1.conv1", "stage1.block1.conv2", "stage1.block2.conv1"]
    assert space["stage1.block1.conv1"].choices == ("1bit", "32bit", "skip")
    assert space["stage2.block1.conv1"].choices == ("1bit", "32bit")  # downsampling: no skip
    down = net.choice_modules()["stage2.block1.conv1"].shortcut
    assert [type(m).__name__ for m in down] == ["AvgPool2d", "Conv2d", "BatchNorm2d"]
    assert not isinstance(down[1], QConv2d)  # full precision
    input_bn = net.stem[0]
    assert input_bn.num_features == 3 and not input_bn.weight.requires_grad
    assert isinstance(net.stem[-1], nn.BatchNorm2d)


def _seeded_weights(build) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [p.detach().clone() for p in build().parameters()]


@pytest.mark.parametrize("name", ["meliusnet_flex", "resnet18"])
def test_default_init_and_grad_cancel_leave_seeded_models_as_they_were(name):
    kw = {"block_config": [1, 1]} if name == "meliusnet_flex" else {"layers": [1, 1]}
    plain = _seeded_weights(lambda: MODELS[name](num_classes=10, stem="thumbnail", **kw))
    via = _seeded_weights(lambda: create_supernet(name, 10, "thumbnail", **kw))
    assert len(plain) == len(via)
    assert all(torch.equal(a, b) for a, b in zip(plain, via, strict=True))


@pytest.mark.parametrize(
    "name", ["meliusnet_flex", "resnet18", "resnet18_e", "resnet50_v2", "meliusneta"]
)
def test_grad_cancel_reaches_every_binary_conv_of_every_family(name):
    with torch.device("meta"):
        net = create_supernet(name, 10, "thumbnail", grad_cancel=1.3)
    convs = [m for m in net.modules() if isinstance(m, QConv2d)]
    assert convs and all(m.grad_cancel == 1.3 for m in convs)


def test_grad_cancel_sets_where_the_sign_passes_gradients():
    net = create_supernet("resnet18", 10, "thumbnail", grad_cancel=1.3, layers=[1], width=4)
    conv = next(m for m in net.modules() if isinstance(m, QConv2d))
    x = torch.tensor([0.5, 1.2, 1.4, -1.25, -2.0], requires_grad=True)
    quantize_activation(x, conv.a_bits, conv.grad_cancel).sum().backward()
    assert (x.grad != 0).tolist() == [True, True, False, True, False]


def test_bad_grad_cancel_and_init_are_config_errors():
    with pytest.raises(ConfigError, match=r"model.kwargs.grad_cancel=-1 is not valid; valid: a"):
        create_supernet("resnet18", 10, "thumbnail", grad_cancel=-1)
    with pytest.raises(ConfigError, match=r"model.kwargs.init='he' is not known; valid: default"):
        create_supernet("resnet18", 10, "thumbnail", init="he")
    with pytest.raises(ConfigError, match="takes no depth; valid: layers, .*grad_cancel, init"):
        create_supernet("resnet18", 10, "thumbnail", depth=3)


def test_xavier_init_is_bmxnets_gaussian_fan_in_initialisation():
    torch.manual_seed(0)
    net = create_supernet("resnet18", 10, "thumbnail", init="xavier")
    conv = net.choice_modules()["stage4.block2.basic"].conv2  # 512 x 512 x 3 x 3
    fan_in = 512 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.01)
    assert abs(conv.weight.mean().item()) < 1e-3
    fc = net.head[-1]
    assert torch.all(fc.bias == 0)
    assert fc.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.1)
    uniform = create_supernet("resnet18", 10, "thumbnail", init="xavier_uniform")
    w = uniform.choice_modules()["stage4.block2.basic"].conv2.weight
    assert w.abs().max().item() <= math.sqrt(4 / (2 * fan_in)) + 1e-7
