"""lightnas.runtime.placement: the device of `device:` and how tensors are placed on it."""

import contextlib

import pytest
import torch

from lightnas.errors import ConfigError
from lightnas.runtime.placement import Placement, check_device_name, resolve_device


@pytest.mark.parametrize("name", ["cuda:x", "gpu", "cpu:0", ""])
def test_a_bad_device_name_is_a_config_error(name):
    with pytest.raises(ConfigError, match=f"device={name!r} is not valid"):
        check_device_name(name)


def test_auto_is_cuda_where_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_is_a_config_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda:0")
        return
    with pytest.raises(ConfigError, match="CUDA is not available; valid here: auto, cpu"):
        resolve_device("cuda:0")


def test_placement_moves_inputs_in_its_memory_format():
    x = torch.zeros(2, 3, 4, 4)
    plain, last = Placement(torch.device("cpu")), Placement(torch.device("cpu"), channels_last=True)
    assert plain.input(x).is_contiguous()
    assert last.input(x).is_contiguous(memory_format=torch.channels_last)
    assert isinstance(plain.autocast(), contextlib.nullcontext)
    with Placement(torch.device("cpu"), bf16=True).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
