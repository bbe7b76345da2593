import pytest
import torch
from torch import nn

from lightnas.binary import QConv2d
from lightnas.scoring import cost_metrics
from lightnas.scoring.cost_metrics import Costs, count_costs, format_costs, measure_latency

INPUT = (3, 8, 8)
PIXELS = 8 * 8


def tiny_net() -> nn.Sequential:
    """FP conv -> binary conv (mean scaling) -> 32-bit conv -> 4x2-bit conv -> BN -> pool -> FC."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        QConv2d(4, 8, 3, padding=1, scaling="mean"),
        QConv2d(8, 8, 1, w_bits=32, a_bits=32),
        QConv2d(8, 8, 1, w_bits=4, a_bits=2),
        nn.BatchNorm2d(8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def test_tiny_net_costs_by_hand():
    costs = count_costs(tiny_net(), INPUT)

    fp_conv_params = 4 * 3 * 3 * 3 + 4  # weight + bias
    bin_conv_params = 8 * 4 * 3 * 3
    conv32_params = 8 * 8
    conv4_params = 8 * 8
    bn_params = 8 + 8  # running stats are buffers, not parameters
    fc_params = 8 * 10 + 10
    assert costs.params == (
        fp_conv_params + bin_conv_params + conv32_params + conv4_params + bn_params + fc_params
    )

    assert costs.model_bits == (
        fp_conv_params * 32
        + bin_conv_params * 1
        + 8 * 32  # one float scale per output channel of the mean-scaled binary conv
        + conv32_params * 32
        + conv4_params * 4
        + bn_params * 32
        + fc_params * 32
    )

    fp_conv_macs = PIXELS * 4 * 3 * 3 * 3
    bin_conv_macs = PIXELS * 8 * 4 * 3 * 3
    conv32_macs = PIXELS * 8 * 8
    conv4_macs = PIXELS * 8 * 8
    fc_macs = 8 * 10
    assert costs.flops == fp_conv_macs + conv32_macs + fc_macs
    assert costs.bops == bin_conv_macs * 1 * 1 + conv4_macs * 4 * 2
    assert costs.ops == costs.flops + costs.bops / 64
    assert costs.model_mbytes == costs.model_bits / 8 / 2**20


def test_no_scale_bits_without_mean_scaling():
    conv = QConv2d(4, 8, 3, scaling="none")
    assert count_costs(conv, (4, 5, 5)).model_bits == 8 * 4 * 3 * 3


def test_strided_conv():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    out_hw = 5 * 5  # floor((9 + 2 - 3) / 2) + 1 = 5
    assert count_costs(conv, (3, 9, 9)).flops == out_hw * 4 * 3 * 3 * 3


def test_grouped_convs():
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False)
    assert count_costs(conv, (4, 6, 6)).flops == 6 * 6 * 8 * (4 // 2) * 3 * 3
    depthwise = QConv2d(8, 8, 3, padding=1, groups=8)
    assert count_costs(depthwise, (8, 6, 6)).bops == 6 * 6 * 8 * 1 * 3 * 3


@pytest.mark.parametrize(
    ("w_bits", "a_bits", "flops", "bops"),
    [
        (1, 1, 0, 1),
        (4, 2, 0, 8),
        (8, 8, 0, 64),
        (32, 32, 1, 0),
        (32, 1, 1, 0),
        (1, 32, 1, 0),
    ],
)
def test_set_bits_moves_macs_between_flops_and_bops(w_bits, a_bits, flops, bops):
    conv = QConv2d(2, 3, 3, padding=1)
    conv.set_bits(w_bits, a_bits)
    macs = 4 * 4 * 3 * 2 * 3 * 3
    costs = count_costs(conv, (2, 4, 4))
    assert (costs.flops, costs.bops) == (flops * macs, bops * macs)
    assert costs.model_bits == 3 * 2 * 3 * 3 * w_bits


def test_shared_parameters_counted_once_but_calls_counted_twice():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    model = nn.Sequential(a, nn.ReLU(), b, nn.ReLU(), a)
    costs = count_costs(model, (4,))
    assert costs.params == 16 + 4 + 4  # one weight, two biases
    assert costs.model_bits == costs.params * 32
    assert costs.flops == 3 * 16


def test_frozen_parameters_stored_but_not_trainable():
    model = nn.Linear(4, 2)
    model.bias.requires_grad_(False)
    costs = count_costs(model, (4,))
    assert costs.params == 8
    assert costs.model_bits == 10 * 32


def test_modes_restored_and_hooks_removed():
    model = tiny_net()
    model.train()
    model[4].eval()
    seen = []
    model[0].register_forward_pre_hook(lambda m, _: seen.append(m.training))
    count_costs(model, INPUT)
    assert seen == [False]
    assert [m.training for m in model] == [True] * 4 + [False] + [True] * 3
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    running_mean = model[4].running_mean.clone()
    count_costs(model, INPUT)
    assert torch.equal(model[4].running_mean, running_mean)


def test_as_dict_and_format():
    costs = Costs(params=1_234_000, model_bits=8 * 2**20, flops=120_000_000, bops=3_400_000_000)
    assert costs.ops == 120_000_000 + 3_400_000_000 / 64
    assert costs.as_dict() == {
        "params": 1_234_000,
        "model_bits": 8 * 2**20,
        "flops": 120_000_000,
        "bops": 3_400_000_000,
        "ops": costs.ops,
    }
    assert format_costs(costs) == (
        "params 1.23M | size 1.00 MB | FLOPs 1.2e8 | BOPs 3.4e9 | OPs 1.7e8"
    )


def test_measure_latency_real_run_is_positive():
    model = tiny_net().train()
    latency = measure_latency(model, INPUT, batch_size=2, repeats=3, warmup=1)
    assert isinstance(latency, float)
    assert latency > 0
    assert model.training


def test_measure_latency_returns_median(monkeypatch):
    # (start, end) pairs of 3 timed runs lasting 5, 1 and 3 seconds; warmup must not be timed
    clock = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])
    monkeypatch.setattr(cost_metrics, "perf_counter", lambda: next(clock))
    calls = []
    model = nn.Linear(2, 2)
    model.register_forward_pre_hook(lambda m, _: calls.append(m.training))
    assert measure_latency(model, (2,), repeats=3, warmup=2) == 3.0
    assert calls == [False] * 5
    assert model.training


def test_measure_latency_rejects_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(nn.Linear(2, 2), (2,), repeats=0)
