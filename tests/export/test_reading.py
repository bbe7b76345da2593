"""lightnas.export.reading: exported children read back, and what is refused."""

import json

import pytest
from helpers.exports import tiny_export
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lightnas.errors import CheckpointError
from lightnas.export import load_architecture, load_child


def test_load_child_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no exported child"):
        load_child(tmp_path / "trainables" / "epoch_9")
    paths = tiny_export("resnet", tmp_path, formats=()).paths
    path = paths["safetensors"]
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(
        CheckpointError, match=f"do not match its architecture \\(missing: {dropped}\\)"
    ):
        load_child(path)


def test_load_architecture_needs_the_model_description(tmp_path):
    exp = tiny_export("resnet", tmp_path, formats=())
    epoch_file = tmp_path / "epoch_3.json"
    epoch_file.write_text(json.dumps({**exp.arch.to_dict(), "epoch": 3}))
    with pytest.raises(ValueError, match="no model description"):
        load_architecture(epoch_file)
    epoch_file.write_text(json.dumps({**exp.arch.to_dict(), "model": exp.info}))
    assert load_architecture(epoch_file) == exp.arch
