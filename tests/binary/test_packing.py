"""The 1-bit deployment export: weights packed eight to a byte, exact outputs, the stated size."""

import json
import random

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lightnas.binary import QConv2d
from lightnas.binary.packing import PackedConv2d, pack_signs, unpack_signs
from lightnas.errors import CheckpointError
from lightnas.export import export_child, load_architecture, load_child, model_info, resolve_target
from lightnas.models import child, create_supernet
from lightnas.scoring.cost_metrics import count_costs
from lightnas.search.space import Architecture

CIFAR = (3, 32, 32)


@pytest.mark.parametrize("numel", [1, 7, 8, 9, 64, 1000])
def test_signs_pack_eight_to_a_byte_and_unpack(numel):
    w = torch.randn(numel)
    w[0] = 0.0  # sign(0) = +1, as in the binary layers
    packed = pack_signs(w)
    assert packed.dtype == torch.uint8 and packed.numel() == (numel + 7) // 8
    signs = unpack_signs(packed, (numel,))
    assert torch.equal(signs, torch.where(w >= 0, 1.0, -1.0))


def test_bit_order_is_little_endian():
    w = torch.tensor([1.0, -1, -1, -1, -1, -1, -1, -1, -1, 1])  # bits 0 and 9 set
    assert pack_signs(w).tolist() == [1, 2]


def export(net, arch, name, space, kw, tmp_path, shape=CIFAR, classes=10):
    info = model_info(name, classes, "thumbnail", space, kw, shape)
    return export_child(net, arch, info, tmp_path / "exported_models", "epoch_1", ["packed"])


def test_meliusnet22_packed_file_has_the_model_size_and_the_float_childs_outputs(tmp_path):
    torch.manual_seed(0)
    supernet = create_supernet("meliusnet22", 100, "thumbnail")
    arch = supernet.space.sample(torch.Generator().manual_seed(3))
    net = child(supernet, arch).eval()
    paths = export(net, arch, "meliusnet22", None, {}, tmp_path, classes=100)
    model_bytes = count_costs(net, CIFAR).model_bits / 8
    size = paths["packed"].stat().st_size
    assert abs(size - model_bytes) / model_bytes < 0.10
    assert size < paths["safetensors"].stat().st_size / 5  # the float file: 32-bit latent weights
    loaded = load_child(paths["packed"])
    x = torch.randn(4, *CIFAR)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert count_costs(loaded, CIFAR) == count_costs(net, CIFAR)
    assert load_architecture(paths["packed"]) == arch


def test_mixed_widths_and_mean_scaling_round_trip_exactly(tmp_path):
    space, kw = {"bits": [1, 4, 32], "skip": True}, {"layers": [2, 2], "width": 8}
    kw["scaling"] = "mean"
    torch.manual_seed(0)
    supernet = create_supernet("resnet18_e", 10, "thumbnail", space, **kw)
    names = supernet.space.names
    choices = ["1bit", "4bit", "32bit", "skip"]
    rng = random.Random(0)
    arch = {n: rng.choice(supernet.space[n].choices) for n in names}
    arch[names[0]], arch[names[1]] = "1bit", "4bit"
    arch[names[2]] = "32bit"
    assert set(choices[:3]) <= set(arch.values())
    net = child(supernet, arch).eval()
    paths = export(net, Architecture(supernet.space, arch), "resnet18_e", space, kw, tmp_path)
    with safe_open(paths["packed"], framework="pt") as f:
        packed = json.loads(f.metadata()["packed"])
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118
    binary = [n for n, m in net.named_modules() if isinstance(m, QConv2d) and m.w_bits == 1]
    assert sorted(packed) == sorted(f"{n}.weight" for n in binary)
    assert all(dtypes[k] == torch.uint8 and packed[k]["scale"] for k in packed)
    assert all(dtypes[k] == torch.float32 for k in dtypes if k not in packed and "weight" in k)
    loaded = load_child(paths["packed"])
    assert sum(isinstance(m, PackedConv2d) for m in loaded.modules()) == len(binary)
    x = torch.randn(3, *CIFAR)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_a_packed_file_resolves_like_a_trainable(tmp_path):
    supernet = create_supernet("resnet18", 10, "thumbnail", layers=[1, 1], width=8)
    arch = supernet.space.default()
    paths = export(
        child(supernet, arch), arch, "resnet18", None, {"layers": [1, 1], "width": 8}, tmp_path
    )
    weights, config, out = resolve_target(str(paths["packed"]), None)
    assert weights == paths["packed"]
    assert out.name == "epoch_1.packed.evaluation.json"


def test_a_packed_file_that_does_not_fit_is_refused(tmp_path):
    kw = {"layers": [1, 1], "width": 8}
    supernet = create_supernet("resnet18", 10, "thumbnail", **kw)
    arch = supernet.space.default()
    path = export(child(supernet, arch), arch, "resnet18", None, kw, tmp_path)["packed"]
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    packed = json.loads(metadata["packed"])
    key = sorted(packed)[0]
    packed[key]["shape"][0] += 1
    metadata["packed"] = json.dumps(packed)
    save_file(load_file(path), path, metadata=metadata)
    with pytest.raises(CheckpointError, match=f"packed weight {key} does not fit"):
        load_child(path)
