import pytest
import torch
from torch import nn

from lightnas.binary import QConv2d
from lightnas.models import (
    child,
    create_supernet,
    list_models,
    space_without_weights,
    state_mismatch,
)
from lightnas.models.meliusnet import MELIUSNET_SPECS
from lightnas.scoring.cost_metrics import count_costs

TINY_MELIUS = {"block_config": [2, 2], "growth_rate": 16, "init_features": 32, "reduction": [0.5]}
TINY_RESNET = {"layers": [2, 2], "width": 8}
TINY_BOTTLENECK = {"layers": [1, 2], "width": 4}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def bn(c: int) -> int:
    return 2 * c


def test_registry_lists_all_families():
    names = list_models()
    for key in ("22", "29", "42", "59", "a", "b", "c", "_flex"):
        assert f"meliusnet{key}" in names
    for name in ("resnet18", "resnet34", "resnet18_v2", "resnet34_v2", "resnet18_e", "resnet34_e"):
        assert name in names
    for depth in ("50", "101", "152"):
        assert f"resnet{depth}" in names and f"resnet{depth}_v2" in names
    with pytest.raises(ValueError, match="model.name='vgg'.*valid: .*meliusnet22"):
        create_supernet("vgg")


def test_meliusnet22_base_matches_published_spec_parameter_count():
    # MeliusNet-22: blocks [4, 5, 4, 4], growth 64, 64 initial features, transitions to
    # 160 / 224 / 256 channels (BN, max-pool, ReLU, full-precision 1x1), BN + FC head.
    expected = 3 * 64 * 49 + bn(64)
    features = 64
    for blocks, out in zip([4, 5, 4, 4], [160, 224, 256, None], strict=True):
        for _ in range(blocks):
            expected += bn(features) + features * 64 * 9
            features += 64
            expected += bn(features) + features * 64 * 9
        if out:
            expected += bn(features) + features * out
            features = out
    expected += bn(features) + features * 1000 + 1000
    net = create_supernet("meliusnet22", 1000, "imagenet")
    base = child(net, net.space.default())
    assert abs(n_params(base) - expected) / expected < 0.005
    assert n_params(base) == expected


def test_resnet18_base_matches_published_parameter_count():
    net = create_supernet("resnet18", 1000, "imagenet")
    base = child(net, net.space.default())
    assert n_params(base) == 11_689_512  # torchvision's ResNet-18


# ---- every registered model, built on the meta device (no memory) and counted -----------------
def melius_params(
    blocks, reductions, groups, growth=64, features=64, classes=1000, multiple=1
) -> int:
    """MeliusNet's base network from the published spec (imagenet stem); transition widths
    rounded to `multiple` (the flex spec rounds to 32)."""
    total = 3 * features * 49 + bn(features)
    for stage, count in enumerate(blocks):
        for _ in range(count):
            total += bn(features) + features * growth * 9  # dense block
            features += growth
            total += bn(features) + features * growth * 9  # improvement block
        if stage < len(blocks) - 1:
            out = multiple * round(features * reductions[stage] / multiple)
            total += bn(features) + features * out // groups  # transition
            features = out
    return total + bn(features) + features * classes + classes


def resnet_params(layers, version, width=64, classes=1000) -> int:
    """Basic-block ResNet from torchvision's definition (v2: pre-activation)."""
    total = 3 * width * 49 + bn(width)
    in_ch = width
    for stage, count in enumerate(layers):
        out = width * 2**stage
        for block in range(count):
            total += in_ch * out * 9 + out * out * 9 + bn(out) + bn(out if version == 1 else in_ch)
            if block == 0 and (stage > 0 or in_ch != out):
                total += in_ch * out + (bn(out) if version == 1 else 0)
            in_ch = out
    return total + (bn(in_ch) if version == 2 else 0) + in_ch * classes + classes


def bottleneck_params(layers, width=64, classes=1000) -> int:
    """Bottleneck ResNet v1 from torchvision's definition (expansion 4)."""
    total = 3 * width * 49 + bn(width)
    in_ch = width
    for stage, count in enumerate(layers):
        w = width * 2**stage
        for block in range(count):
            total += in_ch * w + bn(w) + w * w * 9 + bn(w) + w * 4 * w + bn(4 * w)
            if block == 0:
                total += in_ch * 4 * w + bn(4 * w)
            in_ch = 4 * w
    return total + in_ch * classes + classes


BOTTLENECK_LAYERS = {"50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 8, 36, 3]}
# v2 (pre-activation) has no BN after the stem and none in the shortcut, one before the head:
# 7,552 parameters fewer at every depth (tests/models/test_published_networks.py derives it)
BOTTLENECK_V2_DIFFERENCE = 7_552
# ResNet-E adds a BN after the stem (128) and a BN on the input (6; its 3 scales are frozen)
RESNET_E_EXTRA = 134


def expected_params(name: str) -> int:
    if name.startswith("meliusnet"):
        key = name.removeprefix("meliusnet")
        if key == "_flex":
            return melius_params([4, 5, 4, 4], [0.5, 0.5, 0.5], 1, multiple=32)
        return melius_params(*MELIUSNET_SPECS[key])
    depth, _, variant = name.removeprefix("resnet").partition("_")
    if depth in BOTTLENECK_LAYERS:
        v1 = bottleneck_params(BOTTLENECK_LAYERS[depth])
        return v1 - BOTTLENECK_V2_DIFFERENCE if variant == "v2" else v1
    layers = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3]}[depth]
    extra = RESNET_E_EXTRA if variant == "e" else 0
    return resnet_params(layers, 2 if variant == "v2" else 1) + extra


# `graph` builds a space file's supernet: tests/models/graph checks it against these families
@pytest.mark.parametrize("name", [n for n in list_models() if n != "graph"])
def test_every_registered_model_builds_on_meta_and_counts_as_published(name):
    with torch.device("meta"):
        net = create_supernet(name, 1000, "imagenet")
        base = child(net, net.space.default())
    assert next(base.parameters()).is_meta
    assert n_params(base) == expected_params(name)
    costs = count_costs(base, (3, 224, 224))
    trainable = sum(p.numel() for p in base.parameters() if p.requires_grad)
    assert costs.params == trainable and costs.flops > 0 and costs.bops > 0


def test_meliusnet_search_space_names_and_subsets():
    net = create_supernet("meliusnet22", 10, "thumbnail")
    space = net.space
    assert len(space) == 2 * sum(MELIUSNET_SPECS["22"][0])
    assert space.names[:2] == ["stage1.block1.dense", "stage1.block1.improvement"]
    assert "stage2.block3.improvement" in space.names
    only = create_supernet(
        "meliusnet_flex", 10, "thumbnail", {"improvement_block": ["identity"]}, **TINY_MELIUS
    )
    assert only.space["stage1.block1.improvement"].choices == ("identity",)


def test_resnet_choices_share_one_weight_tensor_and_skip_only_where_shapes_match():
    net = create_supernet("resnet18", 10, "thumbnail", {"bits": [1, 4, 32], "skip": True})
    space = net.space
    assert space["stage1.block1.basic"].choices == ("1bit", "4bit", "32bit", "skip")
    assert space["stage2.block1.basic"].choices == ("1bit", "4bit", "32bit")  # downsampling
    block = net.choice_modules()["stage1.block2.basic"]
    convs = [m for m in block.modules() if isinstance(m, QConv2d)]
    assert len(convs) == 2  # one conv pair for every bit width


def test_bad_search_space_is_refused_with_valid_values():
    with pytest.raises(
        ValueError, match="dense_block: unknown op 'conv5x5'; valid: conv1x1, conv3x3"
    ):
        create_supernet("meliusnet22", 10, "thumbnail", {"dense_block": ["conv5x5"]})
    with pytest.raises(
        ValueError, match="search_space.bits: unknown bit width 3; valid: 1, 2, 4, 8, 32"
    ):
        create_supernet("resnet18", 10, "thumbnail", {"bits": [1, 3]})
    with pytest.raises(ValueError, match="search_space.depth is not valid.*bits, skip"):
        create_supernet("resnet18", 10, "thumbnail", {"depth": 3})
    with pytest.raises(ValueError, match="stem='tiny'"):
        create_supernet("resnet18", 10, "tiny")


@pytest.mark.parametrize("stem,size", [("thumbnail", 16), ("imagenet", 64)])
def test_supernet_forward_shapes(stem, size):
    for name, kw in [("meliusnet_flex", TINY_MELIUS), ("resnet18", TINY_RESNET)]:
        net = create_supernet(name, 7, stem, **kw)
        assert net(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_only_the_chosen_ops_run():
    net = create_supernet("meliusnet_flex", 10, "thumbnail", **TINY_MELIUS)
    arch = dict(net.space.default())
    arch["stage1.block1.dense"] = "conv1x1"
    arch["stage1.block2.improvement"] = "identity"
    net.set_architecture(arch)
    ran = []
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: ran.append(n))
        for n, m in net.named_modules()
        if isinstance(m, QConv2d)
    ]
    net(torch.randn(1, 3, 8, 8))
    for h in hooks:
        h.remove()
    assert "body.0.ops.conv1x1" in ran and "body.0.ops.conv3x3" not in ran
    assert not any(n.startswith("body.3.") for n in ran)  # stage1.block2.improvement skipped


def _train_bn_statistics(net, space, steps=3):
    gen = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(steps):
            net.set_architecture(space.sample(gen))
            net(torch.randn(4, 3, 16, 16))


@pytest.mark.parametrize(
    "name,kw,space",
    [
        ("meliusnet_flex", TINY_MELIUS, None),
        ("meliusneta", {"growth_rate": 16, "init_features": 32}, None),
        ("resnet18", TINY_RESNET, {"bits": [1, 2, 32], "skip": True}),
        ("resnet34_v2", {"layers": [2, 3], "width": 8}, {"bits": [32, 1, 8], "skip": True}),
        ("resnet18_e", TINY_RESNET, {"bits": [1, 2, 32], "skip": True}),
        ("resnet34_e", {"layers": [1, 2], "width": 8}, {"bits": [32, 1], "skip": True}),
        ("resnet50", TINY_BOTTLENECK, {"bits": [1, 4, 32], "skip": True}),
        ("resnet101_v2", TINY_BOTTLENECK, {"bits": [32, 1], "skip": True}),
    ],
)
def test_child_equals_supernet_under_its_architecture(name, kw, space):
    torch.manual_seed(0)
    net = create_supernet(name, 10, "thumbnail", space, **kw)
    _train_bn_statistics(net, net.space)
    net.eval()
    x = torch.randn(3, 3, 16, 16)
    gen = torch.Generator().manual_seed(1)
    for arch in [net.space.default()] + [net.space.sample(gen) for _ in range(4)]:
        sub = child(net, arch)
        net.set_architecture(arch)
        with torch.no_grad():
            assert torch.allclose(sub(x), net(x), atol=1e-5)
        # only the chosen ops' parameters are in the child
        used: set = set()
        hooks = [m.register_forward_hook(lambda m, i, o, u=used: u.add(m)) for m in sub.modules()]
        sub(x)
        for h in hooks:
            h.remove()
        assert all(m in used for m in sub.modules() if list(m.parameters(recurse=False)))
        assert n_params(sub) < n_params(net) or net.space.size == 1


def test_child_is_independent_of_the_supernet():
    net = create_supernet("resnet18", 10, "thumbnail", **TINY_RESNET)
    sub = child(net, net.space.default())
    with torch.no_grad():
        for p in sub.parameters():
            p.add_(1.0)
    first_conv = net.choice_modules()["stage1.block1.basic"].conv1.weight
    assert not torch.equal(first_conv, sub.body[0].conv1.weight)


def test_skipped_and_identity_choices_are_removed_from_the_child():
    net = create_supernet("resnet18", 10, "thumbnail", **TINY_RESNET)
    arch = dict(net.space.default())
    arch["stage1.block2.basic"] = "skip"
    assert len(child(net, arch).body) == len(net.body) - 1
    mel = create_supernet("meliusnet_flex", 10, "thumbnail", **TINY_MELIUS)
    arch = {n: ("identity" if n.endswith("improvement") else "conv3x3") for n in mel.space.names}
    assert len(child(mel, arch).body) == len(mel.body) - 4


def test_state_mismatch_names_missing_unexpected_and_reshaped_keys():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1), "d": torch.zeros(1)}
    assert state_mismatch(expected, dict(expected)) is None
    state = {"b": torch.zeros(4), "c": torch.zeros(1), "x": torch.zeros(1), "y": torch.zeros(1)}
    described = state_mismatch(expected, state)
    assert described == "missing: a (+1 more); unexpected: x (+1 more); shape: b"


def test_space_without_weights_is_the_supernets_space_and_allocates_nothing():
    built = []

    def build():
        built.append(create_supernet("resnet18", 10, "thumbnail", **TINY_RESNET))
        return built[-1]

    space = space_without_weights(build)
    assert all(p.is_meta for p in built[0].parameters())
    assert space == create_supernet("resnet18", 10, "thumbnail", **TINY_RESNET).space
