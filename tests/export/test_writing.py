import copy
import json

import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.exports import INPUT, MODELS, Exported, tiny_export
from safetensors import safe_open
from safetensors.torch import load, save
from torch import nn

from lightnas.errors import ConfigError
from lightnas.export import (
    METADATA_KEY,
    load_architecture,
    load_child,
    model_info,
    safetensors_bytes,
)

# tflite needs the deploy extra (a virtualenv of its own): tests/deploy tests it
FORMATS = ("pt2", "onnx", "packed")


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request, tmp_path_factory) -> Exported:
    out_dir = tmp_path_factory.mktemp(request.param) / "exported_models"
    return tiny_export(request.param, out_dir, formats=FORMATS, stats={"top1": 0.5})


def reference(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return copy.deepcopy(net).eval()(x)


def test_exports_reproduce_the_child_with_a_dynamic_batch(exported):
    x = torch.randn(5, *INPUT, generator=torch.Generator().manual_seed(0))  # traced with 2
    expected = reference(exported.net, x)
    with torch.no_grad():
        pt2 = torch.export.load(exported.paths["pt2"]).module()(x)
        reloaded = load_child(exported.paths["safetensors"])(x)
        unpacked = load_child(exported.paths["packed"])(x)
    session = ort.InferenceSession(exported.paths["onnx"], providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"input": x.numpy()})
    assert expected.shape == (5, 10)
    torch.testing.assert_close(pt2, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(onnx_out), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(reloaded, expected, atol=0, rtol=0)
    torch.testing.assert_close(unpacked, expected, atol=0, rtol=0)


def test_export_writes_the_layout_atomically_and_leaves_the_caller_in_training_mode(exported):
    files = sorted(p.relative_to(exported.out_dir).as_posix() for p in exported.out_dir.rglob("*"))
    assert files == [
        "deploy",
        "deploy/epoch_3.packed.safetensors",
        "inference_only",
        "inference_only/epoch_3.onnx",
        "inference_only/epoch_3.pt2",
        "trainables",
        "trainables/epoch_3.json",
        "trainables/epoch_3.safetensors",
    ]
    assert all(exported.training_after)


def test_exported_files_describe_the_architecture_and_model(exported):
    arch_dict = exported.arch.to_dict()
    with safe_open(exported.paths["safetensors"], framework="pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["architecture"]) == arch_dict
    assert json.loads(metadata["model"]) == exported.info
    data = json.loads(exported.paths["json"].read_text())
    assert data == {"architecture": arch_dict, "model": exported.info, "stats": {"top1": 0.5}}
    onnx_meta = {p.key: p.value for p in onnx.load(exported.paths["onnx"]).metadata_props}
    assert json.loads(onnx_meta[METADATA_KEY])["architecture"] == arch_dict
    assert load_architecture(exported.paths["json"]) == exported.arch
    assert load_architecture(exported.paths["safetensors"]) == exported.arch


def test_load_child_accepts_json_and_stem_and_includes_bn_buffers(exported):
    stem = exported.paths["json"].with_suffix("")
    for path in (exported.paths["json"], stem):
        net = load_child(path)
        assert not net.training
        expected = exported.net.state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, expected[key]), key


def test_the_same_child_exports_to_the_same_bytes_in_every_format(exported, tmp_path):
    again = tiny_export(exported.key, tmp_path, formats=FORMATS, stats={"top1": 0.5})
    for fmt, path in exported.paths.items():
        assert path.read_bytes() == again.paths[fmt].read_bytes(), fmt


def test_safetensors_bytes_do_not_depend_on_the_metadata_order():
    tensors = {"b": torch.ones(3, dtype=torch.uint8), "a": torch.randn(2, 2)}
    metadata = {"model": '{"n": 1}', "architecture": '{"x": "\u00e9"}', "packed": "{}"}
    files = {safetensors_bytes(tensors, metadata) for _ in range(12)}
    assert len(files) == 1  # the library alone wrote 4-6 different headers in 12 saves
    (data,) = files
    assert all(torch.equal(load(data)[k], tensors[k]) for k in tensors)
    size = int.from_bytes(data[:8], "little")
    assert list(json.loads(data[8 : 8 + size])["__metadata__"]) == sorted(metadata)
    one = {"model": "{}"}  # nothing to reorder: the library's own bytes
    assert safetensors_bytes(tensors, one) == save(tensors, metadata=one)


def test_model_info_is_plain_json():
    info = model_info("resnet18", 10, "thumbnail", {"bits": (1, 32)}, {"layers": (1, 1)}, INPUT)
    assert info["search_space"] == {"bits": [1, 32]}
    assert info["input_shape"] == [3, 16, 16]
    with pytest.raises(ValueError, match="not plain JSON"):
        model_info("resnet18", 10, "thumbnail", None, {"act": nn.ReLU()}, INPUT)


def test_bad_format_is_rejected_before_writing(tmp_path):
    with pytest.raises(
        ConfigError, match="export.formats='coreml' is not known; valid: onnx, packed, pt2, tflite"
    ):
        tiny_export("resnet", tmp_path / "out", formats=("pt2", "coreml"))
    assert not (tmp_path / "out").exists()
