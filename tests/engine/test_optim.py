"""lightnas.engine.optim: the cosine learning rate and the weight-decay groups."""

import pytest
import torch
from helpers.runs import make_engine, tiny_cfg

from lightnas.binary import QConv2d
from lightnas.engine.optim import lr_at, parameter_groups
from lightnas.models import create_supernet


def test_lr_is_a_pure_cosine_function_of_the_epoch():
    assert lr_at(0, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(5, 10, 0.1) == pytest.approx(0.05)
    assert lr_at(10, 10, 0.1, min_lr=0.01) == pytest.approx(0.01)
    cfg = tiny_cfg(epochs=3)
    engine = make_engine(cfg)
    engine.run()
    assert [r.lr for r in engine.history] == [lr_at(e, 3, cfg.optim.lr) for e in range(3)]


def test_weight_decay_spares_batchnorm_biases_and_latent_binary_weights():
    net = create_supernet("resnet18", 10, "thumbnail", {"bits": [1, 32]}, layers=[1, 1], width=8)
    decay, spared = parameter_groups(net, 5e-4)
    assert decay["weight_decay"] == 5e-4 and spared["weight_decay"] == 0.0
    decayed = {id(p) for p in decay["params"]}
    for module in net.modules():
        for name, p in module.named_parameters(recurse=False):
            latent = isinstance(module, QConv2d)
            bn = isinstance(module, torch.nn.BatchNorm2d)
            assert (id(p) in decayed) == (not (latent or bn or name == "bias")), (module, name)
    assert len(decay["params"]) + len(spared["params"]) == len(list(net.parameters()))


def test_weight_decay_reaches_the_optimizer():
    cfg = tiny_cfg()
    cfg.optim.weight_decay = 0.5
    decayed, plain = make_engine(cfg), make_engine(tiny_cfg())
    decayed.run()
    plain.run()
    a, b = decayed.supernet.state_dict(), plain.supernet.state_dict()
    assert not torch.equal(a["head.4.weight"], b["head.4.weight"])  # the classifier decays
