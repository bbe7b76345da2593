"""lightnas.runtime.compiling: what `compile: none|regional|full` compiles."""

import pytest

from lightnas.binary import QConv2d
from lightnas.models import create_supernet
from lightnas.runtime.compiling import compile_supernet


def tiny():
    return create_supernet("resnet18", 4, "thumbnail", {"bits": [1, 32]}, layers=[1, 1], width=8)


def test_none_compiles_nothing():
    net = tiny()
    assert compile_supernet(net, "none") == 0
    assert not any(m._compiled_call_impl for m in net.modules())


@pytest.mark.parametrize("mode", ["regional", "full"])
def test_regional_compiles_every_binary_conv_and_full_the_whole_net(mode):
    net = tiny()
    convs = [m for m in net.modules() if isinstance(m, QConv2d)]
    compiled = compile_supernet(net, mode, backend="eager")  # compiles lazily, at the first call
    if mode == "regional":
        assert compiled == len(convs) > 0
        assert all(m._compiled_call_impl is not None for m in convs)
    else:
        assert compiled == 1 and net._compiled_call_impl is not None
