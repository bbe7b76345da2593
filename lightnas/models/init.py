"""Options every model family takes in `model.kwargs`: the weight initialisation (`init`) and the
gradient-cancel threshold of the binary activations (`grad_cancel`).

They are applied to the built supernet, so a new family gets them without code of its own.
`init: default` leaves PyTorch's initialisation untouched (and draws no random numbers), so
seeded runs keep their numbers; `xavier` is what the published BMXNet / MeliusNet runs used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lightnas.binary import QConv2d
from lightnas.errors import ConfigError
from lightnas.registry import Registry

DEFAULT_GRAD_CANCEL = 1.0
DEFAULT_INIT = "default"

# name -> function(net) re-initialising the weights of `net` in place
INITS: Registry[Callable[[nn.Module], None]] = Registry("initialisation", "model.kwargs.init")


def _weighted(net: nn.Module) -> list[nn.Module]:
    """The convolutions (binary ones included) and linear layers, whose weights an init sets."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    """MXNet's fans: (in / groups * kh * kw, out * kh * kw), the same as PyTorch's."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@INITS.register("default")
def default_init(net: nn.Module) -> None:
    """PyTorch's own initialisation (kaiming-uniform weights, BN weight 1 and bias 0)."""


@INITS.register("xavier")
@torch.no_grad()
def xavier_init(net: nn.Module) -> None:
    """BMXNet's default for its published runs (`--initialization gaussian`):
    `mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)`, i.e. weights from
    N(0, 2 / fan_in), biases 0; BatchNorm keeps weight 1 and bias 0."""
    for m in _weighted(net):
        fan_in, _ = _fans(m.weight)
        m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
        if m.bias is not None:
            m.bias.zero_()


@INITS.register("xavier_uniform")
@torch.no_grad()
def xavier_uniform_init(net: nn.Module) -> None:
    """BMXNet's `--initialization default`: `mx.init.Xavier(magnitude=2)`, weights from
    U(-s, s) with s = sqrt(2 / ((fan_in + fan_out) / 2)), biases 0."""
    for m in _weighted(net):
        fan_in, fan_out = _fans(m.weight)
        bound = math.sqrt(2.0 / ((fan_in + fan_out) / 2))
        m.weight.uniform_(-bound, bound)
        if m.bias is not None:
            m.bias.zero_()


def check_grad_cancel(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(
            f"model.kwargs.grad_cancel={value!r} is not valid; valid: a number > 0 "
            f"(default {DEFAULT_GRAD_CANCEL}; the published MeliusNet runs used 1.3)"
        )
    return float(value)


def set_grad_cancel(net: nn.Module, threshold: float) -> None:
    """Binary activations pass gradients where |x| <= threshold (BMXNet's `clip_threshold`)."""
    for m in net.modules():
        if isinstance(m, QConv2d):
            m.grad_cancel = threshold


def apply_common_options(net: nn.Module, grad_cancel: object, init: str) -> None:
    """Set `grad_cancel` and `init` (checked: a ConfigError names the key and valid values)."""
    initialise = INITS[init]
    set_grad_cancel(net, check_grad_cancel(grad_cancel))
    initialise(net)
