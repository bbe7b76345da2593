"""lightnas.run.teacher: the full-precision teacher of knowledge distillation."""

import torch

from lightnas.binary import QConv2d
from lightnas.run.teacher import full_precision_base

TINY_RESNET = {"layers": [1, 1], "width": 8}


def test_full_precision_base_has_no_quantized_layer():
    net = full_precision_base("resnet18", 4, "thumbnail", TINY_RESNET)
    convs = [m for m in net.modules() if isinstance(m, QConv2d)]
    assert convs and all(m.w_bits == 32 and m.a_bits == 32 for m in convs)
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
